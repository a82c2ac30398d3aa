"""``python -m serving.server``: one model server process for one registered version of a component."""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import sys

import kserve

from serving.online_features import DEFAULT_TIMEOUT_S


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser], description=__doc__)
    parser.add_argument("--component", required=True)
    parser.add_argument("--mlflow-uri", required=True)
    parser.add_argument("--feast-repo", required=True)
    parser.add_argument("--model-version", default="", help="registry version; default: the alias below")
    parser.add_argument("--model-alias", default="champion")
    parser.add_argument(
        "--model-threads",
        type=int,
        default=1,
        help="OpenMP/BLAS threads for the model. A request is a few rows: a tree ensemble's per-tree parallel "
        "sections cost more than they save, and on a busy node their threads wait on each other (predict went "
        "from ~1.5 ms to tens of ms under load with the default of one thread per core).",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (uvicorn's access log and KServe's timing lines); off by default: Prometheus "
        "metrics count and time the requests, and a log line per request is a share of a millisecond request",
    )
    parser.add_argument(
        "--kafka-bootstrap",
        default=os.environ.get("MLSTACK_KAFKA_BOOTSTRAP", ""),
        help="Kafka bootstrap servers for the inference log (every scored row on <component>.predictions); "
        "default $MLSTACK_KAFKA_BOOTSTRAP; empty: no inference log",
    )
    parser.add_argument(
        "--feature-timeout-ms",
        type=float,
        default=DEFAULT_TIMEOUT_S * 1000,
        help="budget of the online feature read: a store slower than this (or unreachable) gets the request "
        "answered without features, marked degraded",
    )
    # KServe's own flag, off unless asked for, for the same reason as the access log.
    parser.set_defaults(enable_latency_logging=False)
    args, _ = parser.parse_known_args(argv)

    import mlflow
    from mlflow import MlflowClient
    from threadpoolctl import threadpool_limits

    from contract.registry import load
    from serving.inference_log import InferenceLog
    from serving.online_features import bounded_store
    from serving.runtime import ComponentModel, ModelNotServable

    component = load(args.component)
    mlflow.set_tracking_uri(args.mlflow_uri)
    version = args.model_version or MlflowClient().get_model_version_by_alias(component.name, args.model_alias).version
    timeout_s = args.feature_timeout_ms / 1000
    inference_log = None
    if args.kafka_bootstrap:
        inference_log = InferenceLog(component, str(version), args.kafka_bootstrap)
        atexit.register(inference_log.close)
        print(f"inference log: every scored row on {inference_log.topic} via {args.kafka_bootstrap}", flush=True)
    else:
        print("inference log: off (no --kafka-bootstrap or MLSTACK_KAFKA_BOOTSTRAP)", flush=True)
    model = ComponentModel(
        component,
        f"models:/{component.name}/{version}",
        str(version),
        bounded_store(args.feast_repo, timeout_s),
        timeout_s,
        inference_log,
    )
    threadpool_limits(limits=args.model_threads)  # the whole process: predict runs on the event loop's thread
    try:
        model.load()
    except ModelNotServable as error:  # the server never reports ready; its exit status and message say why
        sys.exit(f"error: {error}")
    # Everything loaded so far (libraries, model, feature store) lives as long as the process: frozen out of the
    # collector's view, a full collection scans only what requests allocate instead of pausing a request for it.
    gc.collect()
    gc.freeze()
    server = kserve.ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        enable_latency_logging=args.enable_latency_logging,
    )
    if not args.access_log:  # after ModelServer, which configures KServe's and uvicorn's logging
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    server.start([model])


if __name__ == "__main__":
    main()
