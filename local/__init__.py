"""Embedded mode's "where does it run": the platform's real engines as local processes on one machine (Kafka,
Redis, MLflow, the Flink job, Feast pushers, KServe model servers behind HAProxy, a traffic generator), supervised.

Kept import-light on purpose: ``python3 -m devtools.install`` imports ``local.paths`` on the bare interpreter before
any environment exists.
"""
