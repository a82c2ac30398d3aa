"""Resource hints: what a component's workloads need in a cluster, as the component declares them.

Only the declaration lives here: requests (CPU, memory) and replicas per workload. Cluster mode turns the requests
into pod requests and limits by the platform's rule (``pipelines.sizing``: Flink task managers, model server pods,
training steps); embedded mode ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

CPU = re.compile(r"^\d+(\.\d+)?$|^\d+m$")
"""A Kubernetes CPU quantity the contract accepts: ``500m``, ``2``, ``1.5``."""
MEMORY = re.compile(r"^\d+(Ki|Mi|Gi)$")
"""A Kubernetes memory quantity the contract accepts: ``512Mi``, ``2Gi``."""


@dataclass(frozen=True)
class WorkloadHint:
    """What one workload of a component requests (the platform derives its limits)."""

    cpu: str
    """Kubernetes quantity, e.g. ``500m`` or ``1``."""
    memory: str
    """Kubernetes quantity, e.g. ``1Gi``."""
    replicas: int = 1


@dataclass(frozen=True)
class ResourceHints:
    """A component's hints for each of its workloads."""

    streaming: WorkloadHint = WorkloadHint("500m", "1Gi")
    """One Flink task manager; ``replicas`` is the job's parallelism."""
    serving: WorkloadHint = WorkloadHint("250m", "512Mi")
    """One model server pod; ``replicas`` is the minimum the stable revision keeps."""
    training: WorkloadHint = WorkloadHint("1", "2Gi")
    """One pipeline step (the Ray Tune search gets this per worker)."""

    def problems(self) -> Iterator[str]:
        for name in ("streaming", "serving", "training"):
            workload = getattr(self, name)
            if not isinstance(workload, WorkloadHint):
                yield f"resources.{name} must be a WorkloadHint"
                continue
            if not CPU.match(str(workload.cpu)):
                yield f"resources.{name}.cpu {workload.cpu!r} is not a CPU quantity like 500m or 2"
            if not MEMORY.match(str(workload.memory)):
                yield f"resources.{name}.memory {workload.memory!r} is not a memory quantity like 512Mi or 2Gi"
            if not isinstance(workload.replicas, int) or workload.replicas < 1:
                yield f"resources.{name}.replicas must be a positive integer"
