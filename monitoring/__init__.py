"""Production monitoring (coming): inference log, monitor job, profiles and drift, alert rules, dashboards and the
retraining trigger. Depends on ``contract`` (and may start a training run through ``pipelines``)."""
