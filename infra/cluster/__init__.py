"""Clusters: a local kind cluster or a cloud cluster, each yielding the Kubernetes provider the platform uses."""

from __future__ import annotations

from infra.cluster.base import Cluster

__all__ = ["Cluster"]
