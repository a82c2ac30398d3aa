"""Use-case components: one package per domain, plugged into the shared templates in pipelines/ and serving/."""
