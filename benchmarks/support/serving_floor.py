"""The serving benchmark's floor: the served path's steps (validation, online lookup, ``prepare``, predict, the
runtime's whole call) timed in this process, without HTTP, on the same model and store as the servers measured.
See ``benchmarks/serving_latency.py``."""

from __future__ import annotations

import asyncio
import time

from threadpoolctl import threadpool_limits

from benchmarks.support.serving_setup import Setup


def paced_step(rate: float) -> str:
    """The floor's step name for the runtime's call spaced as ``rate`` requests a second space them."""
    return f"runtime call at {rate:g}/s (no HTTP)"


def floor(setup: Setup, paced_rate: float, n: int = 300) -> tuple[dict[str, list[float]], list[dict[str, float]]]:
    """Seconds per request of each step of the served path, in this process; and the model's input rows."""
    from feast import FeatureStore

    from serving.runtime import ComponentModel

    model = ComponentModel(
        setup.component, f"models:/fraud/{setup.version}", setup.version, FeatureStore(str(setup.repo))
    )
    model.load()
    # One model thread, as the server runs it (see serving/server.py): the floor is the fastest this path goes.
    threadpool_limits(limits=1)
    steps: dict[str, list[float]] = {k: [] for k in ("validate", "lookup", "prepare", "predict", "lookup+predict")}
    steps["runtime call (no HTTP)"] = []
    prepared: list[dict[str, float]] = []
    spec = setup.component.model
    loop = asyncio.new_event_loop()
    for index in range(n + 20):
        body = {"instances": [setup.rows[index % len(setup.rows)]]}
        t0 = time.perf_counter()
        _, rows = model.preprocess(body)
        t1 = time.perf_counter()
        joined = model.features.lookup(rows)
        t2 = time.perf_counter()
        x = spec.prepare(joined)
        x = x[model.columns] if list(x.columns) != model.columns else x
        t3 = time.perf_counter()
        spec.predict(model.estimator, x)
        t4 = time.perf_counter()
        loop.run_until_complete(model(body))  # validation, lookup, prepare, predict, metrics: all but HTTP
        t5 = time.perf_counter()
        if index < 20:  # warm-up
            continue
        for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t1, t5 - t4), strict=True):
            steps[name].append(seconds)
        prepared.append(x.iloc[0].to_dict())
    # The same call spaced as the lowest open-loop rate (``paced_rate``) spaces requests: an idle gap between
    # requests makes the next one slower (caches gone cold, an idle virtual CPU woken), which the tight loop above
    # never pays.
    paced = paced_step(paced_rate)
    steps[paced] = []
    for index in range(n // 2):
        began = time.perf_counter()
        loop.run_until_complete(model({"instances": [setup.rows[index % len(setup.rows)]]}))
        steps[paced].append(time.perf_counter() - began)
        time.sleep(max(0.0, 1 / paced_rate - (time.perf_counter() - began)))
    loop.close()
    return steps, prepared
