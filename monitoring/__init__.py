"""Production monitoring: the monitoring series' names, the alert rules and routing of both modes, and the alert
receiver; coming: inference log, monitor job, profiles and drift, dashboards and the retraining trigger. Depends on
``contract`` (and may start a training run through ``pipelines``), never on ``serving``'s modules."""
