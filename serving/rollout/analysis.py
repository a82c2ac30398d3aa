"""Canary analysis: compare the canary with the stable version over the same window of live traffic.

Each side is a ``Snapshot`` of its model server's Prometheus counters and histograms; the window is the
difference between two snapshots. Three checks, with thresholds from ``AnalysisConfig``: server errors and
latency (``guardrails``: tests that account for the window's size and for disturbances both versions share), and the
shift of the predictions, by what the versions predict:

- scores (a binary classifier's probabilities, a regressor's estimates): the histogram's buckets are merged into
  groups of about equal mass under the stable version, and the two count vectors over those groups are tested as
  classes are, at a stricter level (``score_alpha``);
- classes (a multiclass classifier's predicted classes): the chi-square test of homogeneity of the two class-count
  vectors with a minimum effect size (``contract.shift``): a window fails only when the difference is both
  unlikely by chance (p below ``class_alpha``) and large (Cramér's V at least ``min_cramers_v``).

PSI decided scores before, and with a floor for an empty group it rolled tied challengers back on a handful of
counts: a group holding 5% of stable's scores and none of a 77-request canary window's scores PSI 0.31 ("prediction
shift PSI 0.32 > 0.25" rolled a re-registered champion back in CI; 2 of 50 tied challengers in
``benchmarks/canary_guardrails.py``). It is still computed and shown, as the size of a shift a person reads
(``benchmarks/canary_class_shift.py`` measures both rules on classes).

The stable version is judged first: when its own error rate is above the bound, comparing the canary with it says
nothing (a canary as broken as its baseline would pass the relative checks, and one failing only because
something both share is broken would be blamed alone), so the verdict is ``stable unhealthy`` and names both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from contract.live_evaluation import Comparison, Estimate, Evidence, compare
from contract.model import Metric
from contract.shift import ALPHA, MIN_CRAMERS_V, PSI_FLOOR, class_shift
from contract.shift import psi as binned_psi
from serving.rollout import guardrails

Verdict = Literal["pass", "fail", "inconclusive", "stable unhealthy"]
STABLE_UNHEALTHY: Verdict = "stable unhealthy"


@dataclass(frozen=True)
class AnalysisConfig:
    min_requests: int = 100
    """Requests each side must have served in the window before anything is concluded."""
    max_error_rate: float = 0.02
    """Server errors / requests, of the canary and of the stable version (above it, the stable version is
    unhealthy); bad requests (4xx) are the caller's and do not count."""
    max_error_rate_increase: float = 0.01
    """How much worse than stable the canary's error rate may be."""
    error_alpha: float = 0.01
    """Errors: significance level of the binomial test against ``max_error_rate`` and of Fisher's test against the
    stable version (``guardrails.error_check``); a rate over a bound that is not significant yet holds the step."""
    latency_alpha: float = 0.01
    """Latency: significance level of the one-sided Mann-Whitney U test (canary slower than stable)."""
    min_latency_effect: float = 0.64
    """Latency: the smallest Vargha-Delaney A (P(canary request slower than a stable one)) that fails a window;
    0.5 is no difference, 0.64 a medium effect."""
    min_latency_increase_s: float = 0.005
    """Latency: the smallest rise of the median worth a rollback. Two processes serving the same model differ by
    a millisecond or two (the canary's, at a small share, idles between requests and pays for waking up), which the
    test alone finds significant (``benchmarks/canary_guardrails.py``)."""
    latency_objective_s: float = 0.25
    """Latency: the p99 objective, a bucket edge of the servers' histogram: more than 1% of the canary's requests
    slower than this (beyond chance) fails the window, unless the stable version is over it too."""
    class_alpha: float = ALPHA
    """Predicted classes: the chi-square test's significance level."""
    min_cramers_v: float = MIN_CRAMERS_V
    """Predicted classes and score groups: the smallest effect (Cramér's V) that fails a window."""
    score_alpha: float = 0.001
    """Scores: the chi-square test's significance level, stricter than for classes. A tied challenger is tested at
    each step (three or four windows), so at 0.005 about 2% of tied rollouts failed by chance (one of 23 in
    ``benchmarks/canary_guardrails.py``, p 0.0047), the whole of the goal; a shift worth a rollback moves scores
    far more than that (the rollout tests' shifted challenger: p below 1e-20 in 50-request windows)."""
    score_groups: int = 5
    """Scores: the groups of about equal mass under the stable version that the histogram's buckets are merged
    into before the test (fine buckets would leave most cells with expected counts under 5 at canary sizes)."""
    live_evidence: Evidence = "not worse"
    """Live labels (where the monitor reports both versions): what the canary must show before all traffic moves to
    it; until then it is kept at its share. A canary shown worse beyond the tolerance fails at any step."""
    live_min_labels: int = 200
    """Live labels: labelled predictions each version needs before the comparison concludes anything."""
    live_confidence: float = 0.95
    """Live labels: the confidence of the interval of the canary's gain."""


@dataclass
class Snapshot:
    """Cumulative counters of one model version at one moment."""

    requests: float = 0.0
    server_errors: float = 0.0
    latency: dict[float, float] = field(default_factory=dict)
    """Histogram buckets: upper bound -> cumulative count."""
    predictions: dict[float, float] = field(default_factory=dict)
    """The prediction histogram (binary and regression): upper bound -> cumulative count."""
    classes: dict[str, float] = field(default_factory=dict)
    """Predicted classes (multiclass): class -> cumulative count."""
    live: Estimate | None = None
    """The live metric on the monitor's labelled predictions, over its sliding window (a level, not a counter:
    a window keeps the newer snapshot's); None where no monitor reports the version."""

    def minus(self, earlier: Snapshot) -> Snapshot:
        """The window between ``earlier`` and this snapshot (a restarted server starts again from zero)."""
        if self.requests < earlier.requests:
            return self
        requests = self.requests - earlier.requests
        return Snapshot(
            requests=requests,
            # The server counts a request when it arrives and its error when it fails, so the errors of requests
            # in flight at ``earlier`` fall in this window while their arrivals fell in the one before: with every
            # request failing, the window's errors exceed its requests by the requests then in flight (how a
            # 101.77% error rate was shown). Those failures are of requests this window did not count; bounding
            # the errors by the window's requests counts each failure against at most one counted request.
            server_errors=min(self.server_errors - earlier.server_errors, requests),
            latency={le: n - earlier.latency.get(le, 0.0) for le, n in self.latency.items()},
            predictions={le: n - earlier.predictions.get(le, 0.0) for le, n in self.predictions.items()},
            classes={name: n - earlier.classes.get(name, 0.0) for name, n in self.classes.items()},
            live=self.live,
        )

    def plus(self, other: Snapshot) -> Snapshot:
        """Two windows pooled: counts added bucket by bucket and class by class."""

        def added(a: dict[Any, float], b: dict[Any, float]) -> dict[Any, float]:
            return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in {*a, *b}}

        return Snapshot(
            requests=self.requests + other.requests,
            server_errors=self.server_errors + other.server_errors,
            latency=added(self.latency, other.latency),
            predictions=added(self.predictions, other.predictions),
            classes=added(self.classes, other.classes),
            live=self.live or other.live,
        )

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float:
        """From the cumulative histogram, interpolating inside the bucket (as Prometheus' histogram_quantile)."""
        return guardrails.histogram_quantile(self.latency, q)


def _counts(cumulative: dict[float, float]) -> list[float]:
    counts, previous = [], 0.0
    for _, value in sorted(cumulative.items()):
        counts.append(max(value - previous, 0.0))
        previous = value
    return counts


def score_groups(
    expected: dict[float, float], actual: dict[float, float], groups: int = 5
) -> list[tuple[float, float]]:
    """Two windows' prediction histograms (cumulative, same buckets) as counts over ``groups`` groups of buckets,
    each holding about an equal share of ``expected``'s scores: ``(expected count, actual count)`` per group.
    Empty when a side has no scores or the buckets differ."""
    old, new = _counts(expected), _counts(actual)
    n, m = sum(old), sum(new)
    if not n or not m or len(old) != len(new):
        return []
    merged: list[tuple[float, float]] = []
    mass_old = mass_new = 0.0
    for a, b in zip(old, new, strict=True):
        mass_old, mass_new = mass_old + a, mass_new + b
        if mass_old >= n / groups:
            merged.append((mass_old, mass_new))
            mass_old = mass_new = 0.0
    if mass_old or mass_new:
        merged.append((mass_old, mass_new))
    return merged


def psi(expected: dict[float, float], actual: dict[float, float], bins: int = 5, epsilon: float = PSI_FLOOR) -> float:
    """Population stability index of ``actual`` against ``expected`` (cumulative histograms, same buckets), over
    ``score_groups``; the index less the sampling noise of the window's sizes is ``contract.shift.psi``'s."""
    merged = score_groups(expected, actual, bins)
    if not merged:
        return float("nan")
    return binned_psi([a for a, _ in merged], [b for _, b in merged], epsilon)


@dataclass(frozen=True)
class Shift:
    """The prediction-shift check of one window: the chi-square test of predicted classes, or of scores merged
    into groups (with their PSI, for reading)."""

    statistic: Literal["chi-square", "score chi-square"]
    value: float
    """The chi-square test's p-value; NaN when there was nothing to compare."""
    effect: float = math.nan
    """Cramér's V."""
    failed: bool = False
    psi: float = math.nan
    """Scores: the PSI of the same groups, less the windows' sampling noise."""

    def __str__(self) -> str:
        if math.isnan(self.value):
            return f"{self.statistic}: nothing to compare"
        text = f"{self.statistic} p {self.value:.3g}, Cramér's V {self.effect:.3f}"
        return text + (f" (PSI {self.psi:.3f})" if not math.isnan(self.psi) else "")

    @property
    def short(self) -> str:
        """For a table cell: ``chi2 p=0.42 V=0.05`` (Cramér's V), with ``PSI 0.031`` for scores; empty when NaN."""
        if math.isnan(self.value):
            return ""
        text = f"chi2 p={self.value:.2g} V={self.effect:.2f}"
        return text + (f" PSI {self.psi:.2f}" if not math.isnan(self.psi) else "")

    def failure(self, config: AnalysisConfig) -> str:
        """Why the window failed on this check."""
        classes = self.statistic == "chi-square"
        what = "predicted classes shifted" if classes else "prediction scores shifted"
        alpha = config.class_alpha if classes else config.score_alpha
        text = (
            f"{what}: chi-square p {self.value:.2g} < {alpha:g} and Cramér's V {self.effect:.2f} >= "
            f"{config.min_cramers_v:g}"
        )
        return text + (f" (PSI {self.psi:.2f})" if not math.isnan(self.psi) else "")


NO_SHIFT = Shift("chi-square", math.nan)
"""A window with nothing analysed yet."""


def prediction_shift(stable: Snapshot, canary: Snapshot, config: AnalysisConfig) -> Shift:
    """Chi-square with a minimum effect size on predicted classes when the versions count classes, else on the
    prediction histograms merged into groups of equal mass under the stable version."""
    if stable.classes or canary.classes:
        test = class_shift(stable.classes, canary.classes)
        return Shift("chi-square", test.p_value, test.cramers_v, test.shifted(config.class_alpha, config.min_cramers_v))
    merged = score_groups(stable.predictions, canary.predictions, config.score_groups)
    if not merged:
        return Shift("score chi-square", math.nan)
    test = class_shift({str(i): a for i, (a, _) in enumerate(merged)}, {str(i): b for i, (_, b) in enumerate(merged)})
    return Shift(
        "score chi-square",
        test.p_value,
        test.cramers_v,
        test.shifted(config.score_alpha, config.min_cramers_v),
        binned_psi([a for a, _ in merged], [b for _, b in merged]),
    )


@dataclass
class Analysis:
    verdict: Verdict
    reasons: list[str]
    stable: Snapshot
    canary: Snapshot
    shift: Shift
    live: Comparison | None = None
    """The versions compared on live labels, where the monitor reports both."""

    @property
    def summary(self) -> str:
        return f"{self.verdict}: {'; '.join(self.reasons)}"


def live_comparison(
    stable: Snapshot, canary: Snapshot, config: AnalysisConfig, metric: Metric | None
) -> Comparison | None:
    """The versions on live labels, when the monitor reports both and the evidence is asked for."""
    if metric is None or stable.live is None or canary.live is None or config.live_evidence == "off":
        return None
    return compare(metric, stable.live, canary.live, config.live_min_labels, config.live_confidence)


def analyse(stable: Snapshot, canary: Snapshot, config: AnalysisConfig, metric: Metric | None = None) -> Analysis:
    """Compare two windows (already differenced); ``metric`` (the component's) compares them on live labels."""
    shift = prediction_shift(stable, canary, config)
    live = live_comparison(stable, canary, config, metric)
    # The stable version is judged on its own window as soon as that window is large enough (the canary's may
    # still be small at a low share): a rate from fewer requests is noise, as it is for the canary's checks.
    if stable.requests >= config.min_requests and stable.error_rate > config.max_error_rate:
        reasons = [
            f"stable error rate {stable.error_rate:.1%} over {stable.requests:.0f} requests > "
            f"{config.max_error_rate:.1%}: the baseline is broken, so the canary cannot be judged against it",
            f"canary error rate {canary.error_rate:.1%} over {canary.requests:.0f} requests",
        ]
        return Analysis(STABLE_UNHEALTHY, reasons, stable, canary, shift, live)
    if canary.requests < config.min_requests or stable.requests < config.min_requests:
        reason = (
            f"not enough traffic yet (stable {stable.requests:.0f}, canary {canary.requests:.0f} requests; "
            f"{config.min_requests} each needed)"
        )
        return Analysis("inconclusive", [reason], stable, canary, shift, live)
    errors = guardrails.error_check(
        stable.server_errors,
        stable.requests,
        canary.server_errors,
        canary.requests,
        config.max_error_rate,
        config.max_error_rate_increase,
        config.error_alpha,
    )
    latency = guardrails.latency_check(
        stable.latency,
        canary.latency,
        config.latency_objective_s,
        config.latency_alpha,
        config.min_latency_effect,
        config.min_latency_increase_s,
    )
    checks = (errors, latency)
    failures = [check.detail for check in checks if check.outcome == "fail"]
    held = [check.detail for check in checks if check.outcome == "hold"]
    if shift.failed:
        # Scores unlike stable's say the canary answers differently, which without labels is the best sign of a
        # broken model. Where live labels judge (a monitored component, evidence asked for), a model retrained
        # on a changed world answers differently because it is right where stable is wrong: the labels decide.
        # (The loop's first drill rolled back a retrained fraud model at 50% on chi-square p 0.00026 while its
        # live ROC AUC was 0.975 against the champion's 0.805.)
        judged_live = config.live_evidence != "off" and metric is not None and stable.live is not None
        if not judged_live:
            failures.append(shift.failure(config))
        elif live is None or live.verdict not in ("better", "not worse"):
            held.append(f"{shift.failure(config)}: held until the live labels judge it")
    if live is not None and live.verdict == "worse" and metric is not None:
        failures.append(live.summary(metric))
    if failures:
        return Analysis("fail", failures, stable, canary, shift, live)
    if held:
        return Analysis("inconclusive", held, stable, canary, shift, live)
    p99_canary, p99_stable = canary.quantile(0.99), stable.quantile(0.99)
    passed = (
        f"error rate {canary.error_rate:.1%} (stable {stable.error_rate:.1%}), p99 {p99_canary * 1000:.1f} ms "
        f"(stable {p99_stable * 1000:.1f} ms), latency {latency.detail}, {shift}"
        + (f", {live.summary(metric)}" if live is not None and metric is not None else "")
    )
    return Analysis("pass", [passed], stable, canary, shift, live)
