"""The reference profile of a model version: what its training set and its holdout predictions looked like, kept so
that what the version serves can be compared with what it learned from (``contract.drift``).

Profiled columns are what the inference log records of each scored row and the monitor sees: the request fields
(``ModelSpec.request_fields``) and the raw online features (``<view>__<feature>``, before ``prepare``), each as the
training set held it. Entity keys are not profiled (identifiers, no distribution), and neither is a string request
field with more than ``MAX_CATEGORIES`` distinct values (an order id): it is listed in ``Profile.skipped`` with why.

- numeric (features, and request fields of type long/double): ``edges``, the cut points of ``DEFAULT_BINS``
  quantile bins of the non-null values (bin 0 is up to ``edges[0]``, bin i holds ``edges[i-1] < x <= edges[i]``,
  the last is above ``edges[-1]``, so a window's value out of the training range still falls in a bin), the
  training count per bin, the null count, and the range (``minimum``, ``maximum``). Discrete values (counts) give
  fewer bins: cut points are training values, repeated ones merged, so every bin holds training rows;
  ``holdout_out_of_range``, the share of the holdout's values outside that range; and for a feature,
  ``independent_share``, its independent draws per row (``independent_draws``: a training set of 5,000 rows over
  11 minutes of 60 merchants' one-hour sums holds about 60 of them);
- categorical (request fields of type string or boolean): the count of each category, and nulls; and
  ``holdout_unseen``, the share of the holdout's values in categories training never saw;
- the holdout's shares are what data the model never fit shows by nature (a one-hour maximum of a heavy tail
  exceeds any finite sample's now and then): the quality alerts count what a window shows beyond them;
- the predictions on the holdout: binary and regression as numeric (the score, the estimate), multiclass as the
  predicted class (the most probable, as the server's ``label``) with every class of ``contract.tasks.classes``.

It is JSON (``to_json``/``from_json``), stored with the training run a registered version points to (the
pipeline's registration step; ``pipelines.training.registration.load_profile`` reads it back by version).

pandas and numpy are imported when a profile is computed: the contract is imported by the streaming job's
environment, which reads profiles but has no use for them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from contract.tasks import classes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from contract.component import Component

FORMAT = 1
"""Bumped when the JSON changes incompatibly; ``from_json`` refuses formats it does not know."""
ARTIFACT_PATH = "profile/profile.json"
"""Where the profile is stored among the artifacts of the run a registered version points to."""
DEFAULT_BINS = 10
MAX_CATEGORIES = 100
"""A string field with more distinct values than this is an identifier, not a category, and is not profiled."""


class ProfileError(ValueError):
    """A profile that cannot be built or read; the message names the column or the field."""


@dataclass(frozen=True)
class NumericProfile:
    """One numeric column: quantile bins of its non-null values, nulls, range."""

    rows: int
    """Rows profiled, nulls included."""
    nulls: int
    minimum: float | None
    """None when every row is null."""
    maximum: float | None
    edges: tuple[float, ...]
    """Cut points, increasing; ``len(edges) + 1`` bins, bin i holding ``edges[i-1] < x <= edges[i]``."""
    counts: tuple[int, ...]
    """Non-null rows per bin."""
    holdout_out_of_range: float = 0.0
    """Share of the holdout's non-null values outside ``minimum``..``maximum`` (0 when no holdout was profiled)."""
    independent_share: float = 1.0
    """Independent draws per non-null row: 1 for a request field; for a windowed feature, ``independent_draws`` of
    its training rows over their number (every transaction of a merchant within an hour reads nearly the same
    one-hour sum), so the drift test sees as many reference draws as the training set really held, counted as the
    monitor counts a served window's (``contract.drift``)."""
    kind: Literal["numeric"] = "numeric"

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else math.nan

    def bin_of(self, values: Any) -> np.ndarray:
        """The bin index of each (non-null) value, the same rule as the training counts."""
        import numpy as np

        return np.searchsorted(np.asarray(self.edges, dtype="float64"), np.asarray(values, dtype="float64"), "left")


@dataclass(frozen=True)
class CategoricalProfile:
    """One categorical column: the count of each category (as text) and nulls."""

    rows: int
    nulls: int
    categories: dict[str, int]
    """Category -> non-null rows; for predictions, every class, seen or not."""
    holdout_unseen: float = 0.0
    """Share of the holdout's non-null values in categories training never saw (0 when none was profiled)."""
    kind: Literal["categorical"] = "categorical"

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else math.nan


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    """A version's reference: its training set's columns and its holdout's predictions."""

    component: str
    task: str
    columns: dict[str, ColumnProfile]
    """Request fields then features, by name."""
    predictions: ColumnProfile
    """Binary/regression: numeric; multiclass: the predicted class."""
    request_fields: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    """Request fields not profiled -> why."""

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "component": self.component,
            "task": self.task,
            "request_fields": list(self.request_fields),
            "features": list(self.features),
            "skipped": self.skipped,
            "columns": {name: _column_dict(column) for name, column in self.columns.items()},
            "predictions": _column_dict(self.predictions),
        }
        return json.dumps(body, indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Profile:
        body = json.loads(text)
        if body.get("format") != FORMAT:
            raise ProfileError(f"profile format {body.get('format')!r} is not {FORMAT}, the one this code reads")
        return cls(
            component=body["component"],
            task=body["task"],
            columns={name: _column(name, value) for name, value in body["columns"].items()},
            predictions=_column("predictions", body["predictions"]),
            request_fields=tuple(body["request_fields"]),
            features=tuple(body["features"]),
            skipped=dict(body["skipped"]),
        )


def _column_dict(column: ColumnProfile) -> dict[str, Any]:
    if isinstance(column, NumericProfile):
        return {
            "kind": column.kind,
            "rows": column.rows,
            "nulls": column.nulls,
            "min": column.minimum,
            "max": column.maximum,
            "edges": list(column.edges),
            "counts": list(column.counts),
            "holdout_out_of_range": column.holdout_out_of_range,
            "independent_share": column.independent_share,
        }
    return {
        "kind": column.kind,
        "rows": column.rows,
        "nulls": column.nulls,
        "categories": column.categories,
        "holdout_unseen": column.holdout_unseen,
    }


def _column(name: str, value: Mapping[str, Any]) -> ColumnProfile:
    if value.get("kind") == "numeric":
        edges, counts = tuple(map(float, value["edges"])), tuple(map(int, value["counts"]))
        if len(counts) != len(edges) + 1:
            raise ProfileError(f"column {name!r}: {len(counts)} counts for {len(edges)} cut points (one more needed)")
        # Profiles stored before the holdout's shares were kept read as 0: the alert's bare threshold, as then.
        outside = float(value.get("holdout_out_of_range", 0.0))
        # And before the independent share was: every row a draw, as then.
        share = float(value.get("independent_share", 1.0))
        if not 0 < share <= 1:
            raise ProfileError(f"column {name!r}: independent_share {share} is not in (0, 1]")
        return NumericProfile(value["rows"], value["nulls"], value["min"], value["max"], edges, counts, outside, share)
    if value.get("kind") == "categorical":
        categories = {str(k): int(v) for k, v in value["categories"].items()}
        return CategoricalProfile(value["rows"], value["nulls"], categories, float(value.get("holdout_unseen", 0.0)))
    raise ProfileError(f"column {name!r}: kind {value.get('kind')!r} is neither numeric nor categorical")


def numeric_profile(values: Iterable[Any], bins: int = DEFAULT_BINS) -> NumericProfile:
    """Quantile bins of ``values`` (None and NaN are nulls)."""
    import numpy as np
    import pandas as pd

    if bins < 1:
        raise ProfileError(f"bins must be at least 1, not {bins}")
    series = pd.to_numeric(pd.Series(list(values), dtype="object"), errors="coerce").astype("float64")
    present = series.dropna().to_numpy()
    rows, nulls = len(series), int(series.isna().sum())
    if not len(present):
        return NumericProfile(rows, nulls, None, None, (), (0,))
    low, high = float(present.min()), float(present.max())
    # Cut points are training values (the inverted CDF), repeats merged and the maximum dropped, so every bin holds at
    # least its own upper cut point (the last, the maximum): no empty reference bin for a count feature whose mass
    # sits on a few values.
    # The i/bins quantile is the ceil(n i / bins)-th smallest value, in integers: np.quantile's float positions put
    # 0.3 x 1000 at 300.00000000000006 and took the 301st.
    n = len(present)
    ranks = [-(-n * i // bins) - 1 for i in range(1, bins)]
    quantiles = np.sort(present)[ranks] if ranks else np.array([])
    edges = tuple(float(e) for e in np.unique(quantiles) if e < high)
    profile = NumericProfile(rows, nulls, low, high, edges, ())
    counts = np.bincount(profile.bin_of(present), minlength=len(edges) + 1)
    return NumericProfile(rows, nulls, low, high, edges, tuple(int(c) for c in counts))


def categorical_profile(values: Iterable[Any], known: Sequence[str] = ()) -> CategoricalProfile:
    """Counts per category, as text (``known`` categories are listed even when absent: a model's classes)."""
    import pandas as pd

    series = pd.Series(list(values), dtype="object")
    present = series[series.notna()].astype(str)
    counts = {name: 0 for name in known}
    for name, count in present.value_counts().items():
        counts[str(name)] = int(count)
    return CategoricalProfile(len(series), len(series) - len(present), counts)


def _with_holdout(column: ColumnProfile, values: pd.Series) -> ColumnProfile:
    """``column`` with the share of the holdout's ``values`` outside its range or categories."""
    import pandas as pd

    if isinstance(column, CategoricalProfile):
        present = values[values.notna()].astype(str)
        unseen = float((~present.isin(list(column.categories))).mean()) if len(present) else 0.0
        return replace(column, holdout_unseen=unseen)
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if not len(numbers) or column.minimum is None or column.maximum is None:
        return column
    outside = float(((numbers < column.minimum) | (numbers > column.maximum)).mean())
    return replace(column, holdout_out_of_range=outside)


def independent_draws(reads: Iterable[tuple[Any, int, Any]]) -> int:
    """The independent draws among reads of a windowed feature, each (entity, feature window index, value): per
    entity the fewer of its feature windows and its distinct values, summed. Values less than one feature window
    apart share most of their events and move together, and an equal value is most likely one snapshot read again.
    The monitor counts a served window's reads so (``monitoring.windows``) and a profile its training rows."""
    windows: dict[Any, set[int]] = {}
    values: dict[Any, set[Any]] = {}
    for entity, window, value in reads:
        windows.setdefault(entity, set()).add(window)
        values.setdefault(entity, set()).add(value)
    return sum(min(len(windows[entity]), len(values[entity])) for entity in windows)


def _independent_share(training: pd.DataFrame, entity: str | None, size_ms: int, feature: str) -> float:
    """``independent_draws`` of ``feature``'s training rows per non-null row; 1 when the training set lacks the
    entity or the time."""
    import pandas as pd

    from contract.model import EVENT_TIMESTAMP

    if entity is None or entity not in training or EVENT_TIMESTAMP not in training:
        return 1.0
    present = training[[entity, EVENT_TIMESTAMP, feature]].dropna(subset=[feature])
    if not len(present):
        return 1.0
    times = pd.to_datetime(present[EVENT_TIMESTAMP], utc=True)
    window = (times.astype("int64") // 1_000_000 // size_ms).tolist()
    draws = independent_draws(zip(present[entity].tolist(), window, present[feature].tolist(), strict=True))
    return max(draws, 1) / len(present)


def build_profile(
    component: Component,
    training: pd.DataFrame,
    predictions: Any,
    bins: int = DEFAULT_BINS,
    holdout: pd.DataFrame | None = None,
) -> Profile:
    """``component``'s profile: request fields and raw features of ``training`` (the rows the model was fit on),
    and ``predictions`` (the holdout's, as ``predict`` returned them); with ``holdout`` (the rows predicted), the
    share of its values outside each column's training range or categories."""
    import numpy as np

    model = component.model
    features = tuple(ref.replace(":", "__") for ref in component.feature_refs())
    events = component.streaming.events if component.streaming else None
    missing = [c for c in (*model.request_fields, *features) if c not in training]
    if missing:
        raise ProfileError(f"component {component.name!r}: the training set lacks {', '.join(missing)}")
    columns: dict[str, ColumnProfile] = {}
    skipped: dict[str, str] = {}
    for name in model.request_fields:
        declared = events.field(name) if events else None
        if declared is None or declared.type not in {"string", "boolean"}:
            columns[name] = numeric_profile(training[name], bins)
            continue
        distinct = int(training[name].nunique())
        if distinct > MAX_CATEGORIES:
            skipped[name] = f"{distinct} distinct values in {len(training)} rows: an identifier, not a category"
        else:
            columns[name] = categorical_profile(training[name])
    groups = {group.name: group for group in component.streaming.groups} if component.streaming else {}
    for name in features:
        column = numeric_profile(training[name], bins)
        group = groups.get(name.split("__", 1)[0])
        if group is not None:
            share = _independent_share(training, group.entity, group.window.size_s * 1000, name)
            column = replace(column, independent_share=share)
        columns[name] = column
    if holdout is not None:
        columns = {name: _with_holdout(column, holdout[name]) for name, column in columns.items()}
    output = np.asarray(predictions, dtype="float64")
    if model.task == "multiclass":
        names = classes(model)
        if output.ndim != 2 or output.shape[1] != len(names):
            raise ProfileError(
                f"multiclass predictions must have one column per class ({len(names)}), got {output.shape}"
            )
        predicted: ColumnProfile = categorical_profile([names[i] for i in output.argmax(axis=1)], names)
    else:
        predicted = numeric_profile(output.ravel(), bins)
    return Profile(component.name, model.task, columns, predicted, tuple(model.request_fields), features, skipped)
