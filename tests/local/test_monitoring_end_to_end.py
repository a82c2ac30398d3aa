"""Issue 18's monitoring, end to end in embedded mode, for fraud (binary, ROC AUC) and demand (regression, MAE).
Longer than 400 lines because it is one chain, run twice: the pandas reference, the waits for each link and the
domain-specific shifts read best beside the steps they check.

The real chain: the component's streaming as ``local/streaming.py`` starts it (feature job, pusher, monitor job,
exporter), a backlog of generated events streamed through it, a model trained on the same events and registered as
the pipeline registers it (with its profile), served by a real model server with the inference log on, requests over
HTTP with request ids, and label events on ``<c>.events`` as the generator makes them, their delays compressed to a
few seconds (label times after the prediction and within ``max_delay_s``). Prometheus, Alertmanager and the receiver
are the embedded ones with shortened ``for`` durations; the exporter slides every 2 seconds.

Required: the exporter's live metric (on its /metrics and in Prometheus) equals the component's metric computed with
pandas from the records read back from ``<c>.predictions`` and ``<c>.labels`` joined on the feedback key, on at least
the exporter's minimum of labels. Drift stays under the shipped thresholds on requests drawn like the training rows,
for the columns a burst of requests can draw like them (``Case.stationary``): demand's every feature and its
predictions, although its 300 orders read the same 12 zone snapshots over and over (the exporter measures drift on
distinct examples and independent observations, ``monitoring.windows``). It rises above them once the test shifts
the stream (fraud: amounts x5 in the requests; demand: a surge of orders in the events, which moves the zones'
counts), until the shift's alert reaches the receiver (fraud: ``FeatureDrift``; demand: ``FeatureOutOfRange``: a
dozen zones are a dozen draws, too few for the drift rule to alert on within the test's minutes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from contract import Component
from contract.registry import load
from contract.streaming import topics
from contract.tasks import encode_target
from local.model_serving import EmbeddedServing
from local.services import EmbeddedServices
from local.settings import AlertingSettings, EmbeddedSettings
from local.streaming import EmbeddedStreaming
from local.synthetic_stream import generated_at
from local.traffic import instances
from monitoring import metrics as m
from monitoring.alert_routing import Routing
from monitoring.alert_rules import SHIPPED_THRESHOLDS as T
from monitoring.alert_rules import Thresholds, Timing
from pipelines.streaming.producer import advance_watermark, produce
from tests.support.monitored_model import train_and_register

pytestmark = pytest.mark.local

FAST = AlertingSettings(
    scrape_interval="1s",
    evaluation_interval="1s",
    rules=Timing(drift_for="3s", quality_for="3s", performance_for="3s"),
    thresholds=Thresholds(),
    routing=Routing(group_wait="1s", group_interval="1s", repeat_interval="1h"),
)
EXPORTER_WINDOW = (900.0, 2.0)
"""Long enough to hold every request of a component's test; a short slide shows each change within seconds."""
WAIT_S = 240
"""How long each state may take to show before the test fails (seconds on an idle machine)."""
MIN_LABELS = int(T.min_labels)


@dataclass(frozen=True)
class Case:
    name: str
    backlog: int
    """Events streamed before serving: over an hour, so the hour windows are full when training starts."""
    extra: int
    """Events generated after the backlog: the requests' and their labels'."""
    requests: int
    """Requests per phase."""
    stationary: tuple[str, ...]
    """Columns whose drift must stay under the thresholds on the stationary requests. Not fraud's merchant
    features, which the test does not rely on: 60 merchants' states over a few minutes of the stream against
    training's hours (the exporter counts them as 60 draws, not as the hundreds of transactions that read them)."""
    stationary_predictions: bool
    """Whether the predictions' drift must stay under the thresholds too."""
    shifted: str
    """The column the shift moves."""
    shifted_requests: int
    """Requests after the shift: enough to outweigh the stationary ones in the exporter's window."""
    alert: tuple[str, str]
    """The alert (name, reason) the shift must raise, and only the shift."""


CASES = (
    Case(
        "fraud",
        64_000,
        6_000,
        400,
        (
            "amount",
            "channel",
            *(f"card_{w}__{a}" for w in ("10m", "1h") for a in ("event_count", "amount_sum", "amount_avg")),
        ),
        False,
        "amount",
        400,
        ("FeatureDrift", "drift"),
    ),
    Case(
        "demand",
        12_000,
        2_500,
        300,
        ("zone_5m__event_count", "zone_15m__event_count", "zone_15m__basket_value_avg", "zone_1h__event_count"),
        True,
        "zone_5m__event_count",
        900,
        ("FeatureOutOfRange", "quality"),
    ),
)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    """Kafka, Redis, MLflow, Prometheus, Alertmanager and the receiver, with alert timings of seconds."""
    root = tmp_path_factory.mktemp("monitoring-e2e")
    settings = replace(EmbeddedSettings.on_free_ports(root / "state"), alerting=FAST)
    names = ["kafka", "redis", "mlflow", "alerts", "alertmanager", "prometheus"]
    embedded = EmbeddedServices(settings, names)
    embedded.up(progress=lambda line: print(f"[services] {line}"))
    yield embedded
    embedded.down(progress=lambda line: print(f"[services] {line}"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the stream ---------------------------------------------------------------------------------------------


def stream(services: EmbeddedServices, component: Component, events: list[dict[str, Any]]) -> EmbeddedStreaming:
    """Start the streaming (monitor included) and stream ``events``; return once their features are online."""
    streaming = EmbeddedStreaming(services, component, flush_every_s=1.0)
    assert streaming.monitor is not None, f"{component.name} declares feedback: it has a monitor"
    streaming.monitor.exporter_window = EXPORTER_WINDOW
    streaming.start(progress=print)
    produce(component, services.settings.kafka_bootstrap, events)
    # Windows close up to the backlog's last event (the watermark trails a marker by watermark_s), not beyond: a
    # later watermark would close windows over the silence after it, whose counts no training row has.
    last = events[-1]["event_time"] + component.streaming.watermark_s * 1000 + 1
    advance_watermark(component, services.settings.kafka_bootstrap, last)
    deadline = time.monotonic() + WAIT_S
    while not (status := streaming.status()).caught_up:
        assert time.monotonic() < deadline, f"streaming of {component.name} did not catch up: {status}"
        time.sleep(1)
    return streaming


def send(endpoint: str, component: Component, rows: list[dict[str, Any]], phase: str) -> list[str]:
    """One V1 request per row, with its request id; returns the ids."""
    url = f"{endpoint}/v1/models/{component.name}:predict"
    ids = []
    with requests.Session() as session:
        for i, row in enumerate(rows):
            request_id = f"{phase}-{i}"
            reply = session.post(url, json={"instances": [row]}, headers={"x-request-id": request_id}, timeout=30)
            assert reply.status_code == 200, f"{phase} request {i}: {reply.status_code} {reply.text[:300]}"
            ids.append(request_id)
    return ids


def labels_for(component: Component, future: list[dict[str, Any]], keys: set[str]) -> list[dict[str, Any]]:
    """The generator's label events of ``keys`` (one each, the first), timed now: a few seconds after scoring
    instead of minutes, within ``max_delay_s`` all the same."""
    feedback = component.streaming.feedback
    assert feedback is not None
    kind = component.streaming.events.kind or "kind"
    found: dict[str, dict[str, Any]] = {}
    for event in future:
        if event.get(kind) == feedback.kind and event[feedback.key] in keys:
            found.setdefault(event[feedback.key], event)
    missing = keys - found.keys()
    assert not missing, f"{len(missing)} keys have no label among the generated events; generate more"
    at = now_ms()
    return [{**event, "event_time": at} for event in found.values()]


# -- reading back ---------------------------------------------------------------------------------------------


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record the topic holds now, parsed."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-reader", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records, left = [], {p: end for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 60
        while left:
            assert time.monotonic() < deadline, f"{topic}: could not read to the end ({left})"
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            payload, offset = message.value(), message.offset()
            assert payload is not None and offset is not None, f"{topic}: a record without value or offset"
            records.append(orjson.loads(payload))
            if offset + 1 >= ends.get(message.partition(), 0):
                left.pop(message.partition(), None)
        return records
    finally:
        consumer.close()


def reference(component: Component, bootstrap: str, version: str) -> tuple[float, int]:
    """The component's metric over the version's predictions joined with their labels, from the topics with
    pandas: the key from the request or the entities, label times in ``[t - watermark_s, t + max_delay_s]``,
    each (request, row) once. Returns the metric and the labelled rows it rests on."""
    feedback = component.streaming.feedback
    assert feedback is not None
    names = topics(component.name, labels=True)
    served = pd.DataFrame(read_topic(bootstrap, names["predictions"]))
    served = served[served["model_version"] == version]
    served["key"] = [
        r.get(feedback.key, e.get(feedback.key)) for r, e in zip(served["request"], served["entities"], strict=True)
    ]
    output = "estimate" if component.model.task == "regression" else "score"  # as the log names a binary's
    served["score"] = [p[output] for p in served["prediction"]]
    labels = pd.DataFrame(read_topic(bootstrap, names["labels"])).rename(columns={"event_time": "label_time"})
    joined = served.merge(labels, on="key")
    within = joined["label_time"].between(
        joined["event_time"] - component.streaming.watermark_s * 1000,
        joined["event_time"] + feedback.max_delay_s * 1000,
    )
    joined = joined[within].drop_duplicates(["request_id", "row"])
    model = component.model
    y = encode_target(model, joined["label"].to_numpy())
    return model.metric.score(y, joined["score"].to_numpy(dtype="float64")), len(joined)


# -- the exporter and Prometheus ---------------------------------------------------------------------------------


Exposed = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(port: int) -> Exposed:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return {}
    found: Exposed = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(exposed: Exposed, series: m.Series, component: str, version: str, **labels: str) -> float | None:
    key = tuple(sorted({"component": component, "version": version, **labels}.items()))
    return exposed.get(series.name, {}).get(key)


def drift(exposed: Exposed, component: str, version: str) -> dict[str, tuple[float, float]]:
    """Feature -> (PSI, p-value) in this scrape."""
    out = {}
    for key, psi in exposed.get(m.FEATURE_PSI.name, {}).items():
        labels = dict(key)
        if labels["component"] == component and labels["version"] == version:
            p = value(exposed, m.FEATURE_DRIFT_PVALUE, component, version, feature=labels["feature"])
            out[labels["feature"]] = (psi, 1.0 if p is None else p)
    return out


def drifted(psi_p: tuple[float, float]) -> bool:
    return psi_p[0] > T.drift_psi and psi_p[1] < T.drift_pvalue


def wait_for(port: int, what: str, check: Any) -> Exposed:
    deadline = time.monotonic() + WAIT_S
    while True:
        exposed = scrape(port)
        if exposed and check(exposed):
            return exposed
        assert time.monotonic() < deadline, f"{what} not within {WAIT_S}s"
        time.sleep(0.5)


def query(services: EmbeddedServices, promql: str) -> list[dict[str, Any]]:
    response = requests.get(f"{services.settings.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


# -- the test -----------------------------------------------------------------------------------------------------


def shift_demand(component: Component, services: EmbeddedServices, zones: list[str], after_ms: int) -> None:
    """A surge: a hundred orders in every zone between ``after_ms`` (the stream's last event: nothing earlier is
    late) and the next minute's end of windows, then the watermark past that end, so the zones' online counts
    move. The orders may lie a little in the future: the job takes event times up to ``MAX_FUTURE_S`` ahead."""
    boundary = (now_ms() // 60_000 + 1) * 60_000
    start = max(boundary - 50_000, after_ms + 1_000)
    rng = np.random.default_rng(3)
    surge: list[dict[str, Any]] = [
        {
            "kind": "order",
            "order_id": f"surge-{zone}-{i}",
            "zone_id": zone,
            "forecast_id": f"{zone}@surge",
            "basket_value": 30.0,
            "event_time": int(t),
        }
        for zone in zones
        for i, t in enumerate(np.sort(rng.integers(start, boundary, 100)))
    ]
    surge.sort(key=lambda e: int(e["event_time"]))
    produce(component, services.settings.kafka_bootstrap, surge)
    # The watermark trails the newest event time by watermark_s: a marker that much past the end closes the window.
    advance_watermark(
        component, services.settings.kafka_bootstrap, boundary + component.streaming.watermark_s * 1000 + 1
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_live_metric_drift_and_alert_end_to_end(services: EmbeddedServices, case: Case) -> None:
    component = load(case.name)
    bootstrap = services.settings.kafka_bootstrap
    events = generated_at(component, case.backlog + case.extra, 7, case.backlog - 1, now_ms() - 5_000)
    backlog, future = events[: case.backlog], events[case.backlog :]
    streaming = stream(services, component, backlog)
    serving = EmbeddedServing(services, component)
    try:
        version = train_and_register(component, backlog, services.settings.mlflow_url, warm_up_s=3600)
        endpoint = serving.serve(version, progress=print)
        assert streaming.monitor is not None
        port = streaming.monitor.metrics_port()
        feedback = component.streaming.feedback
        assert feedback is not None

        # Stationary: the requests of the events after the backlog, then their labels.
        rows = instances(component, future)
        stationary = rows[: case.requests]
        send(endpoint, component, stationary, "stationary")
        time.sleep(2)  # label times after every prediction's
        labels = labels_for(component, future, {r[feedback.key] for r in stationary})
        produce(component, bootstrap, labels)

        def settled(e: Exposed) -> bool:
            labelled = value(e, m.LABELLED_PREDICTIONS, case.name, version, metric=component.model.metric.name)
            return (
                value(e, m.WINDOW_ROWS, case.name, version) == len(stationary)
                and labelled is not None
                and labelled >= len(stationary)
            )

        full = wait_for(port, f"a window of the {len(stationary)} stationary requests, labelled", settled)
        expected, labelled = reference(component, bootstrap, version)
        assert labelled == len(stationary) >= MIN_LABELS
        metric = component.model.metric.name
        assert value(full, m.LABELLED_PREDICTIONS, case.name, version, metric=metric) == labelled
        assert value(full, m.LIVE_METRIC, case.name, version, metric=metric) == pytest.approx(expected, rel=1e-9)
        # Prometheus scrapes the same window (once it has scraped it whole: earlier scrapes saw fewer labels).
        where = f'component="{case.name}",version="{version}",metric="{metric}"'
        deadline = time.monotonic() + WAIT_S
        while [float(r["value"][1]) for r in query(services, f"{m.LABELLED_PREDICTIONS.name}{{{where}}}")] != [
            labelled
        ]:
            assert time.monotonic() < deadline, f"Prometheus never scraped the full window: {query(services, 'up')}"
            time.sleep(0.5)
        scraped = query(services, f"{m.LIVE_METRIC.name}{{{where}}}")
        assert [float(r["value"][1]) for r in scraped] == [pytest.approx(expected, rel=1e-9)]

        before = drift(full, case.name, version)
        print(f"{case.name} stationary drift: {before}")
        assert set(case.stationary) <= before.keys()
        assert [c for c in case.stationary if drifted(before[c])] == []
        prediction_psi = value(full, m.PREDICTION_PSI, case.name, version)
        prediction_p = value(full, m.PREDICTION_DRIFT_PVALUE, case.name, version)
        print(f"{case.name} stationary prediction drift: PSI {prediction_psi}, p {prediction_p}")
        if case.stationary_predictions:
            assert prediction_psi is not None and prediction_p is not None
            assert not drifted((prediction_psi, prediction_p))

        # Shifted.
        alertname, reason = case.alert
        receiver = services.settings.alerts_url

        def raised() -> list[dict[str, Any]]:
            alerts = requests.get(receiver, params={"alertname": alertname}, timeout=10).json()
            return [
                a
                for a in alerts
                if a["labels"].get("component") == case.name and a["labels"]["feature"] == case.shifted
            ]

        out_of_range = value(full, m.OUT_OF_RANGE_RATE, case.name, version, feature=case.shifted)
        assert out_of_range is not None and out_of_range <= T.out_of_range_rate
        assert raised() == [], f"{alertname} on {case.shifted} before the shift"
        later = rows[case.requests : case.requests + case.shifted_requests]
        if case.name == "fraud":
            later = [{**row, "amount": row["amount"] * 5} for row in later]
        else:
            shift_demand(component, services, sorted({r["zone_id"] for r in rows}), labels[0]["event_time"])
            time.sleep(3)  # the pusher's flush
        send(endpoint, component, later, "shifted")
        shifted = wait_for(
            port,
            f"drift on {case.shifted} above the stationary stream's",
            lambda e: (
                drifted(found := drift(e, case.name, version).get(case.shifted, (0.0, 1.0)))
                and found[0] > before[case.shifted][0]
            ),
        )
        print(f"{case.name} shifted drift: {drift(shifted, case.name, version)}")
        deadline = time.monotonic() + WAIT_S
        while not (alerts := raised()):
            assert time.monotonic() < deadline, f"no {alertname} on {case.shifted}: {query(services, 'ALERTS')}"
            time.sleep(1)
        assert alerts[0]["status"] == "firing"
        assert alerts[0]["labels"]["version"] == version and alerts[0]["labels"]["reason"] == reason

    finally:
        serving.stop()
        streaming.stop()
