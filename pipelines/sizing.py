"""How the platform sizes a component's pods from its declared hints: requests as declared, limits derived.

A component declares what each of its workloads needs (``contract.resources``); how much headroom a pod gets above
that is the platform's rule, kept here and nowhere else: the limit is twice the CPU request (for bursts) and 1.5
times the memory request, for every hint.

Why in ``pipelines``: two places size pods from the same hints. Infra renders the component's pods (model servers,
the feature workers, Jobs; ``infra/use_cases``), and the training pipeline sizes its search step when it is
compiled (``pipelines.training.runner.compile_pipeline(training=...)``), which ``mlstack train`` also calls without
infra. Infra may import pipelines, pipelines may not import infra, so this is the one home both reach; passing
limits into ``compile_pipeline`` instead would leave every caller (infra, the CLI, the contract's default hint)
computing them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.resources import CPU, MEMORY, WorkloadHint

CPU_LIMIT_FACTOR = 2
"""CPU limit = this many times the request."""
MEMORY_LIMIT_RATIO = (3, 2)
"""Memory limit = request * 3 // 2 (integer MiB, so the rendered quantities stay whole)."""
_MEBIBYTES_PER = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}


def millicores(cpu: str) -> int:
    """A Kubernetes CPU quantity (``500m``, ``2``, ``1.5``) in millicores.

    Raises:
        ValueError: ``cpu`` is not such a quantity.
    """
    if not CPU.match(cpu):
        raise ValueError(f"not a CPU quantity: {cpu!r}")
    return int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)


def mebibytes(memory: str) -> int:
    """A Kubernetes memory quantity (``512Mi``, ``2Gi``, ``1024Ki``) in MiB, at least 1.

    Raises:
        ValueError: ``memory`` is not such a quantity.
    """
    if not MEMORY.match(memory):
        raise ValueError(f"not a memory quantity: {memory!r}")
    return max(1, int(int(memory[:-2]) * _MEBIBYTES_PER[memory[-2:]]))


@dataclass(frozen=True)
class PodSize:
    """Requests and limits of one container, as the platform sizes it from a hint."""

    cpu: int
    """CPU request in millicores."""
    cpu_limit: int
    """CPU limit in millicores."""
    memory: int
    """Memory request in MiB."""
    memory_limit: int
    """Memory limit in MiB."""


def pod_size(hint: WorkloadHint) -> PodSize:
    """Requests as ``hint`` declares them, limits by the platform's rule (see the module docstring).

    Raises:
        ValueError: the hint's CPU or memory is not a Kubernetes quantity.
    """
    cpu, memory = millicores(str(hint.cpu)), mebibytes(str(hint.memory))
    numerator, denominator = MEMORY_LIMIT_RATIO
    return PodSize(cpu, cpu * CPU_LIMIT_FACTOR, memory, memory * numerator // denominator)
