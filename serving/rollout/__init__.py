"""Metric-gated canary rollouts of registered model versions: the analysis, the step schedule, and the traffic
backends (embedded: two model servers behind HAProxy; cluster: an InferenceService's canary traffic)."""
