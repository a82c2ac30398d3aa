"""The training pipeline compiles to KFP IR with the expected tasks and parameters; search configurations are
reproducible; the gate and the data window behave as documented."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from contract import Choice, IntRange, LogUniform, Uniform, WorkloadHint
from contract.registry import load
from pipelines.training.dataset import DataWindow, TrainingDataError, TrainingSet, split_by_time
from pipelines.training.pipeline import build_pipeline, step_resources
from pipelines.training.registration import gate
from pipelines.training.remote_search import RESULT_MARK, result_from_logs
from pipelines.training.runner import PipelineParams, compile_pipeline, step_durations
from pipelines.training.search import sample_configs


def test_pipeline_compiles_with_its_tasks_parameters_and_image(tmp_path: Path) -> None:
    package = compile_pipeline(tmp_path, image="registry.local/mlstack-pipeline:abc123")
    ir = yaml.safe_load(package.read_text())
    tasks = ir["root"]["dag"]["tasks"]
    assert set(tasks) == {"training-set", "search", "register"}
    assert tasks["search"]["dependentTasks"] == ["training-set"]
    assert sorted(tasks["register"]["dependentTasks"]) == ["search", "training-set"]
    assert set(ir["root"]["inputDefinitions"]["parameters"]) == set(PipelineParams.__dataclass_fields__)
    assert ir["root"]["inputDefinitions"]["parameters"]["trials"]["defaultValue"] == 8
    executors = ir["deploymentSpec"]["executors"].values()
    assert {e["container"]["image"] for e in executors} == {"registry.local/mlstack-pipeline:abc123"}
    # Nothing is pip-installed when a step starts: the image holds the pinned packages.
    assert not any("pip install" in " ".join(e["container"]["command"]) for e in executors)
    search = next(e for name, e in ir["deploymentSpec"]["executors"].items() if "search" in name)
    assert search["container"]["resources"]["cpuLimit"] == 2  # the contract's default training hint: 1 CPU, 2Gi


def test_the_search_step_is_sized_by_the_components_training_hint(tmp_path: Path) -> None:
    from kfp import compiler

    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(build_pipeline(training=WorkloadHint("1500m", "3Gi")), package_path=str(path))
    executors = yaml.safe_load(path.read_text())["deploymentSpec"]["executors"]
    resources = next(e for name, e in executors.items() if "search" in name)["container"]["resources"]
    assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"]) == ("1500m", "3000m")
    assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == ("3072Mi", "4608Mi")
    assert step_resources(WorkloadHint("500m", "512Mi"))["memory_limit"] == "768Mi"
    with pytest.raises(ValueError, match="not a CPU and memory quantity"):
        step_resources(WorkloadHint("half", "1Gi"))


def test_search_configurations_are_reproducible_and_within_the_space() -> None:
    space = {"lr": LogUniform(0.01, 0.3), "depth": IntRange(2, 8), "kind": Choice(("a", "b")), "f": Uniform(0, 1)}
    first, again = sample_configs(space, 20, seed=3), sample_configs(space, 20, seed=3)
    assert first == again and first != sample_configs(space, 20, seed=4)
    for config in first:
        assert 0.01 <= config["lr"] <= 0.3 and 2 <= config["depth"] <= 8
        assert config["kind"] in {"a", "b"} and 0 <= config["f"] <= 1


def test_gate_needs_a_strict_gain_of_at_least_the_minimum() -> None:
    fraud = load("fraud")
    assert gate(fraud, 0.9, None, 0.01)[0]
    assert not gate(fraud, 0.9, 0.9, 0.0)[0]  # equal is not better
    assert gate(fraud, 0.92, 0.9, 0.01)[0]
    passed, reason = gate(fraud, 0.905, 0.9, 0.01)
    assert not passed and "gain +0.0050" in reason


def test_gate_rejects_a_model_that_does_not_beat_its_naive_baseline() -> None:
    demand = load("demand")  # MAE: lower is better
    assert gate(demand, 5.0, None, 0.0, baseline_score=6.0)[0]
    passed, reason = gate(demand, 6.2, None, 0.0, baseline_score=6.0)
    assert not passed and "naive baseline" in reason
    assert not gate(demand, 5.5, 5.0, 0.0, baseline_score=6.0)[0]  # beats the baseline, not the champion


def test_a_gate_that_accepts_ties_registers_a_model_within_the_tolerance_and_nothing_worse() -> None:
    fraud, demand = load("fraud"), load("demand")  # tolerances 0.02 ROC AUC and 0.3 orders of MAE
    assert not gate(fraud, 0.89, 0.9, 0.0)[0]  # a tie is not a gain by default
    passed, reason = gate(fraud, 0.89, 0.9, 0.0, accept_ties=True)
    assert passed and "accepted as a tie" in reason
    assert not gate(fraud, 0.87, 0.9, 0.0, accept_ties=True)[0]  # worse by more than the tolerance
    assert gate(demand, 5.2, 5.0, 0.0, baseline_score=6.0, accept_ties=True)[0]
    assert not gate(demand, 5.4, 5.0, 0.0, baseline_score=6.0, accept_ties=True)[0]
    passed, reason = gate(demand, 6.1, 6.0, 0.0, baseline_score=6.0, accept_ties=True)
    assert not passed and "naive baseline" in reason  # a tie with the champion never excuses losing to naive


def test_split_by_time_keeps_the_future_for_the_holdout() -> None:
    times = pd.date_range("2026-01-01", periods=100, freq="min", tz="UTC")
    frame = pd.DataFrame({"event_timestamp": times[::-1], "y": range(100)})
    training = split_by_time(TrainingSet(frame=frame, features=[]))
    train, validation, holdout = (training.splits[k] for k in ("train", "validation", "holdout"))
    assert len(train) + len(validation) + len(holdout) == 100
    assert train["event_timestamp"].max() < validation["event_timestamp"].min()
    assert validation["event_timestamp"].max() < holdout["event_timestamp"].min()
    with pytest.raises(TrainingDataError, match="too few to split"):
        split_by_time(TrainingSet(frame=frame.head(1), features=[]))


def test_data_window_parses_iso_times_and_names_bad_ones() -> None:
    window = DataWindow.parse("2026-11-25T10:00:00", "2026-11-25T12:00:00+01:00")
    assert window.start == pd.Timestamp("2026-11-25T10:00:00Z") and window.end == pd.Timestamp("2026-11-25T11:00Z")
    with pytest.raises(TrainingDataError, match="window start 'yesterday' is not an ISO-8601 time"):
        DataWindow.parse("yesterday", "")
    with pytest.raises(TrainingDataError, match="is not before its end"):
        DataWindow.parse("2026-11-25T12:00:00Z", "2026-11-25T10:00:00Z")


def test_step_durations_come_from_the_runner_log() -> None:
    log = (
        "10:00:00.500 - INFO - Executing task 'training-set'\n"
        "10:00:12.000 - INFO - Task 'training-set' finished with status SUCCESS\n"
        "10:00:12.100 - INFO - Executing task 'search'\n"
        "10:00:40.100 - INFO - Task 'search' finished with status SUCCESS\n"
    )
    assert step_durations(log) == {"training-set": pytest.approx(11.5), "search": pytest.approx(28.0)}


def test_remote_search_result_is_read_from_the_last_marked_log_line() -> None:
    logs = f"starting\n{RESULT_MARK}" + '{"best": {"score": 0.5}}\nbye\n'
    assert result_from_logs(logs) == {"best": {"score": 0.5}}
    with pytest.raises(RuntimeError, match="without reporting a result"):
        result_from_logs("nothing here")
