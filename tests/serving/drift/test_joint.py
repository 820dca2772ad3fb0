"""The joint test: shifts in how features move together, calibrated inside the family."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serving.drift import DriftMonitor, DriftProfile, DriftReport
from serving.drift.joint import JOINT_NAME, MIN_ROWS
from tests.serving.drift.calibration import upper_tolerance

ALPHA = 0.05
#: Loadings of three hidden factors on 12 features: every feature is well predicted by the others.
LOADINGS = np.random.default_rng(42).normal(size=(3, 12))


def _correlated(rng: np.random.Generator, n: int, noise: float = 0.3) -> np.ndarray:
    return rng.normal(size=(n, 3)) @ LOADINGS + noise * rng.normal(size=(n, LOADINGS.shape[1]))


def _report(profile: DriftProfile, window: np.ndarray) -> DriftReport:
    monitor = DriftMonitor(profile, ALPHA, window=len(window), blocks=1)
    monitor.update(window)
    return monitor.report()


def test_family_false_alarm_rate_with_the_joint_test_is_at_most_alpha() -> None:
    """Windows of 10 rows included; missing values (imputed) in reference and window alike."""
    rng = np.random.default_rng(1)
    trials, alarms = 300, 0
    for trial in range(trials):
        window = (10, 30, 100, 300)[trial % 4]
        reference, rows = _correlated(rng, 300), _correlated(rng, window)
        reference[rng.random(reference.shape) < 0.02] = np.nan
        rows[rng.random(rows.shape) < 0.02] = np.nan
        report = _report(DriftProfile.fit(reference), rows)
        assert report.joint is not None
        alarms += report.drift_detected
    assert alarms / trials <= upper_tolerance(trials, ALPHA)


def test_calibration_uses_rows_the_pca_was_not_fitted_on() -> None:
    """Few reference rows for many features: rows a PCA was fitted on sit much closer to its
    subspace than new rows, so a reference distribution taken from them alarms on nearly every
    clean window. Held-out rows keep the joint test's false alarm rate at its share of alpha."""
    rng = np.random.default_rng(2)
    trials, alarms = 150, 0
    for _ in range(trials):
        reference = _correlated(rng, 60)  # 30 rows fit 12 features' PCA, 30 calibrate
        report = _report(DriftProfile.fit(reference), _correlated(rng, 200))
        alarms += report.joint.drifted
    assert alarms / trials <= upper_tolerance(trials, ALPHA / 13)


def test_a_permuted_column_is_caught_by_the_joint_test_alone() -> None:
    rng = np.random.default_rng(3)
    profile = DriftProfile.fit(_correlated(rng, 2000))
    window = _correlated(rng, 1000)
    window[:, 4] = rng.permutation(window[:, 4])  # every marginal exactly as it was
    report = _report(profile, window)
    assert report.drifted_features == [JOINT_NAME]
    assert report.joint.p_value < 1e-10
    parts = {t.test: t for t in report.joint_parts}
    assert parts["distance"].drifted
    assert report.joint.statistic == parts["distance"].statistic


def test_a_segment_mix_along_a_tight_relation_is_caught_by_its_signed_score() -> None:
    """Two segments on either side of a tight relation (b = a + small noise), mixed 50/50 in the
    reference and 85/15 in the window: the rows' distance from the subspace keeps its
    distribution, the signed score on that relation does not."""
    rng = np.random.default_rng(4)

    def rows(n: int, share: float) -> np.ndarray:
        base = _correlated(rng, n)
        side = np.where(rng.random(n) < share, 1.0, -1.0)
        a = base[:, 0]
        b = a + 0.05 * side * np.abs(rng.normal(size=n))
        return np.column_stack([base, b])

    profile = DriftProfile.fit(rows(2000, 0.5))
    report = _report(profile, rows(1000, 0.85))
    assert report.drifted_features == [JOINT_NAME]
    parts = {t.test: t for t in report.joint_parts}
    assert parts["relation1"].drifted
    assert not parts["distance"].drifted


def test_the_joint_test_is_one_more_test_in_the_family() -> None:
    rng = np.random.default_rng(5)
    reference = _correlated(rng, 500)
    features = reference.shape[1]  # no missing values: only the KS tests can reject
    joint = _report(DriftProfile.fit(reference), _correlated(rng, 100))
    alone = _report(DriftProfile.fit(reference, joint=False), _correlated(rng, 100))
    assert joint.threshold == pytest.approx(ALPHA / (features + 1))
    assert alone.threshold == pytest.approx(ALPHA / features)
    assert alone.joint is None
    assert alone.joint_parts == ()
    entry = joint.joint
    assert entry is not None
    assert (entry.feature, entry.test) == (JOINT_NAME, "joint")
    raw = min(t.p_value for t in joint.joint_parts)
    assert entry.p_value == pytest.approx(min(1.0, len(joint.joint_parts) * raw))
    assert joint.features[JOINT_NAME] == entry


def test_profile_files_without_the_joint_test_still_load(tmp_path: Path) -> None:
    """A profile written before the joint test existed: same format and version, no ``joint``."""
    document = {
        "format": "ml-endpoints/drift-profile",
        "version": 1,
        "rows": 4,
        "features": [
            {"name": "a", "kind": "numeric", "counts": [0, 2, 2, 0], "missing": 0,
             "edges": [0.0, 1.0, 2.000000001]},
            {"name": "b", "kind": "numeric", "counts": [0, 1, 3, 0], "missing": 0,
             "edges": [5.0, 6.0, 7.000000001]},
        ],
        "output": None,
    }  # fmt: skip
    path = tmp_path / "drift_reference.json"
    path.write_text(json.dumps(document))
    profile = DriftProfile.load(path)
    assert profile.joint is None
    report = _report(profile, np.array([[0.5, 5.5], [1.5, 6.5]]))
    assert report.joint is None
    assert {t.test for t in report.tests} == {"ks", "missing"}
    assert profile.to_dict() == {**document, "joint": None}


def test_joint_reference_round_trips_through_the_profile_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    X = _correlated(rng, 400)
    X[::17, 2] = np.nan
    profile = DriftProfile.fit(np.column_stack([X, rng.integers(0, 3, 400)]), categorical=[12])
    path = tmp_path / "drift_reference.json"
    profile.save(path)
    loaded = DriftProfile.load(path)
    assert loaded.to_dict() == profile.to_dict()
    assert loaded.joint is not None
    assert loaded.joint.columns == tuple(range(12))  # the categorical column takes no part
    window = np.column_stack([_correlated(rng, 50), rng.integers(0, 3, 50)])
    assert _report(loaded, window) == _report(profile, window)


def test_malformed_joint_entries_are_refused_precisely(tmp_path: Path) -> None:
    document = DriftProfile.fit(_correlated(np.random.default_rng(7), 100)).to_dict()
    path = tmp_path / "p.json"
    document["joint"]["columns"][0] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="joint: columns must be distinct indices below 12"):
        DriftProfile.load(path)
    document["joint"]["columns"][0] = 0
    document["joint"]["statistics"].pop()
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="joint: need one numeric statistic for the distance"):
        DriftProfile.load(path)
    del document["joint"]["projection"]
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="malformed drift profile: KeyError: 'projection'"):
        DriftProfile.load(path)


@pytest.mark.parametrize(
    ("X", "categorical"),
    [
        (np.random.default_rng(8).normal(size=(MIN_ROWS - 1, 5)), None),  # too few rows
        (np.random.default_rng(9).normal(size=(200, 1)), None),  # one feature
        (np.column_stack([np.arange(200.0), np.ones(200)]), None),  # one varies
        (np.random.default_rng(10).integers(0, 3, (200, 2)).astype(float), [0]),
    ],
)
def test_no_joint_test_where_there_is_nothing_joint_to_test(
    X: np.ndarray, categorical: list[int] | None
) -> None:
    profile = DriftProfile.fit(X, categorical=categorical)
    assert profile.joint is None
    assert _report(profile, X[:5]).joint is None


def test_rows_without_any_value_still_count() -> None:
    rng = np.random.default_rng(11)
    profile = DriftProfile.fit(_correlated(rng, 300))
    window = _correlated(rng, 50)
    window[:10] = np.nan
    report = _report(profile, window)
    assert report.window_rows == 50
    assert report.joint is not None
    assert 0.0 <= report.joint.p_value <= 1.0
