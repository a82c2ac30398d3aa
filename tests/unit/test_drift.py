"""Reference profiles (``contract.profile``) and drift against them (``contract.drift``): the profile of a known
frame, its JSON round trip, the statistics' values, the alarm rule's false and missed alarms on the fraud
generator's rows, and a registered version that carries its profile in a real MLflow registry."""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from contract.drift import (
    WindowCounts,
    column_drift,
    compare,
    prediction_drift,
    reference_counts,
    window_counts,
    window_drift,
)
from contract.profile import (
    ARTIFACT_PATH,
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileError,
    build_profile,
    categorical_profile,
    independent_draws,
    numeric_profile,
)
from contract.registry import load
from contract.shift import psi
from monitoring.alert_rules import SHIPPED_THRESHOLDS as T
from monitoring.stats import drift
from pipelines.training.registration import load_profile


def test_a_numeric_profile_of_known_values() -> None:
    profile = numeric_profile([0, 0, 0, 0, 1, 1, 2, 3, None, 5, 0, float("nan")], bins=4)
    # Quartiles of the ten values by inverted CDF (values, not interpolations): 0, 0, 2; bins up to 0, to 2, above.
    assert profile == NumericProfile(12, 2, 0.0, 5.0, (0.0, 2.0), (5, 3, 2))
    assert profile.null_rate == pytest.approx(2 / 12)
    assert list(profile.bin_of([-1, 0, 0.5, 1, 1.5, 2, 99])) == [0, 0, 1, 1, 1, 1, 2]
    uniform = numeric_profile(np.arange(1000), bins=10)
    assert uniform.counts == (100,) * 10 and uniform.edges[0] == 99.0
    empty = numeric_profile([None, None])
    assert (empty.minimum, empty.edges, empty.counts, empty.null_rate) == (None, (), (0,), 1.0)


def test_a_categorical_profile_counts_categories_as_text_and_lists_known_ones() -> None:
    profile = categorical_profile(["pos", "online", "pos", None, True], known=("pos", "online", "never"))
    assert profile == CategoricalProfile(5, 1, {"pos": 2, "online": 1, "never": 0, "True": 1})


def _fraud_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Generated fraud transactions, with the raw features the training join would add (values made up)."""
    events = load("fraud").generate(10 * n, 1_764_000_000_000, seed)  # as many as the first n transactions need
    rows = pd.DataFrame(islice((e for e in events if e["kind"] == "transaction"), n))
    rng = np.random.default_rng(seed)
    for ref in load("fraud").feature_refs():
        rows[ref.replace(":", "__")] = np.where(rng.random(n) < 0.1, np.nan, rng.poisson(3, n).astype(float))
    return rows


def test_the_holdouts_own_share_outside_the_training_range_is_the_quality_baseline() -> None:
    """A window maximum of a heavy tail exceeds any training sample's now and then: the holdout (rows the model never
    fit) shows how often, and a served window is judged on what it shows beyond that."""
    fraud = load("fraud")
    training, holdout = _fraud_rows(2000, seed=1), _fraud_rows(1000, seed=2)
    holdout.loc[holdout.index[-80:], "amount"] = 10_000.0  # a tail longer than training's, in 8% of the holdout
    holdout.loc[holdout.index[:100], "channel"] = "atm"  # a category training never saw, in 10% of the holdout
    profile = Profile.from_json(build_profile(fraud, training, np.linspace(0, 1, 500), holdout=holdout).to_json())
    amount, channel = profile.columns["amount"], profile.columns["channel"]
    assert isinstance(amount, NumericProfile) and isinstance(channel, CategoricalProfile)
    assert amount.maximum is not None
    expected = float((holdout["amount"] > amount.maximum).mean() + (holdout["amount"] < amount.minimum).mean())
    assert amount.holdout_out_of_range == pytest.approx(expected) and 0.08 <= expected < 0.09
    assert channel.holdout_unseen == pytest.approx(0.1)
    served = compare(amount, window_counts(amount, holdout["amount"]))
    assert served.out_of_range_rate == pytest.approx(expected), "as often out of range as the holdout: no excess"
    assert served.reference_out_of_range_rate == pytest.approx(expected)
    assert compare(channel, window_counts(channel, holdout["channel"])).reference_unseen_rate == pytest.approx(0.1)
    plain = build_profile(fraud, training, np.linspace(0, 1, 500)).columns["amount"]
    assert isinstance(plain, NumericProfile) and plain.holdout_out_of_range == 0.0, "no holdout: the bare threshold"


def test_a_components_profile_covers_request_fields_features_and_predictions_and_survives_json() -> None:
    fraud = load("fraud")
    rows = _fraud_rows(2000)
    profile = build_profile(fraud, rows, np.linspace(0, 1, 500))
    assert profile.request_fields == ("transaction_id", "amount", "channel") and len(profile.features) == 12
    assert "identifier" in profile.skipped["transaction_id"], "an id is sent with each request, but not profiled"
    assert list(profile.columns) == ["amount", "channel", *profile.features]
    assert isinstance(profile.columns["amount"], NumericProfile) and len(profile.columns["amount"].counts) == 10
    channel = profile.columns["channel"]
    assert isinstance(channel, CategoricalProfile) and set(channel.categories) == {"online", "pos"}
    assert profile.columns["card_10m__event_count"].null_rate == pytest.approx(0.1, abs=0.03)
    assert isinstance(profile.predictions, NumericProfile) and sum(profile.predictions.counts) == 500
    assert Profile.from_json(profile.to_json()) == profile

    delivery = load("delivery")
    joined = pd.DataFrame({"order_id": [f"o{i}" for i in range(300)], "distance_km": 1.0, "basket_value": 20.0})
    for ref in delivery.feature_refs():
        joined[ref.replace(":", "__")] = 1.0
    scores = np.tile([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], (150, 1))
    classes = build_profile(delivery, joined, scores)
    assert "order_id" not in classes.columns and "identifier" in classes.skipped["order_id"]
    assert classes.predictions == CategoricalProfile(300, 0, {"on_time": 150, "late": 150, "very_late": 0})
    assert prediction_drift(classes, scores[:100]).p_value > 0.5
    assert prediction_drift(classes, ["very_late"] * 100).drifted(T.drift_psi, T.drift_pvalue)


def test_bad_profiles_and_windows_are_named() -> None:
    with pytest.raises(ProfileError, match="lacks card_10m__event_count"):
        build_profile(load("fraud"), _fraud_rows(50).drop(columns=["card_10m__event_count"]), np.zeros(3))
    text = Profile("x", "binary", {}, numeric_profile([1.0])).to_json().replace('"format": 1', '"format": 9')
    with pytest.raises(ProfileError, match="format 9"):
        Profile.from_json(text)
    with pytest.raises(ValueError, match="column 'amount' is numeric"):
        column_drift(numeric_profile([1.0, 2.0]), ["12", "a lot"], "amount")


def test_statistics_of_a_window_against_its_reference() -> None:
    reference = numeric_profile(np.arange(1000), bins=10)
    same = column_drift(reference, np.arange(0, 1000, 5))
    assert same.psi == 0.0 and same.p_value == pytest.approx(1.0) and same.out_of_range_rate == 0.0
    window = [*range(900, 1000), *([5000.0] * 50), *([None] * 50)]
    shifted = column_drift(reference, window)
    # 150 values, all in the top bin (the last is open above): PSI of one bin against ten, less the noise term.
    shares = [(0.1, 1e-4)] * 9 + [(0.1, 1.0)]
    expected = sum((b - a) * math.log(b / a) for a, b in shares) - 9 * (1 / 1000 + 1 / 150)
    assert shifted.psi == pytest.approx(expected) and shifted.p_value < 1e-10
    assert (shifted.null_rate, shifted.reference_null_rate, shifted.out_of_range_rate) == (0.25, 0.0, 50 / 150)

    channel = categorical_profile(["pos"] * 650 + ["online"] * 350)
    unseen = column_drift(channel, ["pos"] * 60 + ["online"] * 30 + ["teleport"] * 10)
    assert unseen.unseen == ("teleport",) and unseen.unseen_rate == pytest.approx(0.1)
    assert unseen.psi > 0.5 and unseen.p_value < 1e-6 and math.isnan(unseen.out_of_range_rate)
    assert psi([650, 350, 0], [60, 30, 10]) == pytest.approx(unseen.psi)

    halves = window_counts(channel, ["pos", "teleport"]) + window_counts(channel, ["online", None])
    assert halves == WindowCounts(4, 1, {"pos": 1, "teleport": 1, "online": 1})
    assert compare(channel, halves).unseen_rate == pytest.approx(1 / 3)
    frame = pd.DataFrame({"channel": ["pos", "online"], "other": [1, 2]})
    assert set(window_drift(Profile("x", "binary", {"channel": channel}, reference), frame)) == {"channel"}


def _alarm_rate(reference: pd.DataFrame, pool: pd.DataFrame, column: str, size: int, shift: float, seed: int) -> float:
    profile = (numeric_profile if column == "amount" else categorical_profile)(reference[column])
    rng = np.random.default_rng(seed)
    fired = 0
    for _ in range(200):
        window = pool[column].iloc[rng.choice(len(pool), size, replace=False)]
        if column == "amount":
            window = window + shift * reference[column].std()
        elif shift:
            window = window.where(rng.random(size) >= shift, "online")  # pos -> online: online share rises
        fired += column_drift(profile, window).drifted(T.drift_psi, T.drift_pvalue)
    return fired / 200


@pytest.mark.parametrize("size", [100, 300])
def test_the_drift_rule_rarely_fires_on_stationary_windows_and_catches_a_clear_shift(size: int) -> None:
    """The fraud generator's rows: a profile of the first 10,000, windows from the next 10,000."""
    rows = _fraud_rows(20_000, seed=3)[["amount", "channel"]]
    reference, later = rows.iloc[:10_000], rows.iloc[10_000:]
    for column in ("amount", "channel"):
        assert _alarm_rate(reference, later, column, size, 0.0, seed=size) <= 0.03, column
    assert _alarm_rate(reference, later, "amount", size, 0.5, seed=size) >= 0.95
    # Half of the pos transactions moved online: 35% -> 68% online.
    assert _alarm_rate(reference, later, "channel", size, 0.5, seed=size) >= 0.95


MERCHANT_SUM = "merchant_1h__amount_sum"
HOUR_MS = 3_600_000


def _merchant_hour(rng: np.random.Generator, hour: int, minutes: int, mu: float = 7.0) -> pd.DataFrame:
    """450 transactions a minute over 60 merchants, each reading its merchant's one-hour sum, one state per merchant
    that hour (lognormal: a few busy merchants, many quiet ones)."""
    n = 450 * minutes
    merchant = rng.integers(0, 60, n)
    level = rng.lognormal(mu, 0.8, 60)
    times = hour * HOUR_MS + np.sort(rng.integers(0, minutes * 60_000, n))
    return pd.DataFrame(
        {
            "merchant_id": [f"m-{m:03d}" for m in merchant],
            "event_timestamp": pd.to_datetime(times, unit="ms", utc=True),
            MERCHANT_SUM: level[merchant],
        }
    )


def test_a_windowed_features_reference_counts_its_entities_states_not_its_rows() -> None:
    """Eleven minutes of transactions read 60 merchants' one-hour sums, one state each: 60 draws, not 4,950 rows;
    counted as the monitor counts a served window (``independent_draws``)."""
    rows = _fraud_rows(4950, seed=4)
    hour = _merchant_hour(np.random.default_rng(4), hour=10, minutes=11)
    rows[["merchant_id", "event_timestamp", MERCHANT_SUM]] = hour[["merchant_id", "event_timestamp", MERCHANT_SUM]]
    profile = Profile.from_json(build_profile(load("fraud"), rows, np.linspace(0, 1, 500)).to_json())
    merchants = profile.columns[MERCHANT_SUM]
    assert isinstance(merchants, NumericProfile)
    assert merchants.independent_share == pytest.approx(hour["merchant_id"].nunique() / 4950)
    amount = profile.columns["amount"]
    assert isinstance(amount, NumericProfile) and amount.independent_share == 1.0, "a request field: every row"
    expected = reference_counts(merchants)
    assert sum(expected.values()) == pytest.approx(60) and set(expected) == {str(i) for i in range(10)}
    assert independent_draws([("m-1", 0, 5.0), ("m-1", 0, 5.0), ("m-1", 1, 6.0), ("m-2", 0, 1.0)]) == 3


def _merchant_alarm_rate(share_counted: bool, mu: float) -> float:
    """Alarms over 200 pairs of hours: a profile of 11 minutes of one hour, a 5-minute window of another whose
    merchants' states are drawn afresh (at ``mu``; 7.0: the same world)."""
    fired = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        training, served = _merchant_hour(rng, 10, 11), _merchant_hour(rng, 12, 5, mu)
        profile = numeric_profile(training[MERCHANT_SUM])
        if share_counted:
            states = zip(training["merchant_id"], [0] * len(training), training[MERCHANT_SUM], strict=True)
            draws = independent_draws(states)
            profile = replace(profile, independent_share=draws / len(training))
        counts = window_counts(profile, served[MERCHANT_SUM])
        share = served["merchant_id"].nunique() / len(served)  # the monitor's observations: a state per merchant
        fired += drift(profile, counts, counts, share).drifted(T.drift_psi, T.drift_pvalue)
    return fired / 200


def test_the_drift_rule_on_merchant_states_is_quiet_without_a_change_and_catches_one() -> None:
    """Counting every training row as a draw made a fresh hour of the same 60 merchants look drifted a third of the
    time (a control run's PSI 0.33); counting their states, it rarely does, and still catches a clear change."""
    assert _merchant_alarm_rate(share_counted=False, mu=7.0) >= 0.2
    assert _merchant_alarm_rate(share_counted=True, mu=7.0) <= 0.02
    assert _merchant_alarm_rate(share_counted=True, mu=8.0) >= 0.95  # every merchant's hour 2.7 times as busy


def test_a_registered_version_carries_its_profile(registry: MlflowClient, tmp_path: Path) -> None:
    uri = registry.tracking_uri
    experiment = registry.create_experiment("profiles", artifact_location=str(tmp_path / "artifacts"))
    run = registry.create_run(experiment)
    profile = build_profile(load("fraud"), _fraud_rows(500), np.linspace(0, 1, 100))
    registry.log_text(run.info.run_id, profile.to_json(), ARTIFACT_PATH)
    version = registry.create_model_version("fraud", source=str(tmp_path), run_id=run.info.run_id)
    assert load_profile(uri, "fraud", version.version) == profile
    with pytest.raises(ProfileError, match="fraud v1 points to no training run"):
        load_profile(uri, "fraud", "1")
    bare = registry.create_model_version(
        "fraud", source=str(tmp_path), run_id=registry.create_run(experiment).info.run_id
    )
    with pytest.raises(ProfileError, match=f"fraud v{bare.version}: run .* has no {ARTIFACT_PATH}"):
        load_profile(uri, "fraud", bare.version)
