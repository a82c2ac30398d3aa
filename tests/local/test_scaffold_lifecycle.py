"""A freshly scaffolded component passes its own generated lifecycle test, on the shared services: streaming,
training, serving and a canary, with no change to the shared templates."""

from __future__ import annotations

import importlib
import os

from cli.scaffold import create, remove
from local.services import EmbeddedServices


def test_a_scaffolded_component_passes_its_generated_lifecycle_test(embedded: EmbeddedServices) -> None:
    name = f"scaffolded{os.getpid()}"
    scaffold = create(name)
    try:
        # The generated file, run as written (it was created after collection, so pytest did not collect it).
        generated = importlib.import_module(f"tests.local.test_component_{name}")
        getattr(generated, f"test_{name}_goes_through_the_embedded_lifecycle")(embedded)
    finally:
        remove(scaffold)
