"""Resource hints: what a component's workloads need in a cluster, per platform profile. Cluster mode turns them
into requests and limits (Flink task managers, model server pods, training steps); embedded mode ignores them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

CPU = re.compile(r"^\d+(\.\d+)?$|^\d+m$")
MEMORY = re.compile(r"^\d+(Ki|Mi|Gi)$")
_MEBIBYTES_PER = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}


def millicores(cpu: str) -> int:
    if not CPU.match(cpu):
        raise ValueError(f"not a CPU quantity: {cpu!r}")
    return int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)


def mebibytes(memory: str) -> int:
    if not MEMORY.match(memory):
        raise ValueError(f"not a memory quantity: {memory!r}")
    return max(1, int(int(memory[:-2]) * _MEBIBYTES_PER[memory[-2:]]))


@dataclass(frozen=True)
class Workload:
    """Requests of one workload (limits are derived by the platform profile)."""

    cpu: str
    """Kubernetes quantity, e.g. ``500m`` or ``1``."""
    memory: str
    """Kubernetes quantity, e.g. ``1Gi``."""
    replicas: int = 1

    def sized(self) -> tuple[int, int, int, int]:
        """CPU request and limit in millicores, memory request and limit in MiB: requests as hinted, limits as the
        platform derives them for every hint (twice the CPU for bursts, 1.5 times the memory)."""
        cpu, memory = millicores(str(self.cpu)), mebibytes(str(self.memory))
        return cpu, cpu * 2, memory, memory * 3 // 2


@dataclass(frozen=True)
class ResourceHints:
    streaming: Workload = Workload("500m", "1Gi")
    """One Flink task manager; ``replicas`` is the job's parallelism."""
    serving: Workload = Workload("250m", "512Mi")
    """One model server pod; ``replicas`` is the minimum the stable revision keeps."""
    training: Workload = Workload("1", "2Gi")
    """One pipeline step (the Ray Tune search gets this per worker)."""

    def problems(self) -> Iterator[str]:
        for name in ("streaming", "serving", "training"):
            workload = getattr(self, name)
            if not isinstance(workload, Workload):
                yield f"resources.{name} must be a Workload"
                continue
            if not CPU.match(str(workload.cpu)):
                yield f"resources.{name}.cpu {workload.cpu!r} is not a CPU quantity like 500m or 2"
            if not MEMORY.match(str(workload.memory)):
                yield f"resources.{name}.memory {workload.memory!r} is not a memory quantity like 512Mi or 2Gi"
            if not isinstance(workload.replicas, int) or workload.replicas < 1:
                yield f"resources.{name}.replicas must be a positive integer"
