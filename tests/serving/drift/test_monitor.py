"""The monitor's guarantees: calibrated alarms, power, windows, merging, bounded memory."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from serving.drift import DriftMonitor, DriftProfile
from tests.serving.drift.calibration import upper_tolerance

ALPHA = 0.05


def _population(rng: np.random.Generator, n: int) -> np.ndarray:
    """Numeric, discrete, categorical (with a rare category) and partly missing features."""
    X = np.column_stack(
        [
            rng.normal(size=n),
            rng.exponential(size=n),
            rng.poisson(2, n).astype(float),
            rng.choice([0.0, 1.0, 2.0, 3.0], n, p=[0.6, 0.3, 0.09, 0.01]),
            rng.normal(size=n),
        ]
    )
    X[rng.random(n) < 0.05, 4] = np.nan
    return X


def test_false_alarm_rate_on_clean_windows_is_at_most_alpha() -> None:
    """Tiny windows included: no test in the family relies on large-sample approximations."""
    rng = np.random.default_rng(1)
    trials, alarms = 400, 0
    for trial in range(trials):
        window = (10, 20, 50, 100)[trial % 4]
        profile = DriftProfile.fit(_population(rng, 1000), categorical=[3])
        monitor = DriftMonitor(profile, ALPHA, window=window, blocks=1)
        monitor.update(_population(rng, window))
        report = monitor.report()
        assert report.window_rows == window
        alarms += report.drift_detected
    assert alarms / trials <= upper_tolerance(trials, ALPHA)


def test_false_alarm_rate_on_real_data_is_at_most_alpha() -> None:
    X = load_breast_cancer().data
    rng = np.random.default_rng(7)
    trials, alarms = 150, 0
    for _ in range(trials):
        profile = DriftProfile.fit(X[rng.integers(0, len(X), len(X))])
        monitor = DriftMonitor(profile, window=20, blocks=1)
        monitor.update(X[rng.integers(0, len(X), 20)])
        alarms += monitor.report().drift_detected
    assert alarms / trials <= upper_tolerance(trials, ALPHA)


def test_obvious_shifts_are_detected_and_located() -> None:
    rng = np.random.default_rng(3)
    profile = DriftProfile.fit(_population(rng, 2000), ["n", "e", "p", "c", "m"], [3])
    window = _population(rng, 500)
    window[:, 0] += 1.0
    monitor = DriftMonitor(profile, window=500)
    monitor.update(window)
    report = monitor.report()
    assert report.drift_detected
    assert report.drifted_features == ["n"]
    assert report.features["n"].p_value < 1e-10
    assert report.features["n"].effect_size > 0.2
    assert report.features["e"].p_value > report.threshold


def test_values_beyond_the_training_range_get_bins_of_their_own() -> None:
    """Integer data with many ties at its extremes (like pixel intensities)."""
    from serving.drift.counts import Binner

    X = np.random.default_rng(13).integers(0, 17, (2000, 1)).astype(float)
    binner = Binner(DriftProfile.fit(X))
    slots = [
        int(np.flatnonzero(binner.count(np.array([[v]])).matrix[0])[0]) for v in (-1, 0, 16, 32)
    ]
    assert len(set(slots)) == 4  # below min, min, max and above max are all told apart


def test_unseen_category_is_detected() -> None:
    rng = np.random.default_rng(4)
    profile = DriftProfile.fit(_population(rng, 2000), categorical=[3])
    window = _population(rng, 200)
    window[:20, 3] = 7.0  # a category never seen in training
    monitor = DriftMonitor(profile, window=200)
    monitor.update(window)
    result = monitor.report().features["f3"]
    assert result.test == "categories"
    assert result.drifted
    assert result.effect_size == pytest.approx(0.1, abs=0.02)


def test_missing_rate_change_is_detected_by_its_own_test() -> None:
    rng = np.random.default_rng(5)
    profile = DriftProfile.fit(_population(rng, 2000), categorical=[3])
    window = _population(rng, 300)
    window[:90, 1] = np.nan  # 30 % missing where training had none
    monitor = DriftMonitor(profile, window=300)
    monitor.update(window)
    report = monitor.report()
    missing = next(t for t in report.tests if t.feature == "f1" and t.test == "missing")
    assert missing.drifted
    assert missing.statistic == pytest.approx(0.3)
    assert not report.features["f1"].drifted  # the values that are present did not move


def test_output_drift_is_tested() -> None:
    rng = np.random.default_rng(6)
    X = _population(rng, 2000)
    profile = DriftProfile.fit(X, outputs=(X[:, 0] > 0).astype(int))
    monitor = DriftMonitor(profile, window=300)
    window = _population(rng, 300)
    monitor.update(window, np.ones(300, dtype=int))  # the model now always says 1
    assert "__prediction__" in monitor.report().drifted_features


def test_merged_counts_equal_one_monitor_on_all_rows() -> None:
    rng = np.random.default_rng(8)
    profile = DriftProfile.fit(_population(rng, 1000), categorical=[3])
    a, b, both = (DriftMonitor(profile, window=10_000) for _ in range(3))
    x1, x2 = _population(rng, 300), _population(rng, 200)
    a.update(x1)
    b.update(x2)
    both.update(np.vstack([x1, x2]))
    a.merge(b.snapshot())
    assert a.report() == both.report()
    assert a.snapshot().rows == 500


def test_counts_travel_between_replicas_as_json() -> None:
    from serving.drift import WindowCounts

    rng = np.random.default_rng(9)
    profile = DriftProfile.fit(_population(rng, 500), categorical=[3])
    monitor = DriftMonitor(profile)
    monitor.update(_population(rng, 50))
    shipped = json.loads(json.dumps(monitor.snapshot().to_dict()))
    other = DriftMonitor(profile)
    other.merge(WindowCounts.from_dict(shipped))
    assert other.report() == monitor.report()


def test_row_windows_roll_in_blocks() -> None:
    rng = np.random.default_rng(10)
    profile = DriftProfile.fit(_population(rng, 500), categorical=[3])
    monitor = DriftMonitor(profile, window=100, blocks=10)
    monitor.update(_population(rng, 95))
    assert monitor.report().window_rows == 95
    monitor.update(_population(rng, 1000))
    assert monitor.report().window_rows == 95  # 9 full blocks + 5 rows of the current one
    monitor.update(_population(rng, 5))
    assert monitor.report().window_rows == 100  # 10 full blocks


def test_time_windows_forget_old_blocks() -> None:
    now = [0.0]
    rng = np.random.default_rng(11)
    profile = DriftProfile.fit(_population(rng, 500), categorical=[3])
    monitor = DriftMonitor(profile, window=timedelta(seconds=60), blocks=6, clock=lambda: now[0])
    for _ in range(12):  # one batch of 10 rows every 10 s for two minutes
        monitor.update(_population(rng, 10))
        now[0] += 10.0
    assert 50 <= monitor.report().window_rows <= 60
    now[0] += 120.0
    assert monitor.report().window_rows == 0


def test_memory_does_not_depend_on_window_size_or_rows_seen() -> None:
    X = load_breast_cancer().data  # 30 features
    profile = DriftProfile.fit(X)
    small, large = DriftMonitor(profile, window=100), DriftMonitor(profile, window=10**9)
    before = large.nbytes
    for _ in range(5):
        small.update(X)
        large.update(X)
    assert small.nbytes == large.nbytes == before
    assert large.nbytes < 1_000_000


def test_report_serialises_to_json() -> None:
    rng = np.random.default_rng(12)
    monitor = DriftMonitor(DriftProfile.fit(_population(rng, 500), categorical=[3]))
    monitor.update(_population(rng, 40))
    document = json.loads(json.dumps(monitor.report().to_dict()))
    assert document["window_rows"] == 40
    assert document["alpha"] == ALPHA
    assert {t["test"] for t in document["tests"]} == {"ks", "categories", "missing", "joint"}
    # 4 numeric features: the principal subspace leaves room for one tight relation
    assert [t["test"] for t in document["joint_parts"]] == ["distance", "relation1"]
    assert set(document["tests"][0]) == {
        "feature",
        "test",
        "statistic",
        "p_value",
        "effect_size",
        "drifted",
    }


def test_rows_of_the_wrong_width_are_refused() -> None:
    monitor = DriftMonitor(DriftProfile.fit(np.zeros((10, 3))))
    with pytest.raises(ValueError, match="expected rows with 3 features"):
        monitor.update(np.zeros((2, 4)))
