"""Canary analysis of a multiclass model's predicted classes: false alarms on tied versions and missed alarms on
shifted ones, for the rule the analysis uses and, side by side, for the rule it replaced.

Simulated windows (no engines): each analysis window draws the stable and the canary version's predicted classes
(one class per single-row request) from class shares, ``TRIALS`` windows per row of the table.

- Tied: both versions draw from the same shares (60/30/10, a rare class near 2%, 72/23/5). Any failed window is
  a false alarm: a tied challenger rolled back.
- Shifted: the canary predicts one class much more often (very_late 10% -> 30%, the gross shift the unit test
  requires be caught; 10% -> 25%; the rare class 2% -> 8%) or moderately more (10% -> 16%). A passed window is a
  missed alarm. A rollout judges several windows (four at the default schedule), so a shift missed in one window
  with probability m passes the whole rollout with about m to the fourth.
- A small shift (10% -> 12.5%, Cramér's V 0.04) that only large windows (2,000 requests) can tell apart: the
  minimum effect keeps it from failing them, so its "missed" cells should read near 100% for the rule.

Rules:

- chi-square: ``contract.shift`` (the analysis' rule): chi-square test of homogeneity on the 2 x k table, classes
  empty on both sides dropped; fails when p < ``ALPHA`` and Cramér's V >= ``MIN_CRAMERS_V``.
- chi-square (p only): the same test without the minimum effect, to show what the effect size costs and saves.
- old PSI: what the analysis did before classes were counted: the class index observed in the probability
  histogram (class 2 lands in ``+Inf``), PSI with a 1e-4 floor on an empty bucket, the (bins - 1)(1/n + 1/m)
  noise correction, failing above 0.25 (one 100-request window with 6 "very late" against 0 gave PSI 0.36).

Measured (2,000 windows per cell): the chi-square rule's false alarms stay at 0.2-0.6% of tied windows at every
size (old PSI: 0-1.8%, worst with the rare class at 100 requests); it misses the gross shift in 2% of 200-request
windows (old PSI: 47%) and 10% -> 25% in 18% (old PSI: 83%, and still 99.7% at 2,000 requests, where chi-square
misses none). The minimum effect changes nothing below ~500 requests per side (significance is stricter there).

Prints a table; asserts nothing (``tests/unit/test_canary_class_shift.py`` holds the rule to its bounds).
`PYTHONPATH=. .venv/bin/python benchmarks/canary_class_shift.py [trials]`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from contract.shift import ALPHA, MIN_CRAMERS_V, class_shift
from serving.metrics import PROBABILITY_BUCKETS
from serving.rollout.analysis import psi

CLASSES = ("on_time", "late", "very_late")
TRIALS = 2000
SIZES = (100, 150, 200, 2000)
Shares = tuple[float, float, float]
#: (name, stable shares, canary shares)
SCENARIOS: list[tuple[str, Shares, Shares]] = [
    ("tied 60/30/10", (0.60, 0.30, 0.10), (0.60, 0.30, 0.10)),
    ("tied 60/38/2 (rare class)", (0.60, 0.38, 0.02), (0.60, 0.38, 0.02)),
    ("tied 72/23/5", (0.72, 0.23, 0.05), (0.72, 0.23, 0.05)),
    ("shifted very_late 10% -> 30% (gross)", (0.60, 0.30, 0.10), (0.4667, 0.2333, 0.30)),
    ("shifted very_late 10% -> 25%", (0.60, 0.30, 0.10), (0.50, 0.25, 0.25)),
    ("shifted rare 2% -> 8%", (0.60, 0.38, 0.02), (0.56, 0.36, 0.08)),
    ("shifted very_late 10% -> 16%", (0.60, 0.30, 0.10), (0.56, 0.28, 0.16)),
    ("small shift very_late 10% -> 12.5%", (0.60, 0.30, 0.10), (0.5833, 0.2917, 0.125)),
]
Rule = Callable[[np.ndarray, np.ndarray], bool]


def chi_square(stable: np.ndarray, canary: np.ndarray) -> bool:
    test = class_shift(
        dict(zip(CLASSES, stable.tolist(), strict=True)), dict(zip(CLASSES, canary.tolist(), strict=True))
    )
    return test.shifted(ALPHA, MIN_CRAMERS_V)


def chi_square_p_only(stable: np.ndarray, canary: np.ndarray) -> bool:
    test = class_shift(
        dict(zip(CLASSES, stable.tolist(), strict=True)), dict(zip(CLASSES, canary.tolist(), strict=True))
    )
    return test.shifted(ALPHA, 0.0)


def _as_probability_histogram(counts: np.ndarray) -> dict[float, float]:
    """Class indices observed as if they were probabilities: cumulative counts per bucket bound."""
    bounds = [*map(float, PROBABILITY_BUCKETS), math.inf]
    return {le: float(sum(n for index, n in enumerate(counts) if index <= le)) for le in bounds}


OLD_MAX_PSI = 0.25
"""The PSI threshold the canary used before (0.25, "a large shift" by the usual convention)."""


def old_psi(stable: np.ndarray, canary: np.ndarray) -> bool:
    value = psi(_as_probability_histogram(stable), _as_probability_histogram(canary))
    return not math.isnan(value) and value > OLD_MAX_PSI


RULES: dict[str, Rule] = {"chi-square": chi_square, "chi-square (p only)": chi_square_p_only, "old PSI": old_psi}


def alarm_rate(rule: Rule, stable: Shares, canary: Shares, size: int, trials: int, seed: int) -> float:
    """The share of ``trials`` windows of ``size`` requests per side that ``rule`` fails."""
    rng = np.random.default_rng(seed)
    stable_counts = rng.multinomial(size, stable, trials)
    canary_counts = rng.multinomial(size, canary, trials)
    return float(np.mean([rule(a, b) for a, b in zip(stable_counts, canary_counts, strict=True)]))


def main(trials: int = TRIALS) -> None:
    table = Table(
        title=f"canary windows of predicted classes: {trials} windows per row; alpha {ALPHA}, min Cramér's V "
        f"{MIN_CRAMERS_V}",
        title_justify="left",
    )
    table.add_column("scenario")
    table.add_column("requests per side", justify="right")
    for name in RULES:
        table.add_column(name, justify="right")
    for index, (scenario, stable, canary) in enumerate(SCENARIOS):
        tied = stable == canary
        for size in SIZES:
            rates = [
                alarm_rate(rule, stable, canary, size, trials, seed=index * 1000 + size) for rule in RULES.values()
            ]
            cells = [f"{rate:.1%} false" if tied else f"{1 - rate:.1%} missed" for rate in rates]
            table.add_row(scenario, str(size), *cells)
    Console(width=140).print(table)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else TRIALS)
