"""The canary's error and latency guardrails, as tests that account for the window's size and for disturbances both
versions share (scipy.stats).

- **Latency, relative** (Kayenta's approach): the two windows' latencies compared as distributions by a one-sided
  Mann-Whitney U test (is the canary slower?) with minimum effect sizes: the Vargha-Delaney A (the probability that a
  canary request is slower than a stable one, ties counted half; 0.5 is no difference, 0.64 the conventional "medium"
  effect) and a rise of the median worth acting on (5 ms: two processes serving the same model differ by a millisecond
  or two, which the test alone finds significant). A spike that hits both versions in the same seconds moves both
  distributions and not A; a few slow requests in the canary's tail move p99 a lot but A hardly at all. The old rule
  (canary p99 over 1.5x stable's) rolled back a challenger whose p99 over ~100 requests caught a disturbance both
  versions saw. Model servers report latency as a Prometheus histogram, so the samples are bucket indices: ordinal
  data with many ties, which the test's tie correction handles (``method="asymptotic"``).
- **Latency, absolute** (Flagger's thresholds): the share of the canary's requests slower than the objective (a
  bucket edge of the servers' histogram, so counted rather than interpolated) is tested against the 1% a p99
  objective allows. When the stable version is over the objective too, the platform is overloaded and the canary
  is not to blame: the window is inconclusive and keeps growing.
- **Errors**: the canary's server errors by a one-sided binomial test against its allowance (the stable version's
  rate plus a margin, at most the error-rate bound). A rate over the allowance that is not yet significant holds
  the step (inconclusive) instead of passing it: the window grows until the evidence decides.

``tests/unit/test_canary_guardrails.py`` measures their false- and missed-rollback rates on seeded simulated windows
(a good canary whose windows catch shared stalls; one 10 ms slower; one failing 8% of its requests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Outcome = Literal["pass", "fail", "hold"]


@dataclass(frozen=True)
class Check:
    """One guardrail's outcome on one window, with the evidence in words."""

    outcome: Outcome
    detail: str


def bucket_counts(cumulative: dict[float, float]) -> tuple[list[float], list[float]]:
    """Upper bounds and per-bucket counts of a cumulative Prometheus histogram."""
    bounds, counts, previous = [], [], 0.0
    for bound, value in sorted(cumulative.items()):
        bounds.append(bound)
        counts.append(max(value - previous, 0.0))
        previous = value
    return bounds, counts


def histogram_quantile(cumulative: dict[float, float], q: float) -> float:
    """The ``q`` quantile of a cumulative histogram, interpolating inside the bucket (as Prometheus'
    ``histogram_quantile``); NaN when it is empty."""
    buckets = sorted(cumulative.items())
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


def vargha_delaney_a(stable: list[float], canary: list[float]) -> float:
    """P(a canary request is in a slower bucket than a stable one) + half P(same bucket), from bucket counts."""
    n, m = sum(stable), sum(canary)
    if not n or not m:
        return math.nan
    below = np.concatenate([[0.0], np.cumsum(stable)[:-1]])  # stable requests in faster buckets, per bucket
    wins = sum(c * (b + 0.5 * s) for c, b, s in zip(canary, below, stable, strict=True))
    return float(wins / (n * m))


def latency_shift(
    stable: dict[float, float], canary: dict[float, float], alpha: float, min_effect: float
) -> tuple[bool, float, float]:
    """(slower, p-value, A): the canary's latencies are stochastically larger when the one-sided Mann-Whitney U
    test rejects at ``alpha`` and the effect A is at least ``min_effect``. NaN p and A when a side has no requests."""
    bounds, old = bucket_counts(stable)
    _, new = bucket_counts(canary)
    if len(old) != len(new) or not sum(old) or not sum(new):
        return False, math.nan, math.nan
    ranks = np.arange(len(bounds))
    # Integer counts: a histogram's difference of float counters is whole numbers.
    x = np.repeat(ranks, np.rint(new).astype(int))
    y = np.repeat(ranks, np.rint(old).astype(int))
    if np.all(x == x[0]) and np.all(y == x[0]):
        return False, 1.0, 0.5  # every request of both in one bucket: nothing to tell apart
    p_value = float(stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue)
    effect = vargha_delaney_a(old, new)
    return p_value < alpha and effect >= min_effect, p_value, effect


def share_over(cumulative: dict[float, float], objective_s: float) -> tuple[float, float]:
    """(requests certainly slower than ``objective_s``, all requests) from a cumulative histogram: those above its
    first bucket edge at or past the objective (the objective itself when it is an edge, as the servers' 0.25 s is;
    no such finite edge: none can be told slower)."""
    total = max(cumulative.values(), default=0.0)
    edges = [(le, n) for le, n in sorted(cumulative.items()) if le >= objective_s or math.isclose(le, objective_s)]
    if not edges or math.isinf(edges[0][0]):
        return 0.0, total
    return total - edges[0][1], total


def over_objective(slow: float, total: float, allowed: float, alpha: float) -> bool:
    """More than ``allowed`` of the requests slower than the objective, beyond chance at ``alpha``."""
    if not total or slow / total <= allowed:
        return False
    return float(stats.binomtest(round(slow), round(total), allowed, alternative="greater").pvalue) < alpha


def latency_check(
    stable: dict[float, float],
    canary: dict[float, float],
    objective_s: float,
    alpha: float,
    min_effect: float,
    min_increase_s: float = 0.0,
) -> Check:
    """The canary's latency against the stable version's (distribution, and a median at least ``min_increase_s``
    higher) and against the objective (absolute)."""
    slower, p_value, effect = latency_shift(stable, canary, alpha, min_effect)
    rise = histogram_quantile(canary, 0.5) - histogram_quantile(stable, 0.5)
    relative = f"Mann-Whitney p {p_value:.2g}, A {effect:.2f}, median {rise * 1000:+.1f} ms"
    if slower and rise >= min_increase_s:
        return Check("fail", f"canary latency slower than stable ({relative}; A >= {min_effect:g})")
    if not canary or not stable:
        return Check("pass", relative)
    slow, total = share_over(canary, objective_s)
    if over_objective(slow, total, 0.01, alpha):
        stable_slow, stable_total = share_over(stable, objective_s)
        share = f"{slow / total:.1%} of canary requests over {objective_s * 1000:g} ms"
        if stable_total and stable_slow / stable_total > 0.01:
            return Check(
                "hold",
                f"{share}, and {stable_slow / stable_total:.1%} of stable's: both over the latency objective "
                "(a shared disturbance, not the canary's fault); waiting for more traffic",
            )
        return Check("fail", f"{share} (p99 objective; stable {stable_slow / max(stable_total, 1):.1%})")
    return Check("pass", relative)


def error_check(
    stable_errors: float,
    stable_requests: float,
    canary_errors: float,
    canary_requests: float,
    max_rate: float,
    max_increase: float,
    alpha: float,
) -> Check:
    """The canary's server errors against what it is allowed: the stable version's rate plus ``max_increase``, and
    never more than ``max_rate``. The stable rate is taken as measured (its window holds most of the traffic); the
    canary's count is tested against the allowance by a one-sided binomial test."""
    rate = canary_errors / canary_requests if canary_requests else 0.0
    stable_rate = stable_errors / stable_requests if stable_requests else 0.0
    allowed = min(max_rate, stable_rate + max_increase)
    words = (
        f"canary error rate {rate:.1%} over {canary_requests:.0f} requests "
        f"(stable {stable_rate:.1%}, allowed {allowed:.1%})"
    )
    if not canary_requests or rate <= allowed:
        return Check("pass", words)
    p_value = float(
        stats.binomtest(round(canary_errors), round(canary_requests), allowed, alternative="greater").pvalue
    )
    if p_value < alpha:
        return Check("fail", f"{words}: above the allowance beyond chance (p {p_value:.2g})")
    return Check(
        "hold", f"{words}: over the allowance, not beyond chance yet (p {p_value:.2g}); waiting for more traffic"
    )
