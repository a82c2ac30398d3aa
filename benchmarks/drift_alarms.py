"""Drift and data-quality alarms against a training profile (``contract.drift``): false alarms on stationary
windows, missed alarms on shifted ones, at 100, 300 and 1,000 rows per window.

Data: the fraud component's own generator. The profile is built (``contract.profile``) from the first 30,000
transactions: ``amount`` (a skewed numeric request field), ``channel`` (a categorical one, 35% online) and
``card_10m_count`` (the card's transactions in the 10 minutes before, computed as the ``card_10m`` view counts
them: a discrete feature, whose quantile bins merge). Windows are drawn from the next 30,000 transactions (same
generator, later time), then shifted:

- stationary: as drawn. Any alarm is false;
- amount + 0.25 std, + 0.5 std, + 1 std (the reference's standard deviation): a mean shift;
- channel online 35% -> 50%: a category share change;
- amount 10% null: a null-rate jump (the drift rule compares non-null values; the quality rule sees it).

Rules (the shipped thresholds of ``monitoring.alert_rules.Thresholds``, read from there):

- drift: PSI > 0.2 and the chi-square test's p < 0.01 (``ColumnDrift.drifted``), per column;
- PSI only, p only: each half alone, to show what the other half buys;
- quality: null rate more than 5 points over training's; more than 5% of values out of range.

A cell is the share of windows where the rule fires on the column named: on stationary rows a false-alarm rate,
on shifted ones (for the shifted column) a detection rate, whose complement is the missed-alarm rate. The alerts
also need the condition to hold for 15 minutes (drift) or 10 (quality) of consecutive windows, which makes a
sporadic false alarm rarer still; a single window is what is measured here.

Measured (1,000 windows per cell): the drift rule fires on at most 0.5% of stationary 100-row windows and on none
at 300 or 1,000 rows (the test alone: 0.2-2%, about its 1% level; PSI alone: up to 0.7%). It catches amount + 0.5
std and + 1 std in every window, and + 0.25 std in 95% of 100-row windows and all larger ones: ``amount`` is skewed
(5% of purchases are 1.5-5 times the card's habit), so its standard deviation is wide against its bulk, and a
quarter of it moves the bulk across several deciles (PSI ~0.3). It misses channel online 36% -> 50% (PSI ~0.08,
"moderate" by the usual convention, below 0.2; fired in 0-6% of windows) although the test alone sees it from 300
rows: the shipped PSI threshold decides what counts as drift there; 36% -> 70% (PSI ~0.5) is caught in 99.7-100%.
A null-rate jump to 10% is not drift (the drift rule compares non-null values: 0-0.7%) but the null-rate rule's:
95% of 100-row windows, all larger ones. No stationary window breaks a quality rule.

Prints tables; asserts nothing (``tests/unit/test_drift.py`` holds the rule to its bounds).
`PYTHONPATH=. .venv/bin/python benchmarks/drift_alarms.py [windows]` (default 500 per cell, about a minute).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from itertools import islice

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from contract.drift import ColumnDrift, column_drift
from contract.profile import Profile, categorical_profile, numeric_profile
from contract.registry import load
from monitoring.alert_rules import SHIPPED_THRESHOLDS as T

SIZES = (100, 300, 1000)
REFERENCE_ROWS = 30_000
WARM_UP_ROWS = 6_000
"""Dropped first: 15 minutes of generated time, in which the 10-minute counts are still filling up."""
COLUMNS = ("amount", "channel", "card_10m_count")


def fraud_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` generated transactions with the request fields and the card's 10-minute count."""
    generated = load("fraud").generate(10 * n, 1_764_000_000_000, seed)  # the first n transactions, not resolutions
    events = pd.DataFrame(islice((e for e in generated if e["kind"] == "transaction"), n))
    events["ts"] = pd.to_datetime(events["event_time"], unit="ms")
    counts = events.groupby("card_id").rolling("600s", on="ts")["amount"].count()
    events["card_10m_count"] = counts.reset_index(level=0, drop=True).sort_index().to_numpy() - 1
    return events[list(COLUMNS)]


def reference(rows: pd.DataFrame) -> Profile:
    columns = {
        "amount": numeric_profile(rows["amount"]),
        "channel": categorical_profile(rows["channel"]),
        "card_10m_count": numeric_profile(rows["card_10m_count"]),
    }
    return Profile("fraud", "binary", columns, numeric_profile([0.5]), ("amount", "channel"), ("card_10m_count",))


Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


def mean_shift(std: float, by: float) -> Shift:
    def shift(window: pd.DataFrame, _: np.random.Generator) -> pd.DataFrame:
        return window.assign(amount=window["amount"] + by * std)

    return shift


def online_share(to: float, base: float) -> Shift:
    def shift(window: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        flip = (window["channel"] == "pos") & (rng.random(len(window)) < (to - base) / (1 - base))
        return window.assign(channel=window["channel"].where(~flip, "online"))

    return shift


def nulls(share: float) -> Shift:
    def shift(window: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return window.assign(amount=window["amount"].mask(rng.random(len(window)) < share))

    return shift


RULES: dict[str, Callable[[ColumnDrift], bool]] = {
    "drift (PSI and p)": lambda d: d.drifted(T.drift_psi, T.drift_pvalue),
    "PSI only": lambda d: d.psi > T.drift_psi,
    "p only": lambda d: d.p_value < T.drift_pvalue,
    "null rate": lambda d: d.null_rate - d.reference_null_rate > T.null_rate_increase,
    "out of range": lambda d: d.out_of_range_rate > T.out_of_range_rate,
}


def rates(
    profile: Profile, pool: pd.DataFrame, shift: Shift | None, column: str, size: int, windows: int, seed: int
) -> dict[str, float]:
    """Share of ``windows`` windows of ``size`` rows where each rule fires on ``column``."""
    rng = np.random.default_rng(seed)
    fired = dict.fromkeys(RULES, 0)
    for _ in range(windows):
        window = pool.iloc[rng.choice(len(pool), size, replace=False)]
        if shift is not None:
            window = shift(window, rng)
        drift = column_drift(profile.columns[column], window[column], column)
        for name, rule in RULES.items():
            fired[name] += rule(drift)
    return {name: count / windows for name, count in fired.items()}


def main(windows: int = 500) -> None:
    rows = fraud_rows(WARM_UP_ROWS + 2 * REFERENCE_ROWS).iloc[WARM_UP_ROWS:]
    train, later = rows.iloc[:REFERENCE_ROWS], rows.iloc[REFERENCE_ROWS:].reset_index(drop=True)
    profile = reference(train)
    std = float(train["amount"].std())
    online = float((train["channel"] == "online").mean())
    scenarios: list[tuple[str, str, Shift | None]] = [
        *((f"stationary: {c}", c, None) for c in COLUMNS),
        ("amount + 0.25 std", "amount", mean_shift(std, 0.25)),
        ("amount + 0.5 std", "amount", mean_shift(std, 0.5)),
        ("amount + 1 std", "amount", mean_shift(std, 1.0)),
        (f"channel online {online:.0%} -> 50%", "channel", online_share(0.5, online)),
        (f"channel online {online:.0%} -> 70%", "channel", online_share(0.7, online)),
        ("amount 10% null", "amount", nulls(0.10)),
    ]
    console = Console(width=140)
    console.print(
        f"fraud generator: profile of {REFERENCE_ROWS:,} transactions, windows from the next {REFERENCE_ROWS:,}; "
        f"{windows} windows per cell; drift = PSI > {T.drift_psi} and chi-square p < {T.drift_pvalue}"
    )
    for size in SIZES:
        table = Table(title=f"share of {size}-row windows where the rule fires")
        table.add_column("scenario", no_wrap=True)
        for name in RULES:
            table.add_column(name, justify="right")
        for seed, (label, column, shift) in enumerate(scenarios):
            shares = rates(profile, later, shift, column, size, windows, seed=1000 * size + seed)
            table.add_row(label, *(f"{shares[name]:.1%}" for name in RULES))
        console.print(table)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
