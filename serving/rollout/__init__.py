"""Metric-gated canary rollouts of registered model versions: the analysis, the step schedule, the traffic
backend protocol and the cluster's backend (an InferenceService's canary traffic, counters from Prometheus).
Other backends live where their model servers run and are chosen by the command line."""
