"""What a rollout needs from where the model servers run: move traffic between the stable and the canary
version and read each side's counters. Each place the model servers run provides one (the cluster's is
``serving.rollout.cluster_backend``)."""

from __future__ import annotations

from typing import Protocol

from serving.rollout.analysis import Snapshot


class CanaryNotReady(RuntimeError):
    """The canary version never became ready to serve (its server exited or timed out on load); the message says
    why. The rollout rolls it back at once: a version that cannot answer is judged without traffic."""


class TrafficBackend(Protocol):
    component: str

    def stable_version(self) -> str:
        """The registry version taking traffic outside a rollout."""
        ...

    def start_canary(self, version: str, share: int) -> None:
        """Run ``version`` beside the stable one and send it ``share`` percent of requests; ``CanaryNotReady``
        when its server does not become ready."""
        ...

    def set_share(self, share: int) -> None: ...

    def promote(self) -> None:
        """The canary takes all traffic and becomes the stable version; the old stable one stops."""
        ...

    def rollback(self) -> None:
        """All traffic back to the stable version; the canary stops."""
        ...

    def snapshots(self) -> tuple[Snapshot, Snapshot]:
        """Cumulative counters of (stable, canary) now."""
        ...

    def load_state(self) -> dict[str, object] | None: ...

    def save_state(self, state: dict[str, object] | None) -> None: ...
