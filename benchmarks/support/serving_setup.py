"""The serving benchmark's set-up: embedded Redis and MLflow on free ports, the fraud component's online features
and a registered model (``set_up``), the key requests through HAProxy carry when the inference key check is on, and
the peer it is measured against, ``mlflow models serve`` on the same registry version (``mlflow_serve``). See
``benchmarks/serving_latency.py``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from contract import Component
from contract.registry import load as load_component
from local import inference_keys
from local.paths import venv_bin
from local.service_spec import free_port
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from local.traffic import instances
from pipelines.features.feast_repo import push_source_name
from tests.offline_quality import with_labels
from tests.support.streaming_reference import reference_windows

N_EVENTS = 20_000


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
    raw = pd.DataFrame(events)
    # Each transaction's verdict from its resolution event, as the training set joins it.
    frame = with_labels(component, raw, model.examples(raw)).sort_values("event_timestamp").reset_index(drop=True)
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
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    """Sent with requests through HAProxy: a key of the platform's own consumer when the key check is on, else none
    (``inference_keys.own_headers``, as the demo's traffic)."""


def set_up(state: Path, progress: Callable[[str], None], key_check: bool = False) -> Setup:
    """Services, online features and a registered model in ``state``. A state folder kept from an earlier run
    (``--keep``) reuses its ports and model; the features are pushed again so that they are fresh. ``key_check``
    turns embedded mode's inference key check on (a kept state may have it on already); either way the proxy must be
    started after this (its key map is read then)."""
    import mlflow

    saved = state / "benchmark.json"
    known = json.loads(saved.read_text()) if saved.exists() else {}
    settings = EmbeddedSettings(state, **known["ports"]) if known else EmbeddedSettings.on_free_ports(state)
    # Kafka for the inference log: embedded mode's server logs every scored row to it, as in the demo.
    services = EmbeddedServices(settings, ["kafka", "redis", "mlflow"])
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
    rows = instances(component, events)[-2000:]
    if key_check and not inference_keys.enabled(settings):
        inference_keys.create(settings, inference_keys.OWN_CONSUMER)  # turns the check on; replaced just below
    headers = inference_keys.own_headers(settings)
    if headers:
        progress(
            f"the inference key check is on: requests through HAProxy carry a key of {inference_keys.OWN_CONSUMER!r}"
        )
    return Setup(services, component, version, streaming.repo, rows, headers)


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
