"""Model declarations: how a component turns events into labelled examples, what its model sees, how it is
fit and scored, and what the search explores.

The same ``prepare`` runs on training examples (joined with historical features) and on serving requests
(joined with online features), so the model never sees a column built two different ways.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Direction = Literal["max", "min"]
Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")

EVENT_TIMESTAMP = "event_timestamp"
"""Column of ``examples`` holding the UTC time at which features are looked up (Feast's convention)."""


@dataclass(frozen=True)
class Metric:
    """How models are compared; ``direction`` says whether larger is better."""

    name: str
    direction: Direction
    score: Callable[[np.ndarray, np.ndarray], float]
    """``score(y_true, y_predicted)``."""
    tolerance: float = 0.0
    """The smallest difference in score that matters: two models whose holdout scores differ by less are
    equivalent (the holdout's own noise). A training run that accepts ties registers an equivalent challenger,
    trained on fresher data, and leaves the decision to its canary."""

    def equivalent(self, new: float, old: float) -> bool:
        return abs(self.gain(new, old)) <= self.tolerance

    def gain(self, new: float, old: float) -> float:
        """How much better ``new`` is than ``old``, positive when better, whatever the direction."""
        return new - old if self.direction == "max" else old - new

    def better(self, new: float, old: float) -> bool:
        return self.gain(new, old) > 0


# -- the search space, in plain data so components need not import Ray -------------------------------------


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float


@dataclass(frozen=True)
class IntRange:
    """Integers from ``low`` to ``high`` inclusive."""

    low: int
    high: int


Param = Choice | Uniform | LogUniform | IntRange


def param_problem(name: str, param: Any) -> str | None:
    """Why a search-space entry is unusable, or None."""
    if isinstance(param, Choice):
        return None if param.values else f"search space {name!r}: Choice needs at least one value"
    if isinstance(param, Uniform | IntRange):
        return None if param.low < param.high else f"search space {name!r}: low must be below high"
    if isinstance(param, LogUniform):
        if not 0 < param.low < param.high or not math.isfinite(param.high):
            return f"search space {name!r}: LogUniform needs 0 < low < high"
        return None
    return f"search space {name!r}: {type(param).__name__} is not Choice, Uniform, LogUniform or IntRange"


@dataclass(frozen=True)
class ModelSpec:
    """A component's model: examples, inputs, training, scoring and search."""

    task: Task
    target: str
    """Column of ``examples`` the model predicts."""
    request_fields: tuple[str, ...]
    """Event fields a caller sends with each request besides the entity keys (e.g. the transaction's amount)."""
    examples: Callable[[pd.DataFrame], pd.DataFrame]
    """Archived events -> labelled rows: every entity key, the request fields, ``event_timestamp`` (UTC) and
    the target. Features are joined to each row as they were just before its timestamp."""
    prepare: Callable[[pd.DataFrame], pd.DataFrame]
    """Request fields + features (full names ``<view>__<feature>``, NaN where absent) -> numeric model input."""
    fit: Callable[[Mapping[str, Any], pd.DataFrame, np.ndarray, int], Iterator[Any]]
    """``fit(params, x, y, seed)`` yields the model after each training stage (more trees, more epochs), so
    the search can stop unpromising trials early."""
    predict: Callable[[Any, pd.DataFrame], np.ndarray]
    """What the model answers, by ``task`` (``contract.tasks.check_output`` checks it): ``binary``, one
    probability of the positive class per row, shape (rows,); ``multiclass``, one probability per class in the
    order of ``classes``, shape (rows, classes), each row summing to 1; ``regression``, one estimate per row,
    shape (rows,). The server answers exactly this, and MLflow's signature records it."""
    metric: Metric
    search_space: Mapping[str, Param]
    max_stages: int
    """How many stages ``fit`` yields at most; early stopping counts in stages."""
    baseline: Callable[[pd.DataFrame], np.ndarray] | None = None
    """A naive predictor over the joined frame (e.g. last value), logged beside the model for comparison."""
    feature_groups: Sequence[str] = field(default=())
    """Feature groups the model reads; empty means all of the component's groups."""
    classes: tuple[str, ...] = ()
    """Class names, in the order of ``predict``'s columns (``multiclass``, required, at least two). The target
    column of ``examples`` holds these names (or their indices); the training template encodes them as indices
    0..k-1 for ``fit`` and ``metric``. ``binary`` may name its two classes (negative first) for reports."""
