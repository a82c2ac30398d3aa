"""The Pulumi program (``main: infra/`` in Pulumi.yaml): read and validate the stack config, then build the cluster
and the platform, and export what users need (UI URLs, endpoints; the kubeconfig as a secret)."""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this file with infra/ as the working directory; the package imports need the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi

from infra import config, stack

settings = config.load()  # raises ConfigError naming the key before any resource is registered
stack.export(stack.build(settings, pulumi.get_stack()))
