"""The streaming feature template: a PyFlink job (``job.py``, streaming environment) driven by a component's
declarations, and the Feast side that serves its output (``feature_pusher.py``, main environment)."""
