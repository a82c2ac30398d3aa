"""Serving: the KServe runtime (Feast lookup + prepare + model) against `mlflow models serve` and against its floor,
measured in one run on the same registered model and the same requests.

Set-up (real engines, cheaper than streaming through Flink): Redis and the MLflow server of embedded mode on free
ports; the fraud component's Feast repo applied; the newest closed window of every card and merchant from a batch
of generated events (aggregated as the streaming job does, in ``tests.support.streaming_reference``) pushed to the
Redis online store through Feast; a gradient-boosted classifier trained on those windows joined point-in-time and
registered in MLflow as ``fraud`` the way the training pipeline registers it.

1. Floor: the same ``ComponentModel`` in this process, per single-row request: validation, online lookup,
   ``prepare``, predict, and the runtime's whole call without HTTP (p50/p99 over a few hundred requests).
2. Our model server (``python -m serving.server``, one process, as embedded mode supervises it): open loop at fixed
   rates (each request sent on schedule in its own task whatever the earlier ones wait for, so a stalled server
   is not hidden by coordinated omission; the table shows how late the generator sent, which should stay small),
   and closed-loop max throughput at 1 and 4 connections; with the server's CPU time per request. Before each
   measurement the server is given time to drain what an earlier overload left queued.
3. ``mlflow models serve`` on the same registry version: it cannot read Feast, so it gets the rows our server would
   have fed the model (the prepared features of the same requests); the same rates and loops; the ratio.
4. The canary hop: the same server through the HAProxy of ``EmbeddedServing`` at the same rates (with a key of the
   platform's own consumer when the inference key check is on: ``--key-check``, or a kept state that has it on; the
   hop then includes the check).
5. The inference log's cost: the server as embedded mode runs it (every scored row to ``fraud.predictions`` on the
   embedded Kafka) against the same server started the same way in the other slot without it, in every table and
   in ``LOG_REPEATS`` interleaved pairs at 200 requests/s and at 4 connections, whose medians give p99 and peak
   throughput side by side with their ratios; with the log's written and dropped counts from the server's metrics.

The load generator (aiohttp on uvloop) runs in this process and shares the machine's cores with the servers; its
own CPU share is printed. Prints tables; asserts nothing. The set-up, the floor, the load generator and the tables
are in ``benchmarks/support/``; this module runs them in order.
`PYTHONPATH=. .venv/bin/python benchmarks/serving_latency.py [seconds per measurement] [--keep DIR] [--key-check]`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import tempfile
import time
from pathlib import Path

from rich.console import Console

from benchmarks.support.load_generator import Load, measure
from benchmarks.support.serving_floor import floor
from benchmarks.support.serving_report import log_cost, logged_rows, report
from benchmarks.support.serving_setup import mlflow_serve, set_up
from local.model_serving import EmbeddedServing

console = Console(width=140)
RATES = (50, 100, 200)
CONNECTIONS = (1, 4)
GOAL = "goal: p99 < 10 ms at 200/s; >= 5x mlflow's throughput; p50 at low load <= 2x the in-process floor"
LOG_REPEATS = 5
LOG_GOAL = "goal: with the log, p99 at 200/s at most 1.10x and peak throughput at least 0.90x the server without it"
began_at = time.monotonic()


def progress(line: str) -> None:
    console.print(f"[dim]{time.monotonic() - began_at:6.0f}s[/dim] {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", nargs="?", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--keep", type=Path, help="state folder kept (services left running) and reused next time")
    parser.add_argument("--key-check", action="store_true", help="turn the inference key check on in HAProxy")
    options = parser.parse_args()
    seconds = options.seconds
    # Stopped by a signal, still stop the servers and services (the `finally` below).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if options.keep:
        options.keep.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(str(options.keep))
        if options.keep
        else tempfile.TemporaryDirectory(prefix="mlstack-bench-serving-")
    ) as state:
        setup = set_up(Path(state), progress, key_check=options.key_check)
        mlflow_process = None
        serving = EmbeddedServing(setup.services, setup.component)
        try:
            steps, prepared = floor(setup, RATES[0])
            progress("in-process floor measured")
            # This process holds the services' clients, the model and the events: a full collection of all that
            # would stall the load generator mid-run (send lag and latency at once). Only new objects are scanned.
            gc.collect()
            gc.freeze()
            serving.stop()  # a server left by an interrupted run may hold other code: start afresh
            endpoint = serving.serve(setup.version, progress=progress)
            slot = serving.slots()["a"]
            server_pid = setup.services.daemon.running_info(serving.program("a")).get("pid")
            direct = f"http://127.0.0.1:{slot['port']}/v1/models/fraud:predict"
            proxied = f"{endpoint}/v1/models/fraud:predict"
            bodies = [json.dumps({"instances": [row]}).encode() for row in setup.rows[-len(prepared) :]]
            mlflow_bodies = [json.dumps({"dataframe_records": [row]}).encode() for row in prepared]
            mlflow_process, mlflow_port = mlflow_serve(setup, Path(state) / "mlflow-serve.log")
            mlflow_url = f"http://127.0.0.1:{mlflow_port}/invocations"
            mlflow_pid = mlflow_process.pid
            progress(f"mlflow models serve on port {mlflow_port}")
            # The baseline: the same server started the same way in the other slot (weight 0: HAProxy never sends
            # it a request), with the log off.
            serving.start_server("b", setup.version, progress=progress, inference_log=False)
            plain_port = serving.slots()["b"]["port"]
            plain_pid = setup.services.daemon.running_info(serving.program("b")).get("pid")
            plain = f"http://127.0.0.1:{plain_port}/v1/models/fraud:predict"

            # Only HAProxy checks keys: the servers' own ports are measured as they are reached, without one.
            servers = [
                ("ours", direct, bodies, server_pid, {}),
                ("ours, no log", plain, bodies, plain_pid, {}),
                ("ours via HAProxy", proxied, bodies, server_pid, setup.headers),
                ("mlflow models serve", mlflow_url, mlflow_bodies, mlflow_pid, {}),
            ]
            loads: list[Load] = [
                measure(label, url, sent, "open", rate, seconds, pid, progress, headers)
                for rate in RATES
                for label, url, sent, pid, headers in servers
            ]
            closed: list[Load] = [
                measure(label, url, sent, "closed", connections, seconds, pid, progress, headers)
                for connections in CONNECTIONS
                for label, url, sent, pid, headers in servers
            ]
            pairs = [("ours", direct, server_pid), ("ours, no log", plain, plain_pid)]
            repeats: list[Load] = [
                measure(label, url, bodies, mode, level, seconds, pid, progress)
                for _ in range(LOG_REPEATS)
                for mode, level in (("open", 200), ("closed", 4))
                for label, url, pid in pairs
            ]
            written, dropped = logged_rows(f"http://127.0.0.1:{slot['port']}/metrics")
        finally:
            if mlflow_process is not None:
                os.killpg(mlflow_process.pid, signal.SIGTERM)
                mlflow_process.wait(30)
            serving.stop()
            if not options.keep:
                setup.services.down(progress=lambda _line: None)

    report(console, steps, loads, closed, seconds, RATES[0], GOAL)
    log_cost(console, repeats, seconds, written, dropped, LOG_GOAL)


if __name__ == "__main__":
    main()
