"""Challengers for the canary benchmark: each wraps the stable version's fitted classifier, so its inputs and
signature are the real ones, and misbehaves in one way a canary must catch (or, ``Same``, in none). The model
server unpickles them from this importable module."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np


class Same:
    """A tied challenger: the stable version's own model, registered again."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.asarray(self.inner.predict_proba(x))


class Flaky(Same):
    """Fails one call in ``every`` (8% at 12), but not its first: the server's warm-up call passes, as a bug on
    some inputs would let it."""

    def __init__(self, inner: Any, every: int = 12) -> None:
        super().__init__(inner)
        self.every = every
        self.calls = itertools.count()

    def predict_proba(self, x: Any) -> np.ndarray:
        call = next(self.calls)
        if call and call % self.every == 0:
            raise RuntimeError("this challenger fails on some requests")
        return super().predict_proba(x)

    def __getstate__(self) -> dict[str, Any]:
        return {"inner": self.inner, "every": self.every}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.inner, self.every = state["inner"], state["every"]
        self.calls = itertools.count()  # a fresh counter per loaded copy: its first call is the warm-up


class Slower(Same):
    """Answers ``delay_s`` later than the stable version (a heavier model, a slower feature path)."""

    def __init__(self, inner: Any, delay_s: float = 0.01) -> None:
        super().__init__(inner)
        self.delay_s = delay_s

    def predict_proba(self, x: Any) -> np.ndarray:
        time.sleep(self.delay_s)
        return super().predict_proba(x)


class Shifted(Same):
    """Scores everything as more likely fraud: the prediction distribution moves away from the stable one's."""

    def predict_proba(self, x: Any) -> np.ndarray:
        p = 0.3 + 0.7 * super().predict_proba(x)[:, 1]
        return np.column_stack([1 - p, p])
