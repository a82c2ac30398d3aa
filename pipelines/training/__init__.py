"""The shared training template: a KFP v2 pipeline that builds a point-in-time training set from Feast, searches
the component's space with Ray Tune (every trial a nested MLflow run), and registers a ``challenger`` that beats
the ``champion`` on a holdout."""
