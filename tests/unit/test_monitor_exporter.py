"""The monitor exporter's arithmetic, without Kafka: panes, windows, and every number it publishes against a pandas /
sklearn reference on the same synthetic records; malformed records counted and skipped; history rows in Parquet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import log_loss, mean_absolute_error, roc_auc_score

from contract import Component
from contract.drift import ColumnDrift, prediction_drift, window_counts, window_drift
from contract.profile import NumericProfile, Profile, build_profile
from contract.registry import load
from monitoring import metrics as m
from monitoring.exporter import Exporter, Registry
from monitoring.records import MalformedRecord, RecordReader
from monitoring.stats import drift
from monitoring.windows import Panes, VersionWindows, feature_views

pytestmark = pytest.mark.unit

START = 1_764_000_000_000  # a pane boundary for the slides below (a whole number of minutes)
SLIDE, WINDOW = 60_000, 300_000


def test_pane_arithmetic() -> None:
    panes = Panes(WINDOW, SLIDE)
    assert panes.count == 5
    assert panes.pane(START) == START // SLIDE and panes.pane(START + SLIDE - 1) == START // SLIDE
    assert panes.boundary(START + 59_999) == START and panes.boundary(START + 60_000) == START + SLIDE
    first = START // SLIDE
    assert list(panes.window(START + SLIDE)) == [first - 4, first - 3, first - 2, first - 1, first]
    with pytest.raises(ValueError, match="whole number of slides"):
        Panes(300_000, 70_000)
    with pytest.raises(ValueError, match="must be positive"):
        Panes(300_000, 0)


def _features(component: Component) -> list[str]:
    return [ref.replace(":", "__") for ref in component.feature_refs()]


def _training(component: Component, n: int, seed: int) -> pd.DataFrame:
    rows = pd.DataFrame(component.generate(n, START - 86_400_000, seed))
    rng = np.random.default_rng(seed)
    for name in _features(component):
        rows[name] = np.where(rng.random(n) < 0.1, np.nan, rng.poisson(3, n).astype(float))
    return rows


def _outputs(component: Component, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if component.model.task == "multiclass":
        return rng.dirichlet(np.ones(len(component.model.classes)), n)
    if component.model.task == "regression":
        return rng.gamma(3.0, 2.0, n)
    return rng.beta(1, 6, n)


def _profile(component: Component) -> Profile:
    return build_profile(component, _training(component, 3000, 1), _outputs(component, 1000, 2))


def _prediction(component: Component, output: Any) -> dict[str, Any]:
    task, classes = component.model.task, list(component.model.classes)
    if task == "multiclass":
        scores = dict(zip(classes, [float(p) for p in output], strict=True))
        return {"scores": scores, "label": classes[int(np.argmax(output))]}
    return {"estimate": float(output)} if task == "regression" else {"score": float(output)}


def _records(component: Component, rows: pd.DataFrame, outputs: np.ndarray, times: np.ndarray) -> list[bytes]:
    """Inference log records of ``rows`` as the server writes them (``serving/README.md``)."""
    entities = component.entity_keys()
    fields = [f for f in component.model.request_fields if f not in entities]
    records = []
    for i, (_, row) in enumerate(rows.iterrows()):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        record = {
            "request_id": f"r{i}",
            "row": 0,
            "event_time": int(times[i]),
            "component": component.name,
            "model_version": "3",
            "entities": {k: clean[k] for k in entities},
            "request": {k: clean[k] for k in fields},
            "features": {k: clean[k] for k in _features(component)},
            "prediction": _prediction(component, outputs[i]),
            "degraded": bool(row.get("degraded", False)),
        }
        records.append(orjson.dumps(record))
    return records


def _scored(component: Component, labels: list[Any], outputs: np.ndarray, times: np.ndarray) -> list[bytes]:
    """``<c>.scored`` records in the monitor job's format."""
    return [
        orjson.dumps(
            {
                "request_id": f"r{i}",
                "row": 0,
                "model_version": "3",
                "event_time": int(times[i]) - 30_000,
                "label_time": int(times[i]),
                "key": f"k{i}",
                "prediction": _prediction(component, outputs[i]),
                "label": label,
            }
        )
        for i, label in enumerate(labels)
    ]


class FixedRegistry(Registry):
    """The registry's answers for one version, without MLflow (the local tier reads a real one)."""

    def __init__(self, component: Component, profile: Profile, holdout: float) -> None:
        super().__init__("http://mlflow.invalid", component)
        self.fixed, self.score = profile, holdout

    def profile(self, version: str) -> Profile | None:
        return self.fixed

    def holdout(self, version: str) -> tuple[float, float]:
        return self.score, 0.025


def _exporter(component: Component, tmp_path: Path, holdout: float = 0.9, min_labels: int = 50) -> Exporter:
    registry = FixedRegistry(component, _profile(component), holdout)
    return Exporter(component, registry, tmp_path, WINDOW / 1000, SLIDE / 1000, min_labels)


def _exposition(exporter: Exporter) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(exporter.metrics).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(exposed: dict[Any, float], name: str, **labels: str) -> float:
    return exposed[(name, tuple(sorted(labels.items())))]


def test_fraud_window_drift_quality_metric_and_calibration_equal_the_reference(tmp_path: Path) -> None:
    fraud = load("fraud")
    exporter = _exporter(fraud, tmp_path)
    end = START + 6 * SLIDE  # the window is [START + SLIDE, START + 6 SLIDE)
    rng = np.random.default_rng(7)
    n = 1200
    rows = _training(fraud, n, 3)
    rows.loc[rows.index[:40], "amount"] = 1e7  # outside the training range
    rows.loc[rows.index[40:60], "channel"] = "teleport"  # unseen
    rows["degraded"] = False
    rows.loc[rows.index[60:90], "degraded"] = True
    for name in _features(fraud):
        rows.loc[rows.index[60:130], name] = np.nan  # degraded rows have none; 90-130 none while not degraded
    outputs = _outputs(fraud, n, 4)
    times = rng.integers(START, end + SLIDE, n)  # some before the window, some after its end
    for value in _records(fraud, rows, outputs, times):
        exporter.handle(exporter.predictions_topic, value)
    labels = (rng.random(n) < outputs).astype(int)
    label_times = rng.integers(START, end + SLIDE, n)
    for value in _scored(fraud, labels.tolist(), outputs, label_times):
        exporter.handle(exporter.scored_topic, value)

    [stats] = exporter.slide(end)

    inside = (times >= START + SLIDE) & (times < end)
    frame = rows[inside]
    assert stats.rows == inside.sum()
    profile = _profile(fraud)  # the registry's (built the same way)
    expected = _drift_on_observations(fraud, profile, frame, times[inside])
    assert set(stats.columns) == set(expected) and "amount" in expected and "channel" in expected
    for name, column in expected.items():
        assert stats.columns[name] == column, name
    assert stats.predictions == prediction_drift(profile, outputs[inside])
    reference = profile.columns["amount"]
    assert isinstance(reference, NumericProfile)
    outside = (frame["amount"] < reference.minimum) | (frame["amount"] > reference.maximum)
    present = frame["amount"].notna().sum()  # shares of the non-null values
    assert stats.columns["amount"].out_of_range_rate == pytest.approx(outside.sum() / present)
    assert stats.columns["amount"].out_of_range_rate >= (frame["amount"] == 1e7).sum() / present > 0
    channel = frame["channel"]
    assert stats.columns["channel"].unseen_rate == pytest.approx((channel == "teleport").sum() / channel.notna().sum())
    features = frame[_features(fraud)]
    absent = frame["degraded"]
    stale = ~frame["degraded"] & features.isna().all(axis=1)
    assert stats.incomplete == {"absent": pytest.approx(absent.mean()), "stale": pytest.approx(stale.mean())}

    labelled = (label_times >= START + SLIDE) & (label_times < end)
    assert stats.labelled == labelled.sum()
    auc = roc_auc_score(labels[labelled], outputs[labelled])
    assert stats.live_metric == pytest.approx(auc) and 0 < stats.live_stderr < 0.1
    assert stats.shortfall == pytest.approx(0.9 - auc)
    assert stats.mean_predicted == pytest.approx(outputs[labelled].mean())
    assert stats.mean_observed == pytest.approx(labels[labelled].mean())

    exposed = _exposition(exporter)
    model = {"component": "fraud", "version": "3"}
    assert _value(exposed, m.LIVE_METRIC.name, **model, metric="roc_auc") == pytest.approx(auc)
    assert _value(exposed, m.LIVE_METRIC_STDERR.name, **model, metric="roc_auc") == pytest.approx(stats.live_stderr)
    assert _value(exposed, m.LABELLED_PREDICTIONS.name, **model, metric="roc_auc") == labelled.sum()
    assert _value(exposed, m.HOLDOUT_METRIC.name, **model, metric="roc_auc") == 0.9
    assert _value(exposed, m.HOLDOUT_METRIC_STDERR.name, **model, metric="roc_auc") == 0.025
    assert _value(exposed, m.METRIC_TOLERANCE.name, component="fraud", metric="roc_auc") == 0.02
    assert _value(exposed, m.WINDOW_ROWS.name, **model) == inside.sum()
    amount = expected["amount"]
    assert _value(exposed, m.FEATURE_PSI.name, **model, feature="amount") == pytest.approx(amount.psi)
    assert _value(exposed, m.FEATURE_DRIFT_PVALUE.name, **model, feature="amount") == pytest.approx(amount.p_value)
    assert _value(exposed, m.OUT_OF_RANGE_RATE.name, **model, feature="amount") == pytest.approx(
        amount.out_of_range_rate
    )
    assert (m.OUT_OF_RANGE_RATE.name, tuple(sorted({**model, "feature": "channel"}.items()))) not in exposed
    assert _value(exposed, m.INCOMPLETE_ROWS.name, **model, state="absent") == pytest.approx(absent.mean())
    assert _value(exposed, m.RECORDS_READ.name + "_total", component="fraud", topic="fraud.predictions") == n

    # One history row for the version, with the same numbers.
    history = pd.read_parquet(tmp_path / "fraud")
    assert len(history) == 1
    row = history.iloc[0]
    assert (row["version"], row["rows"], row["labelled"]) == ("3", inside.sum(), labelled.sum())
    assert row["live_metric"] == pytest.approx(auc) and row["absent_rate"] == pytest.approx(absent.mean())
    by_feature = {f["feature"]: f for f in row["features"]}
    assert by_feature["amount"]["psi"] == pytest.approx(amount.psi)

    # The next slide drops the first pane; rows that old arriving late are dropped too.
    exporter.slide(end + SLIDE)
    late_before = exporter.windows.late
    exporter.handle(exporter.predictions_topic, _records(fraud, rows.head(1), outputs, np.array([START]))[0])
    assert exporter.windows.late == late_before + 1


def _drift_on_observations(
    component: Component, profile: Profile, frame: pd.DataFrame, times: np.ndarray
) -> dict[str, ColumnDrift]:
    """``window_drift`` of the rows (all distinct transactions), each feature's PSI and p-value on its counts scaled
    to its observations: per entity the fewer of its feature windows and distinct values, summed (the scaling
    itself: ``tests/unit/test_monitor_dedup.py``)."""
    expected = window_drift(profile, frame)
    for group in component.streaming.groups:
        for feature in group.feature_names():
            name = f"{group.name}__{feature}"
            read = frame[[group.entity, name]].assign(window=times // (group.window.size_s * 1000)).dropna()
            per_entity = read.groupby(group.entity).agg(windows=("window", "nunique"), values=(name, "nunique"))
            share = min(1.0, per_entity.min(axis=1).sum() / frame[name].notna().sum())  # values with an entity or not
            counts = window_counts(profile.columns[name], frame[name])
            expected[name] = drift(profile.columns[name], counts, counts, share)
    return expected


def test_a_sliding_window_equals_the_sum_of_its_panes_whatever_the_order_of_arrival(tmp_path: Path) -> None:
    fraud = load("fraud")
    profile = _profile(fraud)
    rows, outputs = _training(fraud, 600, 5), _outputs(fraud, 600, 6)
    times = np.random.default_rng(8).integers(START, START + 5 * SLIDE, 600)
    reader = RecordReader(fraud)
    records = [reader.served(r) for r in _records(fraud, rows, outputs, times)]
    panes = Panes(WINDOW, SLIDE)
    # In order, folding after each pane (as slides do), against out of order, folded once.
    views = feature_views(fraud)
    stepwise, at_once = VersionWindows(panes, views), VersionWindows(panes, views)
    for k in range(5):
        for record in records:
            if panes.pane(record.time_ms) == panes.pane(START) + k:
                stepwise.add_served(record)
        stepwise.window("3", START + (k + 1) * SLIDE, profile)
    for record in reversed(records):
        at_once.add_served(record)
    a, b = stepwise.window("3", START + 5 * SLIDE, profile), at_once.window("3", START + 5 * SLIDE, profile)
    assert a == b and a.rows == 600


def test_delivery_log_loss_and_calibration_of_the_predicted_class(tmp_path: Path) -> None:
    delivery = load("delivery")
    exporter = _exporter(delivery, tmp_path, holdout=0.6, min_labels=100)
    n, rng = 400, np.random.default_rng(9)
    outputs = _outputs(delivery, n, 10)
    classes = list(delivery.model.classes)
    labels = [classes[rng.choice(3, p=p)] for p in outputs]
    times = np.full(n, START + 10)
    for value in _scored(delivery, labels, outputs, times):
        exporter.handle(exporter.scored_topic, value)
    [stats] = exporter.slide(START + SLIDE)
    y = np.array([classes.index(label) for label in labels])
    expected = log_loss(y, outputs, labels=[0, 1, 2])
    assert stats.live_metric == pytest.approx(expected)
    assert stats.shortfall == pytest.approx(expected - 0.6)  # log loss: lower is better, so live - holdout
    assert stats.mean_predicted == pytest.approx(outputs.max(axis=1).mean())
    assert stats.mean_observed == pytest.approx((outputs.argmax(axis=1) == y).mean())
    assert stats.rows == 0 and stats.columns == {}  # labels without served rows: no drift to compute


def test_demand_mae_and_mean_estimate(tmp_path: Path) -> None:
    demand = load("demand")
    exporter = _exporter(demand, tmp_path, holdout=2.0, min_labels=10)
    outputs = _outputs(demand, 50, 11)
    labels = np.random.default_rng(12).poisson(6, 50)
    for value in _scored(demand, labels.tolist(), outputs, np.full(50, START + 10)):
        exporter.handle(exporter.scored_topic, value)
    [stats] = exporter.slide(START + SLIDE)
    assert stats.live_metric == pytest.approx(mean_absolute_error(labels, outputs))
    assert (stats.mean_predicted, stats.mean_observed) == (pytest.approx(outputs.mean()), pytest.approx(labels.mean()))


def test_the_live_metric_waits_for_enough_labels_and_for_both_classes(tmp_path: Path) -> None:
    fraud = load("fraud")
    exporter = _exporter(fraud, tmp_path, min_labels=50)
    outputs = _outputs(fraud, 60, 13)
    for value in _scored(fraud, [1, 0] * 20, outputs[:40], np.full(40, START + 10)):
        exporter.handle(exporter.scored_topic, value)
    [few] = exporter.slide(START + SLIDE)
    assert few.labelled == 40 and math.isnan(few.live_metric) and math.isnan(few.mean_predicted)
    exposed = _exposition(exporter)
    model = {"component": "fraud", "version": "3", "metric": "roc_auc"}
    assert _value(exposed, m.LABELLED_PREDICTIONS.name, **model) == 40
    assert (m.LIVE_METRIC.name, tuple(sorted(model.items()))) not in exposed
    assert (m.METRIC_SHORTFALL.name, tuple(sorted(model.items()))) not in exposed

    for value in _scored(fraud, [0] * 60, outputs, np.full(60, START + SLIDE + 10)):
        exporter.handle(exporter.scored_topic, value)
    stats = exporter.slide(START + 2 * SLIDE)[0]
    assert stats.labelled == 100 and stats.live_metric == pytest.approx(
        roc_auc_score([1, 0] * 20 + [0] * 60, np.r_[outputs[:40], outputs])
    )
    exporter.windows.evict(START + 7 * SLIDE)
    for value in _scored(fraud, [0] * 60, outputs, np.full(60, START + 7 * SLIDE + 10)):
        exporter.handle(exporter.scored_topic, value)
    one_class = exporter.slide(START + 8 * SLIDE)[0]
    assert math.isnan(one_class.live_metric) and "roc_auc undefined" in one_class.error
    assert one_class.mean_observed == 0.0


GOOD = {"request_id": "r", "row": 0, "model_version": "3", "event_time": 1, "prediction": {"score": 0.1}}


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (None, "tombstone"),
        (orjson.dumps({**GOOD, "event_time": "soon"}), "'event_time'"),
        (orjson.dumps({**GOOD, "model_version": None}), "'model_version'"),
        (orjson.dumps({**GOOD, "request_id": None}), "'request_id'"),
        (orjson.dumps({**GOOD, "row": -1}), "'row'"),
        (orjson.dumps({**GOOD, "features": []}), "'features'"),
        (orjson.dumps({**GOOD, "prediction": {"estimate": 0.1}}), "needs 'score'"),
        (orjson.dumps({**GOOD, "prediction": {"score": "high"}}), "not a finite number"),
        (orjson.dumps({**GOOD, "degraded": "no"}), "degraded"),
    ],
)
def test_a_malformed_prediction_names_its_problem(value: bytes | None, why: str) -> None:
    with pytest.raises(MalformedRecord, match=why):
        RecordReader(load("fraud")).served(value)


def test_malformed_records_are_counted_and_skipped(tmp_path: Path) -> None:
    fraud = load("fraud")
    exporter = _exporter(fraud, tmp_path)
    good = _scored(fraud, [1], np.array([0.7]), np.array([START + 10]))[0]
    bad_label = good.replace(b'"label":1', b'"label":"maybe"')
    no_time = good.replace(b'"label_time"', b'"later"')
    for value in (b"{", good, bad_label, no_time, None):
        exporter.handle(exporter.scored_topic, value)
    exporter.handle(exporter.predictions_topic, b"\xff")
    exposed = _exposition(exporter)
    scored = {"component": "fraud", "topic": "fraud.scored"}
    assert _value(exposed, m.MALFORMED_RECORDS.name + "_total", **scored) == 4
    assert _value(exposed, m.RECORDS_READ.name + "_total", **scored) == 5
    assert _value(exposed, m.MALFORMED_RECORDS.name + "_total", component="fraud", topic="fraud.predictions") == 1
    assert exporter.slide(START + SLIDE)[0].labelled == 1


def test_a_row_read_twice_counts_once(tmp_path: Path) -> None:
    fraud = load("fraud")
    exporter = _exporter(fraud, tmp_path, min_labels=1)
    rows, outputs, times = _training(fraud, 3, 14), _outputs(fraud, 3, 15), np.full(3, START + 10)
    served, scored = _records(fraud, rows, outputs, times), _scored(fraud, [1, 0, 1], outputs, times)
    for value in served + served[:2]:
        exporter.handle(exporter.predictions_topic, value)
    for value in scored + scored[1:]:
        exporter.handle(exporter.scored_topic, value)
    [stats] = exporter.slide(START + SLIDE)
    assert (stats.rows, stats.labelled, exporter.windows.duplicates) == (3, 3, 4)
    with pytest.raises(MalformedRecord, match="not one of the classes"):
        RecordReader(load("delivery")).labelled(
            b'{"request_id": "r", "row": 0, "model_version": "1", "event_time": 5, "label_time": 6, "label": "lost", '
            b'"prediction": '
            b'{"scores": {"on_time": 1.0, "late": 0.0, "very_late": 0.0}, "label": "on_time"}}'
        )
