"""Feature views without a single window in the training rows (the demo's first model: a few minutes of events,
before the first 5-minute slide of a 1-hour window closed) are trained around, not crashed on.

Each domain's own model code is fitted by the training template's ``TrialData.of`` and ``best_stage_model`` on
rows whose views are missing everywhere; CI's fraud demo failed there with scikit-learn's
"window shape cannot be larger than input array shape" on every trial."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.model import EVENT_TIMESTAMP, Choice, IntRange, LogUniform, Uniform
from contract.registry import load
from pipelines.training.search import TrialData, best_stage_model, fittable, score_stages
from tests.offline_quality import training_frame

START_MS = 1_790_000_000_000 - 1_790_000_000_000 % 60_000


def _without_windows(name: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The domain's examples split 3:1 by time, every view's columns missing (no window had closed yet)."""
    component = load(name)
    frame = training_frame(component, list(component.generate(3_000, START_MS, 4)))
    columns = [c for c in frame.columns if c.split("__")[0] in {g.name for g in component.streaming.groups}]
    frame[columns] = np.nan
    frame = frame.sort_values(EVENT_TIMESTAMP, kind="stable").reset_index(drop=True)
    cut = len(frame) * 3 // 4
    return frame.iloc[:cut], frame.iloc[cut:], columns


@pytest.mark.parametrize("name", ["fraud", "demand", "delivery"])
def test_views_without_any_window_are_fitted_as_constants_and_the_model_trains(name: str) -> None:
    model = load(name).model
    train, validation, missing = _without_windows(name)
    if name != "demand":  # the defect, in scikit-learn itself (demand's trees see only ratios of its filled counts)
        with pytest.raises(ValueError, match="window shape"):
            next(iter(model.fit(_first_params(name), model.prepare(train), train[model.target].to_numpy(), 0)))

    data = TrialData.of(model, train, validation)
    assert data.without_values, f"{name}: the prepared inputs of {missing} have no value"
    assert not data.x_train[list(data.without_values)].isna().any().any()
    assert data.x_validation[list(data.without_values)].isna().all().all(), "validation keeps its missing values"
    stage, score, _ = next(iter(score_stages(model, _first_params(name), data, seed=0)))
    assert stage == 1 and np.isfinite(score)
    refit = best_stage_model(model, _first_params(name), model.prepare(train), data.y_train, 1, 0)
    predicted = model.predict(refit, model.prepare(validation))
    assert len(predicted) == len(validation) and np.isfinite(np.asarray(predicted, dtype="float64")).all()


def test_fittable_leaves_inputs_with_any_value_alone() -> None:
    x = pd.DataFrame({"a": [1.0, np.nan], "b": [np.nan, np.nan], "c": [0.0, 2.0]})
    fitted, empty = fittable(x)
    assert empty == ["b"] and fitted["b"].tolist() == [0.0, 0.0]
    assert fitted["a"].isna().tolist() == [False, True] and fitted["c"].tolist() == [0.0, 2.0]
    same, none = fittable(x[["a", "c"]])
    assert none == [] and same is not None and same.equals(x[["a", "c"]])


def _first_params(name: str) -> dict[str, object]:
    """A value every trial could draw: the midpoint of each range of the component's search space."""
    params: dict[str, object] = {}
    for key, param in load(name).model.search_space.items():
        if isinstance(param, Choice):
            params[key] = param.values[0]
        elif isinstance(param, IntRange):
            params[key] = (param.low + param.high) // 2
        elif isinstance(param, LogUniform | Uniform):
            params[key] = (param.low + param.high) / 2
    return params
