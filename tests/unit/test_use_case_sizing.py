"""A component's pods are sized from its hints by the platform's one rule (``pipelines.sizing``), under
``pulumi.runtime.Mocks``: the requests, limits and replicas rendered for every pod of a use case, the Flink task
managers and the training pipeline's search step are the ones the stack rendered before the rule left the contract
(recorded from that commit's mocked runs), for the default hints and for hints a component sets."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import yaml

import infra.use_cases
from contract import ResourceHints, WorkloadHint
from contract.registry import load
from infra.use_cases.manifests import resources
from pipelines.sizing import pod_size
from pipelines.training.pipeline import step_resources
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

SIZE_KEYS = ("resources", "resource", "replicas", "minReplicas", "parallelism")
CUSTOM = ResourceHints(
    streaming=WorkloadHint("750m", "1536Mi", replicas=2),
    serving=WorkloadHint("300m", "768Mi", replicas=2),
    training=WorkloadHint("1500m", "3Gi"),
)
SERVING_PODS = ("event-archive", "feast-apply", "feature-pusher", "pipeline-upload")


def _sizes(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    """Every size-like field under ``value`` by its path; the compiled pipeline in its ConfigMap is read too."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if key in SIZE_KEYS and not (isinstance(item, list) and item and isinstance(item[0], str)):
                out[here] = item  # (a Role's ``resources`` is a list of names, not a size)
            elif isinstance(item, str) and key.endswith(".yaml") and "deploymentSpec" in item:
                _sizes(list(yaml.safe_load_all(item)), here, out)
            else:
                _sizes(item, here, out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _sizes(item, f"{path}[{i}]", out)
    return out


def _rendered(monkeypatch: pytest.MonkeyPatch, hints: ResourceHints | None) -> dict[str, Any]:
    if hints is not None:
        monkeypatch.setattr(infra.use_cases, "load", lambda name: dataclasses.replace(load(name), resources=hints))
    run = mocks.run({**stack_config("kind"), "components": json.dumps(["fraud"])})
    out: dict[str, Any] = {}
    for r in run.registrations:
        if r.name.startswith("fraud-"):
            _sizes(r.inputs, r.name, out)
    return out


def _expected(
    serving: tuple[str, ...], task_manager: tuple[float, str], replicas: float, search: tuple[Any, ...]
) -> Any:
    """Sizes by path: ``serving`` and the first four of ``search`` as (CPU, memory, CPU limit, memory limit); the last
    four of ``search`` are KFP's numeric forms of the same (CPU in cores, memory in GB)."""
    pod = {"requests": {"cpu": serving[0], "memory": serving[1]}, "limits": {"cpu": serving[2], "memory": serving[3]}}
    step = dict(
        zip(
            ("resourceCpuRequest", "resourceMemoryRequest", "resourceCpuLimit", "resourceMemoryLimit"),
            search[:4],
            strict=True,
        )
    )
    step.update(zip(("cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit"), search[4:], strict=True))
    container = ".spec.template.spec.containers[0].resources"
    return {
        **{f"fraud-{name}{container}": pod for name in SERVING_PODS},
        "fraud-isvc.spec.predictor.containers[0].resources": pod,
        "fraud-isvc.spec.predictor.minReplicas": replicas,
        "fraud-event-archive.spec.replicas": 1.0,
        "fraud-feature-pusher.spec.replicas": 1.0,
        "fraud-flink.spec.jobManager.replicas": 1.0,
        "fraud-flink.spec.jobManager.resource": {"cpu": 0.25, "memory": "1024m"},
        "fraud-flink.spec.taskManager.replicas": replicas,
        "fraud-flink.spec.taskManager.resource": {"cpu": task_manager[0], "memory": task_manager[1]},
        "fraud-flink.spec.job.parallelism": replicas,
        "fraud-pipeline.data.pipeline.yaml[0].deploymentSpec.executors.exec-search.container.resources": step,
        **{f"fraud-topic-{topic}.spec.replicas": 1.0 for topic in ("events", "features", "dead-letter", "predictions")},
        **(MONITOR if load("fraud").streaming.feedback is not None else {}),
    }


# A component with feedback: its labels' and the monitor's topics, and the monitor's fixed sizes (not from hints).
MONITOR = {
    **{f"fraud-topic-{topic}.spec.replicas": 1.0 for topic in ("labels", "scored", "predictions-dead-letter")},
    "fraud-monitor.spec.jobManager.replicas": 1.0,
    "fraud-monitor.spec.jobManager.resource": {"cpu": 0.25, "memory": "1024m"},
    "fraud-monitor.spec.taskManager.replicas": 1.0,
    "fraud-monitor.spec.taskManager.resource": {"cpu": 0.25, "memory": "1024m"},
    "fraud-monitor.spec.job.parallelism": 1.0,
    "fraud-monitor-exporter.spec.replicas": 1.0,
    "fraud-monitor-exporter.spec.template.spec.containers[0].resources": {
        "requests": {"cpu": "100m", "memory": "384Mi"},
        "limits": {"cpu": "500m", "memory": "768Mi"},
    },
}


# As rendered before the limit rule moved out of ``contract.resources`` (the same values, recorded from that commit).
DEFAULT = _expected(
    ("250m", "512Mi", "500m", "768Mi"), (0.5, "1024m"), 1.0,
    ("1000m", "2048Mi", "2000m", "3072Mi", 1.0, 2.147483648, 2.0, 3.221225472),
)  # fmt: skip
SET_BY_THE_COMPONENT = _expected(
    ("300m", "768Mi", "600m", "1152Mi"), (0.75, "1536m"), 2.0,
    ("1500m", "3072Mi", "3000m", "4608Mi", 1.5, 3.221225472, 3.0, 4.831838208),
)  # fmt: skip


@pytest.mark.parametrize(
    ("hints", "expected"), [(None, DEFAULT), (CUSTOM, SET_BY_THE_COMPONENT)], ids=["default", "set"]
)
def test_use_case_pods_are_sized_as_before(
    monkeypatch: pytest.MonkeyPatch, hints: ResourceHints | None, expected: dict[str, Any]
) -> None:
    assert _rendered(monkeypatch, hints) == expected


@pytest.mark.parametrize(
    "hint", [WorkloadHint("250m", "512Mi"), WorkloadHint("1.5", "3Gi"), WorkloadHint("2", "1024Ki")]
)
def test_infra_pods_and_the_search_step_share_one_rule(hint: WorkloadHint) -> None:
    size = pod_size(hint)
    assert (size.cpu_limit, size.memory_limit) == (size.cpu * 2, size.memory * 3 // 2)
    pod, step = resources(hint), step_resources(hint)
    assert pod["requests"] == {"cpu": step["cpu_request"], "memory": step["memory_request"]}
    assert pod["limits"] == {"cpu": step["cpu_limit"], "memory": step["memory_limit"]}
