"""Serving: the KServe runtime (Feast lookup + prepare + model) against `mlflow models serve` and against its floor,
measured in one run on the same registered model and the same requests.

Set-up (real engines, cheaper than streaming through Flink): Redis and the MLflow server of embedded mode on free
ports; the fraud component's Feast repo applied; the newest closed window of every card and merchant from a batch
of generated events (aggregated as the streaming job does, in ``tests.local.streaming_reference``) pushed to the
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
4. The canary hop: the same server through the HAProxy of ``EmbeddedServing`` at the same rates.

The load generator (aiohttp on uvloop) runs in this process and shares the machine's cores with the servers; its
own CPU share is printed. Prints tables; asserts nothing.
`PYTHONPATH=. .venv/bin/python benchmarks/serving_latency.py [seconds per measurement] [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pandas as pd
import psutil
import uvloop
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from contract import Component
from contract.registry import load as load_component
from local.model_serving import EmbeddedServing
from local.paths import venv_bin
from local.service_spec import free_port
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from pipelines.features.feast_repo import push_source_name
from tests.local.streaming_reference import reference_windows

console = Console(width=140)
N_EVENTS = 20_000
RATES = (50, 100, 200)
CONNECTIONS = (1, 4)
TIMEOUT_S = 5.0
GOAL = "goal: p99 < 10 ms at 200/s; >= 5x mlflow's throughput; p50 at low load <= 2x the in-process floor"
began_at = time.monotonic()


def progress(line: str) -> None:
    console.print(f"[dim]{time.monotonic() - began_at:6.0f}s[/dim] {line}")


# -- set-up ---------------------------------------------------------------------------------------------------


def recent_events(component: Component, n: int) -> list[dict[str, Any]]:
    """``n`` generated events whose last one is a minute old, so their windows are within the views' TTL."""
    events = list(component.generate(n, 0, 7))
    shift = int(time.time() * 1000) - 60_000 - events[-1]["event_time"]
    return [{**event, "event_time": event["event_time"] + shift} for event in events]


def push_online(component: Component, store: Any, events: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """Each group's closed windows; the newest per entity goes to the online store, as the pusher does."""
    from feast.data_source import PushMode

    now = pd.Timestamp.now(tz="UTC")
    windows = {}
    for group in component.streaming.groups:
        frame = reference_windows(component, events, group)
        frame = frame[frame["window_end"] <= now]
        windows[group.name] = frame
        newest = frame.sort_values("window_end").drop_duplicates(group.entity, keep="last")
        store.push(push_source_name(component, group), newest, to=PushMode.ONLINE)
    return windows


def train_and_register(component: Component, events: list[dict[str, Any]], windows: dict[str, pd.DataFrame]) -> str:
    """A classifier on the windows joined as of each transaction, logged and registered like the pipeline does."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    model = component.model
    frame = model.examples(pd.DataFrame(events)).sort_values("event_timestamp").reset_index(drop=True)
    groups = {g.name: g for g in component.streaming.groups}
    for name, history in windows.items():
        group = groups[name]
        renamed = history.rename(columns={f: f"{name}__{f}" for f in group.feature_names()}).sort_values("window_end")
        ttl = pd.Timedelta(seconds=group.window.size_s + group.window.slide_s)
        frame = pd.merge_asof(
            frame,
            renamed,
            left_on="event_timestamp",
            right_on="window_end",
            by=group.entity,
            allow_exact_matches=False,
            tolerance=ttl,
        ).drop(columns="window_end")
    x = model.prepare(frame)
    fitted = list(
        model.fit(
            {**dict.fromkeys(model.search_space, 0.1), "max_leaf_nodes": 31, "min_samples_leaf": 20},
            x,
            frame[model.target].to_numpy(),
            0,
        )
    )[-1]
    mlflow.set_experiment("fraud")
    example = x.head(5)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            signature=infer_signature(example, fitted.predict_proba(example)),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pyfunc_predict_fn="predict_proba",
        )
    return str(mlflow.register_model(info.model_uri, "fraud").version)


@dataclass
class Setup:
    services: EmbeddedServices
    component: Component
    version: str
    repo: Path
    rows: list[dict[str, Any]]
    """Request rows (entity keys + request fields) of recent transactions."""


def set_up(state: Path) -> Setup:
    """Services, online features and a registered model in ``state``. A state folder kept from an earlier run
    (``--keep``) reuses its ports and model; the features are pushed again so that they are fresh."""
    import mlflow

    saved = state / "benchmark.json"
    known = json.loads(saved.read_text()) if saved.exists() else {}
    settings = EmbeddedSettings(state, **known["ports"]) if known else EmbeddedSettings.on_free_ports(state)
    services = EmbeddedServices(settings, ["redis", "mlflow"])
    services.up(progress=lambda line: progress(f"[services] {line}"))
    component = load_component("fraud")
    streaming = EmbeddedStreaming(services, component)
    store = streaming.feature_store()
    events = recent_events(component, N_EVENTS)
    windows = push_online(component, store, events)
    progress(f"{N_EVENTS} events aggregated; {sum(len(w) for w in windows.values())} windows, newest pushed to Redis")
    mlflow.set_tracking_uri(settings.mlflow_url)
    version = known.get("version") or train_and_register(component, events, windows)
    progress(f"fraud v{version} registered in MLflow")
    ports = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name.endswith("_port")}
    saved.write_text(json.dumps({"ports": ports, "version": version}))
    # Requests for cards and merchants the store knows now (the last transactions), as live traffic would be.
    fields = [*component.entity_keys(), *component.model.request_fields]
    rows = [{name: event[name] for name in fields} for event in events[-2000:]]
    return Setup(services, component, version, streaming.repo, rows)


# -- in-process floor -----------------------------------------------------------------------------------------


def quantiles(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    values = np.asarray(samples_s) * 1000
    # "higher": no interpolation, which would turn two infinite (timed-out) samples into NaN.
    return float(np.percentile(values, 50, method="higher")), float(np.percentile(values, 99, method="higher"))


def floor(setup: Setup, n: int = 300) -> tuple[dict[str, list[float]], list[dict[str, float]]]:
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
    # The same call spaced as the lowest open-loop rate spaces requests: an idle gap between requests makes the
    # next one slower (caches gone cold, an idle virtual CPU woken), which the tight loop above never pays.
    paced = f"runtime call at {RATES[0]}/s (no HTTP)"
    steps[paced] = []
    for index in range(n // 2):
        began = time.perf_counter()
        loop.run_until_complete(model({"instances": [setup.rows[index % len(setup.rows)]]}))
        steps[paced].append(time.perf_counter() - began)
        time.sleep(max(0.0, 1 / RATES[0] - (time.perf_counter() - began)))
    loop.close()
    return steps, prepared


# -- load generation ------------------------------------------------------------------------------------------


@dataclass
class Load:
    label: str
    level: float
    """Requests/s (open loop) or connections (closed loop)."""
    sent: int
    ok: int
    seconds: float
    latencies_s: list[float]
    client_cpu: float
    """Share of one core the load generator used."""
    server_cpu_ms: float = float("nan")
    """Server CPU time per request (the process and its children), in ms."""
    send_lag_p99_ms: float = float("nan")
    """Open loop: p99 of how late requests went out against their schedule (the load generator's own delay)."""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def quantiles(self) -> tuple[float, float]:
        """p50 and p99 in ms; a failed or timed-out request counts as an infinite latency."""
        if not self.sent:
            return float("nan"), float("nan")
        return quantiles(self.latencies_s + [float("inf")] * (self.sent - self.ok))


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def _session(connections: int) -> aiohttp.ClientSession:
    # A request unanswered after TIMEOUT_S counts as failed (and as an infinite latency in the quantiles).
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections), timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
    )


async def _open_loop(
    url: str, bodies: list[bytes], rate: float, seconds: float
) -> tuple[int, list[float], float, list[float]]:
    """Requests on a fixed schedule, each in its own task whatever the earlier ones are waiting for, so a slow
    reply never delays the next request (no coordinated omission). The event loop's timers tick in whole
    milliseconds, so a latency counts from when the request went out; how late that was against its schedule is
    returned too (it tells whether the load generator kept up)."""
    latencies: list[float] = []
    lags: list[float] = []

    async def one(session: aiohttp.ClientSession, body: bytes, due: float) -> None:
        sent = time.perf_counter()
        lags.append(sent - due)
        if await _post(session, url, body):
            latencies.append(time.perf_counter() - sent)

    async with _session(256) as session:
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, bodies[i % len(bodies)], due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return len(latencies), latencies, elapsed, lags


async def _closed_loop(
    url: str, bodies: list[bytes], connections: int, seconds: float
) -> tuple[int, list[float], float, list[float]]:
    """``connections`` clients, each sending its next request as soon as the previous one is answered."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while time.perf_counter() < end:
            sent = time.perf_counter()
            if await _post(session, url, bodies[i % len(bodies)]):
                latencies.append(time.perf_counter() - sent)
            i += connections

    async with _session(connections) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session, k) for k in range(connections)))
        elapsed = time.perf_counter() - start
    return len(latencies), latencies, elapsed, []


def _server_cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def settle(url: str, timeout_s: float = 180.0) -> None:
    """Wait until the server answers its health check promptly: its queue is empty."""
    base = url.split("/v1/")[0].removesuffix("/invocations")
    health = f"{base}/ping" if url.endswith("/invocations") else f"{base}/v2/health/ready"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        began = time.monotonic()
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=5) as response:
            if response.status == 200 and time.monotonic() - began < 0.2:
                return
        time.sleep(0.5)
    progress(f"{base} still busy after {timeout_s:g}s of waiting; measuring anyway")


def measure(
    label: str, url: str, bodies: list[bytes], mode: str, level: float, seconds: float, pid: int | None
) -> Load:
    """One measurement after a short warm-up at the same level, once the server has drained what an earlier
    overload left queued (requests a client gave up on are still served), so each measurement stands alone."""
    settle(url)
    run: Callable[[float], Any]
    if mode == "open":

        def run(s: float) -> Any:
            return _open_loop(url, bodies, level, s)
    else:

        def run(s: float) -> Any:
            return _closed_loop(url, bodies, int(level), s)

    uvloop.run(run(1.0))
    cpu0, server0, wall0 = time.process_time(), _server_cpu_s(pid), time.monotonic()
    ok, latencies, elapsed, lags = uvloop.run(run(seconds))
    cpu, server = time.process_time() - cpu0, _server_cpu_s(pid) - server0
    wall = time.monotonic() - wall0
    sent = int(level * seconds) if mode == "open" else ok
    server_cpu_ms = server * 1000 / max(ok, 1) if pid else float("nan")
    lag_p99 = quantiles(lags)[1] if lags else float("nan")
    result = Load(label, level, sent, ok, elapsed, latencies, cpu / wall, server_cpu_ms, lag_p99)
    p50, p99 = result.quantiles()
    progress(f"{label} {mode} {level:g}: {result.rate:.0f}/s ok {ok}/{sent}, p50 {fmt(p50)} ms, p99 {fmt(p99)} ms")
    return result


# -- servers --------------------------------------------------------------------------------------------------


def wait_for(url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout_s}s")


def mlflow_serve(setup: Setup, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    # It starts `uvicorn` from PATH: the one of this environment.
    path = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": setup.services.settings.mlflow_url, "PATH": path}
    command = [str(venv_bin(Path(sys.prefix), "mlflow")), "models", "serve", "-m", f"models:/fraud/{setup.version}"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", 180, process)
    except RuntimeError as error:
        raise RuntimeError(f"{error}: {log.read_text()[-2000:]}") from None
    return process, port


# -- report ---------------------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 2) -> str:
    if value != value:
        return "-"
    return f">{TIMEOUT_S:g}s" if value == float("inf") else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", nargs="?", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--keep", type=Path, help="state folder kept (services left running) and reused next time")
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
        setup = set_up(Path(state))
        mlflow_process = None
        serving = EmbeddedServing(setup.services, setup.component)
        try:
            steps, prepared = floor(setup)
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

            loads: list[Load] = []
            for rate in RATES:
                loads.append(measure("ours", direct, bodies, "open", rate, seconds, server_pid))
                loads.append(measure("ours via HAProxy", proxied, bodies, "open", rate, seconds, server_pid))
                loads.append(
                    measure("mlflow models serve", mlflow_url, mlflow_bodies, "open", rate, seconds, mlflow_pid)
                )
            closed: list[Load] = []
            for connections in CONNECTIONS:
                closed.append(measure("ours", direct, bodies, "closed", connections, seconds, server_pid))
                closed.append(measure("ours via HAProxy", proxied, bodies, "closed", connections, seconds, server_pid))
                closed.append(
                    measure(
                        "mlflow models serve", mlflow_url, mlflow_bodies, "closed", connections, seconds, mlflow_pid
                    )
                )
        finally:
            if mlflow_process is not None:
                os.killpg(mlflow_process.pid, signal.SIGTERM)
                mlflow_process.wait(30)
            serving.stop()
            if not options.keep:
                setup.services.down(progress=lambda _line: None)

    report(steps, loads, closed, seconds)


def report(steps: dict[str, list[float]], loads: list[Load], closed: list[Load], seconds: float) -> None:
    table = Table(
        title="floor: one single-row request in this process (ComponentModel, same model and store, 1 model thread)",
        title_justify="left",
    )
    for column in ("step", "p50 ms", "p99 ms"):
        table.add_column(column)
    for name, samples in steps.items():
        p50, p99 = quantiles(samples)
        table.add_row(name, fmt(p50), fmt(p99))
    console.print(table)
    floor_p50 = quantiles(steps["lookup+predict"])[0]
    paced_p50 = quantiles(steps[f"runtime call at {RATES[0]}/s (no HTTP)"])[0]

    table = Table(
        title=f"open loop: fixed rates, {seconds:g}s each, latency from when each request went out",
        title_justify="left",
    )
    for column in ("rate/s", "server", "ok", "p50 ms", "p99 ms", "server CPU ms/req", "client CPU", "send lag p99 ms"):
        table.add_column(column)
    for load in loads:
        p50, p99 = load.quantiles()
        table.add_row(
            f"{load.level:g}",
            load.label,
            f"{load.ok}/{load.sent}",
            fmt(p50),
            fmt(p99),
            fmt(load.server_cpu_ms),
            f"{load.client_cpu:.0%}",
            fmt(load.send_lag_p99_ms),
        )
    ours = [load for load in loads if load.label == "ours"]
    proxied = [load for load in loads if load.label == "ours via HAProxy"]
    # Only rates where both answered in time: a timed-out p50 says nothing about the hop.
    hops = [b.quantiles()[0] - a.quantiles()[0] for a, b in zip(ours, proxied, strict=True)]
    hop = statistics.median(finite) if (finite := [h for h in hops if np.isfinite(h)]) else float("nan")
    table.caption = (
        f"p50 at {ours[0].level:g}/s = {fmt(ours[0].quantiles()[0] / floor_p50, 1)}x the in-process lookup+predict "
        f"({floor_p50:.2f} ms) in a tight loop, {fmt(ours[0].quantiles()[0] / paced_p50, 1)}x the in-process "
        f"runtime call at the same pace ({paced_p50:.2f} ms); the HAProxy hop adds {fmt(hop)} ms at p50 (median "
        "over the rates). "
        "mlflow gets the prepared feature rows (no Feast lookup).\n" + GOAL
    )
    console.print(table)

    table = Table(title=f"closed loop: max throughput, {seconds:g}s each", title_justify="left")
    for column in ("connections", "server", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "client CPU"):
        table.add_column(column)
    for load in closed:
        p50, p99 = load.quantiles()
        table.add_row(
            f"{load.level:g}",
            load.label,
            f"{load.rate:.0f}",
            fmt(p50),
            fmt(p99),
            fmt(load.server_cpu_ms),
            f"{load.client_cpu:.0%}",
        )
    pairs = [(a, b) for a in closed if a.label == "ours" for b in closed if b.label != "ours" and b.level == a.level]
    table.caption = (
        ", ".join(
            f"{a.level:g} connection(s): ours / {b.label} = {a.rate / b.rate:.1f}x"
            for a, b in pairs
            if b.label == "mlflow models serve"
        )
        + ". The load generator shares the 2 cores with the servers.\n"
        + GOAL
    )
    console.print(table)


if __name__ == "__main__":
    main()
