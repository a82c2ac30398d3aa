"""Two model versions compared on their live labelled predictions: the online evaluation a canary or an A/B
experiment rests on (issue 19 item 4).

Each version's score is its component's own metric (ROC AUC, MAE, log loss, ...) on the predictions whose label has
come back, with a standard error from a bootstrap over those predictions (``scipy.stats.bootstrap``, paired rows).
The bootstrap serves every metric a component declares; DeLong's closed form would serve ROC AUC only. A resample
the metric cannot score (one class only, for ROC AUC) is left out of the spread; when more than a tenth are, the
estimate is too thin to judge and its error is infinite.

The versions answer different requests (the traffic is split), so their estimates are independent: the difference's
standard error is the root of the sum of their squares, and its interval normal. Verdicts, from the canary's side
(``gain`` > 0 when the canary is better, whatever the metric's direction), at ``confidence``:

- ``waiting``: fewer than ``min_labels`` labelled predictions on either side;
- ``better``: the interval's low end above 0;
- ``worse``: the interval's high end below ``-tolerance``: worse by more than the component says matters;
- ``not worse``: the low end above ``-tolerance`` (non-inferior within the tolerance), not shown better;
- ``undecided``: none of these yet (more labels narrow the interval).

Measured for false and missed verdicts by ``tests/unit/test_live_evaluation.py`` on versions whose true gap is known.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contract.model import Metric

Verdict = Literal["waiting", "better", "worse", "not worse", "undecided"]
Evidence = Literal["off", "not worse", "better"]
"""What a canary must show on live labels before it takes all traffic: nothing (``off``), that it is not worse
than stable by more than the tolerance, or that it is better."""

# The monitor's series the canary reads them from (``monitoring.metrics`` exports them under these names; the
# rollout in ``serving`` may not import monitoring, so the names live here, below both).
LIVE_METRIC = "mlstack_monitor_live_metric"
LIVE_METRIC_STDERR = "mlstack_monitor_live_metric_stderr"
LABELLED_PREDICTIONS = "mlstack_monitor_labelled_predictions"
RESAMPLES = 400
"""Bootstrap resamples per estimate: the standard error's own error is about 1/sqrt(2 * 400), 3.5%."""
MAX_UNSCORED = 0.1
"""The share of resamples the metric may fail to score before the estimate counts as too thin."""


@dataclass(frozen=True)
class Estimate:
    """A version's live score: the metric on its labelled predictions, its standard error, the count it rests on."""

    value: float
    stderr: float
    count: int


def estimate(metric: Metric, y_true: np.ndarray, y_pred: np.ndarray, seed: int = 0) -> Estimate:
    """``metric`` on the labelled predictions with its bootstrap standard error (infinite when too thin to judge).
    ``y_pred`` is what the metric scores: (rows,) or (rows, classes)."""
    from scipy.stats import bootstrap

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(y_true)
    if n != len(y_pred):
        raise ValueError(f"{n} labels for {len(y_pred)} predictions: each labelled prediction has one of each")
    value = _score(metric, y_true, y_pred)
    if n < 2 or not math.isfinite(value):
        return Estimate(value, math.inf, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate spread (unscored resamples) is judged below, not warned of
        result = bootstrap(
            (np.arange(n),),
            lambda rows: _score(metric, y_true[rows], y_pred[rows]),
            n_resamples=RESAMPLES,
            vectorized=False,
            method="percentile",  # only its distribution is used: no BCa jackknife of n more scores
            rng=np.random.default_rng(seed),
        )
    spread = np.asarray(result.bootstrap_distribution)
    scored = spread[np.isfinite(spread)]
    if len(scored) < (1 - MAX_UNSCORED) * len(spread):
        return Estimate(value, math.inf, n)
    return Estimate(value, float(np.std(scored, ddof=1)), n)


def _score(metric: Metric, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The metric, or NaN where it is undefined (ROC AUC of a sample with one class: an error or a warning and NaN,
    by scikit-learn's version)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(metric.score(y_true, y_pred))
        except ValueError:
            return math.nan


@dataclass(frozen=True)
class Comparison:
    """The canary against the stable version on live labels."""

    verdict: Verdict
    gain: float
    """How much better the canary scored (the metric's direction taken into account)."""
    low: float
    high: float
    """The gain's interval at the comparison's confidence."""
    stable: Estimate
    canary: Estimate

    def shows(self, evidence: Evidence) -> bool:
        """Whether this comparison is the evidence asked for before all traffic moves to the canary."""
        wanted: dict[Evidence, tuple[Verdict, ...]] = {
            "off": ("waiting", "better", "worse", "not worse", "undecided"),
            "not worse": ("not worse", "better"),
            "better": ("better",),
        }
        return self.verdict in wanted[evidence]

    def summary(self, metric: Metric) -> str:
        if self.verdict == "waiting":
            return f"live {metric.name}: waiting for labels (stable {self.stable.count}, canary {self.canary.count})"
        return (
            f"live {metric.name} {self.canary.value:.4f} vs {self.stable.value:.4f} "
            f"(gain {self.gain:+.4f}, interval {self.low:+.4f}..{self.high:+.4f}; "
            f"{self.canary.count}/{self.stable.count} labels): {self.verdict}"
        )


def compare(
    metric: Metric,
    stable: Estimate,
    canary: Estimate,
    min_labels: int = 200,
    confidence: float = 0.95,
    tolerance: float | None = None,
) -> Comparison:
    """The verdict on the canary's gain over the stable version (``tolerance``: the metric's own by default)."""
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} is not between 0 and 1")
    allowed = metric.tolerance if tolerance is None else tolerance
    gain = metric.gain(canary.value, stable.value)
    if min(stable.count, canary.count) < min_labels or not (math.isfinite(gain)):
        return Comparison("waiting", gain, -math.inf, math.inf, stable, canary)
    half = float(norm.ppf(0.5 + confidence / 2)) * math.hypot(stable.stderr, canary.stderr)
    low, high = gain - half, gain + half
    verdict: Verdict
    if low > 0:
        verdict = "better"
    elif high < -allowed:
        verdict = "worse"
    elif low > -allowed:
        verdict = "not worse"
    else:
        verdict = "undecided"
    return Comparison(verdict, gain, low, high, stable, canary)
