"""Serving: the KServe model server runtime, the InferenceService builder and the canary rollout tool."""
