"""The two record formats the monitor exporter reads, parsed into what its windows keep, and checked: a record that
does not fit is a ``MalformedRecord`` naming what is wrong (the exporter counts it and goes on).

- ``<component>.predictions``, the inference log (``serving/README.md``): one served row, its request fields,
  features as served, prediction and ``degraded`` flag -> ``Served``;
- ``<component>.scored``, the monitor job's join of a prediction with its label (``monitoring/README.md``): the
  prediction as the log recorded it and the label value -> ``Labelled``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from contract import Component
from contract.tasks import classes
from monitoring.metrics import ABSENT, STALE


class MalformedRecord(ValueError):
    """A record the exporter cannot use; the message says why."""


@dataclass(frozen=True)
class Served:
    """One served row, as drift and quality need it."""

    key: tuple[str, int]
    """(request id, row): the same row read twice (an at-least-once replay) counts once."""
    version: str
    time_ms: int
    values: dict[str, Any]
    """Request fields and features (``<view>__<feature>``) by name; None where absent."""
    prediction: Any
    """Binary: the score; regression: the estimate; multiclass: the predicted class's name."""
    incomplete: str | None
    """``ABSENT`` (served degraded: no features read), ``STALE`` (every feature null), or None."""


@dataclass(frozen=True)
class Labelled:
    """One prediction with its label, as the metric and calibration need them."""

    key: tuple[str, int]
    """(request id, row): the monitor job writes at least once, and every copy of a pair is the same record."""
    version: str
    time_ms: int
    """When the label joined it (``label_time``): the window holds the newest evidence."""
    label: float
    """Binary: 0/1; regression: the value; multiclass: the class index."""
    output: float | tuple[float, ...]
    """What ``predict`` answered for the row: a score or estimate, or the class probabilities in class order."""


class RecordReader:
    """Parses one component's records."""

    def __init__(self, component: Component) -> None:
        self.model = component.model
        self.task = component.model.task
        self.classes = classes(component.model)
        self.features = tuple(ref.replace(":", "__") for ref in component.feature_refs())

    def served(self, value: bytes | None) -> Served:
        record = _object(value)
        version, time_ms = _version(record), _integer(record, "event_time")
        values: dict[str, Any] = {}
        for part in ("entities", "request", "features"):
            section = record.get(part, {})
            if not isinstance(section, Mapping):
                raise MalformedRecord(f"{part!r} is {type(section).__name__}, not an object")
            values.update(section)
        degraded = record.get("degraded", False)
        if not isinstance(degraded, bool):
            raise MalformedRecord(f"'degraded' is {degraded!r}, not true or false")
        incomplete = None
        if degraded:
            incomplete = ABSENT
        elif self.features and all(_null(values.get(name)) for name in self.features):
            incomplete = STALE
        return Served(_key(record), version, time_ms, values, self._served_prediction(record), incomplete)

    def labelled(self, value: bytes | None) -> Labelled:
        record = _object(value)
        version = _version(record)
        time_ms = max(_integer(record, "event_time"), _integer(record, "label_time"))
        if "label" not in record:
            raise MalformedRecord("no 'label'")
        return Labelled(_key(record), version, time_ms, self._label(record["label"]), self._output(record))

    def _served_prediction(self, record: Mapping[str, Any]) -> Any:
        prediction = _prediction(record)
        if self.task == "multiclass":
            label = prediction.get("label")
            if not isinstance(label, str):
                raise MalformedRecord(f"multiclass prediction without a class 'label': {dict(prediction)}")
            return label
        return self._output(record)

    def _output(self, record: Mapping[str, Any]) -> float | tuple[float, ...]:
        prediction = _prediction(record)
        if self.task == "multiclass":
            scores = prediction.get("scores")
            if not isinstance(scores, Mapping) or set(scores) != set(self.classes):
                raise MalformedRecord(f"multiclass 'scores' must name every class ({', '.join(self.classes)})")
            return tuple(_number(scores[name], f"score of {name!r}") for name in self.classes)
        key = "estimate" if self.task == "regression" else "score"
        if key not in prediction:
            raise MalformedRecord(f"a {self.task} prediction needs {key!r}, got {sorted(prediction)}")
        return _number(prediction[key], key)

    def _label(self, value: Any) -> float:
        if self.task == "regression":
            return _number(value, "label")
        if isinstance(value, str) and value in self.classes:
            return float(self.classes.index(value))
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float) and value in range(len(self.classes)):
            return float(value)
        raise MalformedRecord(f"label {value!r} is not one of the classes {', '.join(self.classes)} or their index")


def _object(value: bytes | None) -> Mapping[str, Any]:
    if value is None:
        raise MalformedRecord("no value (a tombstone)")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise MalformedRecord(f"not JSON: {error}") from None
    if not isinstance(record, dict):
        raise MalformedRecord(f"a JSON {type(record).__name__}, not an object")
    return record


def _key(record: Mapping[str, Any]) -> tuple[str, int]:
    request_id, row = record.get("request_id"), record.get("row")
    if not isinstance(request_id, str) or not request_id:
        raise MalformedRecord(f"'request_id' is {request_id!r}")
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise MalformedRecord(f"'row' is {row!r}, not a row index")
    return request_id, row


def _version(record: Mapping[str, Any]) -> str:
    version = record.get("model_version")
    if isinstance(version, int) and not isinstance(version, bool):
        return str(version)
    if not isinstance(version, str) or not version:
        raise MalformedRecord(f"'model_version' is {version!r}")
    return version


def _integer(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise MalformedRecord(f"{name!r} is {value!r}, not milliseconds since the epoch")
    return value


def _prediction(record: Mapping[str, Any]) -> Mapping[str, Any]:
    prediction = record.get("prediction")
    if not isinstance(prediction, Mapping):
        raise MalformedRecord(f"'prediction' is {prediction!r}, not an object")
    return prediction


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedRecord(f"{name} is {value!r}, not a finite number")
    return float(value)


def _null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
