"""Whether two samples differ: the chi-square test of homogeneity (with a minimum effect size) of two count
vectors, and the population stability index (PSI) of two binned distributions.

The canary analysis compares the stable and the canary version's predicted classes over one window, and the
monitor compares live traffic with a reference; both ask the same question of two count vectors, so it is
answered here (both may import the contract; the monitor may not import serving).

Why not PSI on class shares: PSI has no notion of sample size, and a class absent on one side needs a floor (1e-4)
that turns a handful of counts into a large index (6 "very late" against 0 in 100-request windows gave PSI 0.36
between two versions whose class shares differ by half a point). The chi-square test accounts for the counts,
and the effect size (Cramér's V) keeps a shift that is significant but too small to matter from failing a window
once windows are large. ``benchmarks/canary_class_shift.py`` measures both rules' false and missed alarms.

PSI lives here too, for the same reason: the canary (``serving.rollout.analysis``) compares prediction histograms
with it, and the drift statistics (``contract.drift``) compare a window with a version's training profile.

scipy is imported when a test runs: the contract is imported by the streaming job's environment, which has no
use for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALPHA = 0.005
"""The test's significance level. A rollout judges several windows (four at the default schedule), each a chance
to roll a tied challenger back: at 0.5% a tied window fails about 0.5% of the time (2% of four-window rollouts),
while a gross shift (a 10% class predicted 30% of the time, Cramér's V 0.25) fails 97% of 200-request windows
and a 10% -> 25% shift (V 0.2) 80% of them, so at least one of a rollout's windows almost surely. No test of all
classes at once does much better at these sizes: at 1% the 10% -> 25% shift is still missed in one window of
seven, and a tied challenger fails twice as often (``benchmarks/canary_class_shift.py``)."""
MIN_CRAMERS_V = 0.1
"""The smallest effect that fails a window, Cohen's "small" for a 2 x k table (where Cramér's V is his w): below
it, a significant difference is one only a large window can see and nobody would roll back for (a 10% class
predicted 12.5% of the time is V 0.04, 16% of the time V 0.09). At canary window sizes (a few hundred requests)
significance at ``ALPHA`` already requires more than this; it binds from about 500 requests per side."""


@dataclass(frozen=True)
class ClassShift:
    """The chi-square test of two class-count vectors."""

    p_value: float
    """NaN when there is nothing to test (a side without counts, or fewer than two classes seen)."""
    cramers_v: float
    """Effect size in [0, 1]: 0 when the shares are equal, 1 when the two sides predict disjoint classes."""
    statistic: float
    dof: int
    classes: tuple[str, ...]
    """The classes tested: those predicted on at least one side."""

    def shifted(self, alpha: float = ALPHA, min_effect: float = MIN_CRAMERS_V) -> bool:
        """Significant at ``alpha`` and at least ``min_effect`` large."""
        return not math.isnan(self.p_value) and self.p_value < alpha and self.cramers_v >= min_effect

    def __str__(self) -> str:
        if math.isnan(self.p_value):
            return "chi-square: no classes to compare"
        return f"chi-square p {self.p_value:.3g}, Cramér's V {self.cramers_v:.3f}"


def class_shift(expected: Mapping[str, float], actual: Mapping[str, float]) -> ClassShift:
    """Chi-square test of homogeneity on the 2 x k table of ``expected`` and ``actual`` class counts.

    Classes with no count on either side are dropped (they carry no information, and a zero column makes the
    expected frequencies zero); a class present on one side only stays. Counts are rounded to whole numbers, as
    the test requires (counters read from Prometheus are floats)."""
    from scipy.stats import chi2_contingency

    names = tuple(sorted({*expected, *actual}))
    for name in names:
        for side in (expected, actual):
            value = side.get(name, 0.0)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"class {name!r} has count {value}: counts are finite and not negative")
    kept = tuple(n for n in names if round(expected.get(n, 0.0)) + round(actual.get(n, 0.0)) > 0)
    table = [[round(side.get(n, 0.0)) for n in kept] for side in (expected, actual)]
    if len(kept) < 2 or not all(sum(row) for row in table):
        return ClassShift(math.nan, math.nan, math.nan, 0, kept)
    # No Yates correction: it applies to 2 x 2 tables only, and would make the binary case more lenient than
    # the rest for no reason of the question asked.
    result = chi2_contingency(table, correction=False)
    total = sum(map(sum, table))
    statistic = float(result.statistic)
    # Cramér's V for a 2 x k table: sqrt(chi2 / (n * (min(rows, columns) - 1))), and min(rows, columns) - 1 = 1.
    cramers_v = math.sqrt(statistic / total) if total else math.nan
    return ClassShift(float(result.pvalue), min(cramers_v, 1.0), statistic, int(result.dof), kept)


PSI_FLOOR = 1e-4
"""The share a bin empty on one side counts as, so that its log ratio is finite."""


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = PSI_FLOOR) -> float:
    """Population stability index of ``actual`` against ``expected``: two count vectors over the same bins.

    The sampling noise two same-distribution samples of these sizes show on average, (bins - 1) x (1/n + 1/m)
    for n and m counts (PSI is close to the symmetric chi-square divergence, whose mean under no shift that is),
    is subtracted: small windows would otherwise look shifted by chance alone. NaN when a side has no counts or
    the vectors differ in length; never below 0."""
    n, m = float(sum(expected)), float(sum(actual))
    if not n or not m or len(expected) != len(actual):
        return math.nan
    shares = [(max(a / n, epsilon), max(b / m, epsilon)) for a, b in zip(expected, actual, strict=True)]
    raw = sum((b - a) * math.log(b / a) for a, b in shares)
    return max(raw - (len(shares) - 1) * (1 / n + 1 / m), 0.0)
