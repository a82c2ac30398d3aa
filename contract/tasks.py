"""What each task type's ``predict`` returns and how its target is encoded, checked the same way wherever a model
answers: after training (before a version is logged), at the model server's load (before it reports ready) and
in a component's own tests.

A model that answers in another shape fails there with a message naming the task, the shape expected and the
shape seen, instead of failing every request later (an (n, 3) array where one score per row was expected became a
500 on every request while the server reported ready)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from contract.model import ModelSpec

#: How far a multiclass row's probabilities may sum from 1 (float32 models, rounding).
SUM_TOLERANCE = 1e-4


class Answering(Protocol):
    """What the output check reads of a model: a ``ModelSpec``, or a registry version (``served.ServedModel``)."""

    @property
    def task(self) -> str: ...

    @property
    def classes(self) -> tuple[str, ...]: ...


class OutputError(ValueError):
    """A model's answer does not have its task's shape; the message says what was expected and seen."""


def classes(model: ModelSpec) -> tuple[str, ...]:
    """The class names a classifier answers in (``binary``: the declared pair or ``("0", "1")``); () otherwise."""
    if model.task == "multiclass":
        return tuple(model.classes)
    if model.task == "binary":
        return tuple(model.classes) or ("0", "1")
    return ()


def expected_shape(model: Answering, rows: int) -> tuple[int, ...]:
    return (rows, len(model.classes)) if model.task == "multiclass" else (rows,)


def check_output(model: Answering, output: Any, rows: int) -> np.ndarray:
    """``output`` as a float64 array when it has the task's shape and range, else ``OutputError``."""
    import numpy as np

    try:
        array = np.asarray(output, dtype="float64")
    except (TypeError, ValueError) as error:
        raise OutputError(f"{model.task} predict must return numbers, got {type(output).__name__}: {error}") from None
    shape = expected_shape(model, rows)
    if array.shape != shape:
        what = {
            "binary": "one probability of the positive class per row",
            "multiclass": f"one probability per class ({', '.join(model.classes)}) per row",
            "regression": "one estimate per row",
        }[model.task]
        raise OutputError(f"{model.task} predict must return {what}, shape {shape}; got shape {array.shape}")
    if not np.isfinite(array).all():
        raise OutputError(f"{model.task} predict returned NaN or infinite values")
    if model.task in {"binary", "multiclass"} and ((array < 0).any() or (array > 1).any()):
        raise OutputError(f"{model.task} predict must return probabilities in [0, 1]; got {array.min()}..{array.max()}")
    if model.task == "multiclass" and rows:
        sums = array.sum(axis=1)
        if np.abs(sums - 1).max() > SUM_TOLERANCE:
            raise OutputError(f"multiclass predict's rows must sum to 1 (predict_proba); a row sums to {sums.max()}")
    return array


def encode_target(model: ModelSpec, values: Any) -> np.ndarray:
    """The target as the model learns it: class indices 0..k-1 for ``multiclass`` (from names or indices), the
    values as they are otherwise. A value that is not a declared class is an ``OutputError`` naming it."""
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    if model.task != "multiclass":
        return np.asarray(series.to_numpy())
    names = list(model.classes)
    index: dict[object, int] = {name: i for i, name in enumerate(names)}
    index.update({i: i for i in range(len(names))})
    encoded = series.map(lambda value: index.get(value, -1))
    unknown = series[encoded < 0].unique()
    if len(unknown):
        shown = ", ".join(repr(v) for v in unknown[:5])
        raise OutputError(f"target values {shown} are not among the declared classes ({', '.join(names)})")
    return np.asarray(encoded.to_numpy(dtype="int64"), dtype="int64")
