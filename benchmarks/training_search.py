"""Training: the Ray Tune search against the same trials run one after another, and the KFP local runner's
overhead, measured in one run on the same data.

1. The fraud component is streamed (30k events by default) into Feast and its training set built once.
2. The same seeded trial configurations are run
   (a) one after another in this process, every stage, one thread per trial (the resources Tune gives a trial),
   (b) the same, with the libraries' default threads (what a plain loop gets on this machine),
   (c) by Ray Tune, ``concurrency`` trials at a time, every stage (speedup from parallel trials alone),
   (d) by Ray Tune with ASHA early stopping (what the pipeline runs; the stages it skipped are the saving).
   Ray's start-up is timed once and shown apart, since a search pays it once however many trials it runs, and
   (e) the same search with trials that compute nothing measures Tune's fixed cost (trial actors, workers'
   imports, bookkeeping), so the table also shows the speedup on the search's compute alone.
3. The whole pipeline through the KFP local runner: wall time against the time inside its steps.

Prints tables; asserts nothing. `make bench` or `.venv/bin/python benchmarks/training_search.py [trials] [events]`.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from contract.registry import load
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.synthetic_stream import stream_backlog
from local.training import embedded_params
from pipelines.training import dataset
from pipelines.training.runner import run_local
from pipelines.training.search import SearchSettings, TrialData, run_search, sample_configs, score_stages
from pipelines.training.steps import feature_store

console = Console(width=140)


def sequential(data: TrialData, configs: list[dict[str, object]], threads: int | None) -> tuple[float, int]:
    """Every configuration, every stage, one after another; returns (seconds, stages run)."""
    model = load("fraud").model
    began = time.monotonic()
    stages = 0
    with threadpool_limits(limits=threads):
        for config in configs:
            for _stage, _score, _fitted in score_stages(model, config, data, seed=0):
                stages += 1
    return time.monotonic() - began, stages


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def machine_parallelism(n: int = 20_000_000) -> float:
    """What two CPU-bound processes gain over one on this machine: the ceiling for any parallel search here."""
    import multiprocessing

    began = time.monotonic()
    _spin(n), _spin(n)
    one = time.monotonic() - began
    began = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [n, n])
    return one / (time.monotonic() - began)


def main() -> None:
    # Big enough that trials, not Tune's fixed cost of a few seconds, dominate (as they do in real searches).
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    n_events = int(sys.argv[2]) if len(sys.argv) > 2 else 120_000
    concurrency = 2
    with tempfile.TemporaryDirectory(prefix="bench-training-") as state:
        services = EmbeddedServices(EmbeddedSettings.on_free_ports(Path(state)))
        services.up(progress=lambda _line: None)
        try:
            console.print(f"streaming {n_events} fraud events into Feast ...")
            streamed = stream_backlog(services, "fraud", n_events)
            streamed.streaming.stop()
            component = load("fraud")
            params = embedded_params(services.settings, "fraud", trials=trials, concurrency=concurrency)
            training = dataset.build(component, feature_store(params.feast_repo), params.offline_root)
            model = component.model
            train, validation = training.splits["train"], training.splits["validation"]
            data = TrialData(
                model.prepare(train),
                train[model.target].to_numpy(),
                model.prepare(validation),
                validation[model.target].to_numpy(),
            )
            configs = sample_configs(model.search_space, trials, seed=0)
            console.print(f"training set: {len(train)} train / {len(validation)} validation rows; {trials} trials")

            rows: list[tuple[str, float, int]] = []
            seconds, stages = sequential(data, configs, threads=1)
            rows.append(("(a) sequential, one thread per trial", seconds, stages))
            seconds, stages = sequential(data, configs, threads=None)
            rows.append(("(b) sequential, default threads", seconds, stages))

            import ray
            from mlflow import MlflowClient

            began = time.monotonic()
            ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
            ray_start = time.monotonic() - began
            client = MlflowClient(services.settings.mlflow_url)
            experiment = client.create_experiment(f"bench-{time.time_ns()}")
            idle = dataclasses.replace(
                model,
                fit=lambda params, x, y, seed: iter([None] * model.max_stages),
                predict=lambda fitted, x: np.zeros(len(x)),
            )
            for label, early, searched in (
                ("(c) Ray Tune, every stage", False, model),
                ("(d) Ray Tune + ASHA (the pipeline)", True, model),
                ("(e) Ray Tune, trials that compute nothing", False, idle),
            ):
                parent = client.create_run(experiment, run_name=label)
                settings = SearchSettings(trials=trials, concurrency=concurrency, early_stopping=early)
                result = run_search(
                    searched,
                    data,
                    settings,
                    services.settings.mlflow_url,
                    experiment,
                    parent.info.run_id,
                    Path(state) / "tune",
                    progress=lambda _line: None,
                )
                rows.append((label, result.wall_s, result.stages_run()))
            ray.shutdown()

            baseline = rows[0][1]
            table = Table(title=f"search: {trials} trials, {concurrency} cores", title_justify="left")
            for column in ("mode", "wall s", "stages run", "speedup vs (a)", "speedup vs (b)"):
                table.add_column(column, justify="right" if column != "mode" else "left")
            for label, seconds, stages in rows:
                table.add_row(
                    label, f"{seconds:.1f}", str(stages), f"{baseline / seconds:.2f}x", f"{rows[1][1] / seconds:.2f}x"
                )
            console.print(table)
            full, asha, fixed = rows[2], rows[3], rows[4][1]
            console.print(
                f"this machine's own ceiling: two CPU-bound processes run {machine_parallelism():.2f}x faster than one"
            )
            console.print(
                f"Tune's fixed cost (e): {fixed:.1f}s; on the search's compute alone, (c) is "
                f"{baseline / max(full[1] - fixed, 1e-9):.2f}x (a) and "
                f"{rows[1][1] / max(full[1] - fixed, 1e-9):.2f}x (b)"
            )
            console.print(
                f"Ray start-up (paid once per search, not in the rows above): {ray_start:.1f}s; "
                f"ASHA ran {asha[2]}/{full[2]} stages ({1 - asha[2] / full[2]:.0%} saved) and took "
                f"{asha[1]:.1f}s instead of {full[1]:.1f}s"
            )

            console.print("the whole pipeline through the KFP local runner ...")
            pipeline = run_local(params, Path(state) / "pipelines", progress=lambda _line: None)
            inside = sum(pipeline.step_s.values())
            overhead = Table(title="pipeline overhead (KFP local runner)", title_justify="left")
            overhead.add_column("part")
            overhead.add_column("s", justify="right")
            for step, seconds in pipeline.step_s.items():
                overhead.add_row(f"step {step} (subprocess, imports included)", f"{seconds:.1f}")
            overhead.add_row("total wall time", f"{pipeline.wall_s:.1f}")
            overhead.add_row("outside the steps (orchestration)", f"{pipeline.wall_s - inside:.1f}")
            console.print(overhead)
        finally:
            services.down(progress=lambda _line: None)


if __name__ == "__main__":
    main()
