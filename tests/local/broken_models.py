"""Challengers that misbehave in the ways a canary must catch. They wrap a real fitted model, so their inputs
and signature are the real ones; the model server unpickles them from this importable module."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class Raising:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict_proba(self, x: Any) -> np.ndarray:
        raise RuntimeError("this challenger is broken")


class Slow:
    def __init__(self, inner: Any, delay_s: float = 0.25) -> None:
        self.inner = inner
        self.delay_s = delay_s

    def predict_proba(self, x: Any) -> np.ndarray:
        time.sleep(self.delay_s)
        return np.asarray(self.inner.predict_proba(x))


class Shifted:
    """Scores everything as likely fraud: the prediction distribution moves far from the stable one's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict_proba(self, x: Any) -> np.ndarray:
        p = 0.6 + 0.4 * np.asarray(self.inner.predict_proba(x))[:, 1]
        return np.column_stack([1 - p, p])


class FailsWhenFlagged:
    """Scores everything 0.1 until the file ``flag`` exists, then fails every request: a server that starts healthy
    (its warm-up passes) and breaks while serving, as a lost dependency would. Needs no fitted model."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def predict_proba(self, x: Any) -> np.ndarray:
        from pathlib import Path

        if Path(self.flag).exists():
            raise RuntimeError(f"broken on purpose: {self.flag} exists")
        return np.tile([0.9, 0.1], (len(x), 1))


class ShiftedClasses:
    """Moves most of every row's probability to the last class (a multiclass model gone wrong: delivery's
    'very_late' for everything): its predicted classes shift far from the stable version's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes_ = inner.classes_

    def predict_proba(self, x: Any) -> np.ndarray:
        p = np.asarray(self.inner.predict_proba(x))
        last = np.zeros_like(p)
        last[:, -1] = 1.0
        return 0.3 * p + 0.7 * last
