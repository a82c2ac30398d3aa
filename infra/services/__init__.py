"""The platform services, one ComponentResource each, and the ``Platform`` that wires them in order."""

from __future__ import annotations

from infra.services.base import PlatformService, ServiceArgs
from infra.services.platform import NAMESPACES, Platform

__all__ = ["NAMESPACES", "Platform", "PlatformService", "ServiceArgs"]
