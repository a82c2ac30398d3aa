"""Canary analysis through the real model servers and HAProxy: how often a good challenger is rolled back (false
rollback) and how often a bad one is promoted (missed rollback), for each kind of bad.

Set-up as ``serving_latency.py`` (``benchmarks/support/serving_setup.py``): Redis, Kafka and MLflow of embedded
mode, fraud's online features pushed, a classifier registered as the stable version and served behind the embedded
HAProxy. Challengers (``benchmarks/support/canary_challengers.py``) wrap that classifier: ``Same`` (a tied
challenger), ``Flaky`` (fails 8% of requests), ``Slower`` (+10 ms per request), ``Shifted`` (scores moved up).

Each canary runs the rollout's schedule through the analysis the rollout uses (``serving.rollout.analysis.analyse``
with the shipped ``AnalysisConfig``) on the servers' own metrics: the canary at 10%, 25% and 50% of a steady stream
of single-row requests through HAProxy, each window judged once both sides served ``min_requests``; a failed window
rolls it back, an inconclusive one keeps growing (up to ``HOLD_S``, then the canary counts as undecided), three
passed windows promote it. Throughout, a noise process keeps one core busy in random bursts (CPU noise both versions
share). The canary's server is started once per kind and warmed up as the rollout does (its first
``RolloutConfig.warmup_requests`` are not judged); then each canary is judged from its first share.

Prints one row per kind: canaries, promoted, rolled back, undecided, and the error rate that matters for it (false
rollbacks for ``Same``, missed rollbacks for the others); the goal is at most 2% of each. Asserts nothing.
With ``--key-check`` HAProxy checks inference keys and the traffic carries one of the platform's own consumer
(``inference_keys.own_headers``, as the demo's).
`PYTHONPATH=. .venv/bin/python benchmarks/canary_guardrails.py [canaries per kind] [--rate 200] [--key-check]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from rich.console import Console
from rich.table import Table

from benchmarks.support import canary_challengers
from benchmarks.support.serving_setup import set_up
from contract.served import fitted_model
from local.model_serving import EmbeddedBackend, EmbeddedServing
from local.traffic import TrafficGenerator
from serving.rollout.analysis import AnalysisConfig, analyse
from serving.rollout.rollout import RolloutConfig

SHARES = (10, 25, 50)
HOLD_S = 60.0
"""How long an inconclusive window may keep growing before the canary counts as undecided."""
KINDS: dict[str, Any] = {
    "good (same model)": canary_challengers.Same,
    "errors (8% fail)": canary_challengers.Flaky,
    "latency (+10 ms)": canary_challengers.Slower,
    "shifted predictions": canary_challengers.Shifted,
}
NOISE = """
import random, time
while True:
    busy_until = time.monotonic() + random.uniform(0.05, 0.6)
    while time.monotonic() < busy_until:
        pass
    time.sleep(random.uniform(0.05, 0.6))
"""
console = Console()


def register(challenger: Any, like_version: str) -> str:
    """A registry version holding ``challenger``, with the stable version's signature."""
    info = mlflow.models.get_model_info(f"models:/fraud/{like_version}")
    with mlflow.start_run(experiment_id=MlflowClient().get_experiment_by_name("fraud").experiment_id):
        logged = mlflow.sklearn.log_model(
            challenger,
            name="model",
            signature=info.signature,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pyfunc_predict_fn="predict_proba",
        )
    return str(mlflow.register_model(logged.model_uri, "fraud").version)


def warm_up(backend: EmbeddedBackend, requests: int) -> None:
    """The rollout's warm-up: the canary's first requests, at the first share, are served and not judged."""
    backend.set_share(SHARES[0])
    _, before = backend.snapshots()
    while backend.snapshots()[1].minus(before).requests < requests:
        time.sleep(0.5)
    backend.set_share(0)


def one_canary(backend: EmbeddedBackend, config: AnalysisConfig) -> tuple[str, str]:
    """(promoted | rolled back | undecided, why), by the analysis of each step's window."""
    for share in SHARES:
        backend.set_share(share)
        time.sleep(0.5)  # requests already sent at the old weights finish before the window opens
        stable_0, canary_0 = backend.snapshots()
        opened = time.monotonic()
        while True:
            time.sleep(0.5)
            stable, canary = backend.snapshots()
            result = analyse(stable.minus(stable_0), canary.minus(canary_0), config)
            if result.verdict == "fail":
                return "rolled back", f"at {share}%: {'; '.join(result.reasons)}"
            if result.verdict == "pass":
                break
            if time.monotonic() - opened > HOLD_S:
                return "undecided", f"at {share}%: {'; '.join(result.reasons)}"
    return "promoted", ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("canaries", nargs="?", type=int, default=50, help="canaries per kind")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second through HAProxy")
    parser.add_argument("--kinds", default=",".join(KINDS), help="which challengers, comma-separated")
    parser.add_argument("--key-check", action="store_true", help="turn the inference key check on in HAProxy")
    options = parser.parse_args()
    config = AnalysisConfig()
    began = time.monotonic()
    rows: list[tuple[str, Counter[str]]] = []
    with tempfile.TemporaryDirectory(prefix="mlstack-bench-canary-") as state:
        setup = set_up(Path(state), lambda line: console.print(f"[dim]{line}[/dim]"), key_check=options.key_check)
        serving = EmbeddedServing(setup.services, setup.component)
        noise = subprocess.Popen([sys.executable, "-c", NOISE])
        try:
            serving.stop()
            endpoint = serving.serve(setup.version, progress=lambda _line: None)
            backend = EmbeddedBackend(serving, progress=lambda _line: None)
            stable_model = fitted_model(mlflow.sklearn.load_model(f"models:/fraud/{setup.version}"))
            url = f"{endpoint}/v1/models/fraud:predict"
            with TrafficGenerator(url, setup.rows, rate=options.rate, threads=8, headers=setup.headers):
                for kind in options.kinds.split(","):
                    wrapper = KINDS[kind]
                    version = register(wrapper(stable_model), setup.version)
                    backend.start_canary(version, 0)
                    warm_up(backend, RolloutConfig().warmup_requests)
                    outcomes: Counter[str] = Counter()
                    for index in range(options.canaries):
                        outcome, why = one_canary(backend, config)
                        outcomes[outcome] += 1
                        backend.set_share(0)
                        console.print(
                            f"[dim]{time.monotonic() - began:6.0f}s {kind}: {index + 1}/{options.canaries} "
                            f"{outcome} {why}[/dim]",
                            highlight=False,
                            markup=False,
                        )
                    backend.rollback()
                    rows.append((kind, outcomes))
        finally:
            noise.kill()
            serving.stop()
            setup.services.down(progress=lambda _line: None)

    table = Table(
        title=f"Canary analysis through the model servers and HAProxy, {options.rate:.0f} requests/s, CPU noise"
    )
    for column in ("challenger", "canaries", "promoted", "rolled back", "undecided", "error", "rate (goal <= 2%)"):
        table.add_column(column, justify="left" if column == "challenger" else "right")
    for kind, outcomes in rows:
        total = sum(outcomes.values())
        good = kind.startswith("good")
        wrong = outcomes["rolled back"] if good else outcomes["promoted"]
        table.add_row(
            kind,
            str(total),
            str(outcomes["promoted"]),
            str(outcomes["rolled back"]),
            str(outcomes["undecided"]),
            "false rollback" if good else "missed rollback",
            f"{wrong / total:.1%}" if total else "",
        )
    console.print(table)
    console.print(f"{time.monotonic() - began:.0f}s in all")


if __name__ == "__main__":
    main()
