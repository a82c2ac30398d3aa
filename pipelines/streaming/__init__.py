"""The streaming feature template: a PyFlink job (``job.py``, streaming environment) driven by a component's
declarations, the Feast side that serves its output (``feature_pusher.py``, ``event_archive.py``, main environment),
and how both modes start them (``launch.py``)."""
