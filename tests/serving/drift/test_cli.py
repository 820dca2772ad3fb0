"""``ml-endpoints profile`` on CSV, .npy and Parquet files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.cli import main
from serving.drift import DriftProfile

NAMES = ["height", "weight", "colour"]


@pytest.fixture
def rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(170, 10, 200), rng.normal(70, 5, 200), rng.integers(0, 3, 200)])
    X[::10, 1] = np.nan
    return X


def _check(out: Path, rows: np.ndarray, names: list[str]) -> DriftProfile:
    profile = DriftProfile.load(out)
    assert profile.rows == rows.shape[0]
    assert profile.feature_names == names
    assert profile.features[1].missing == 20
    assert profile.features[2].kind == "categorical"
    return profile


def test_csv_with_header(
    tmp_path: Path, rows: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.csv"
    lines = [",".join(NAMES)] + [
        ",".join("" if v != v else repr(v) for v in r) for r in rows.tolist()
    ]
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "drift_reference.json"
    assert main(["profile", str(data), "--out", str(out), "--categorical", "colour"]) == 0
    _check(out, rows, NAMES)
    assert "profiled 200 rows x 3 features" in capsys.readouterr().out


def test_npy_with_names_and_index(tmp_path: Path, rows: np.ndarray) -> None:
    data = tmp_path / "train.npy"
    np.save(data, rows)
    out = tmp_path / "p.json"
    args = ["profile", str(data), "--out", str(out), "--feature-names", ",".join(NAMES)]
    assert main([*args, "--categorical", "2"]) == 0
    _check(out, rows, NAMES)


def test_parquet(tmp_path: Path, rows: np.ndarray) -> None:
    data = tmp_path / "train.parquet"
    pq.write_table(pa.table({n: rows[:, j] for j, n in enumerate(NAMES)}), data)
    out = tmp_path / "p.json"
    assert main(["profile", str(data), "--out", str(out), "--categorical", "colour"]) == 0
    _check(out, rows, NAMES)


def test_joint_reference_is_profiled_unless_left_out(
    tmp_path: Path, rows: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.npy"
    np.save(data, rows)
    out = tmp_path / "p.json"
    assert main(["profile", str(data), "--out", str(out), "--categorical", "2"]) == 0
    joint = DriftProfile.load(out).joint
    assert joint is not None
    assert joint.columns == (0, 1)  # the numeric features; the categorical one takes no part
    assert (
        "joint test on 2 numeric features (PCA fitted on 100 rows, calibrated on the other "
        "100)" in capsys.readouterr().out
    )
    assert main(["profile", str(data), "--out", str(out), "--no-joint"]) == 0
    assert DriftProfile.load(out).joint is None
    assert "; no joint test ->" in capsys.readouterr().out


def test_model_outputs_are_profiled(tmp_path: Path, demo_model_dir: Path) -> None:
    from serving.demo import demo_data

    X, _, _ = demo_data()
    data = tmp_path / "train.npy"
    np.save(data, X)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(demo_model_dir / "model.joblib", model_dir)
    out = tmp_path / "p.json"
    assert main(["profile", str(data), "--out", str(out), "--model", str(model_dir)]) == 0
    output = DriftProfile.load(out).output
    assert output is not None
    assert output.kind == "categorical"
    assert output.categories == (0.0, 1.0)
    assert sum(output.counts) == X.shape[0]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "x,y\n1,red\n2,blue\n", "column 'y' is string, not numeric"),
        ("a.txt", "1,2\n", "unsupported file type '.txt'"),
        ("missing.npy", None, "No such file"),
    ],
)
def test_errors_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None, message: str
) -> None:
    data = tmp_path / name
    if content is not None:
        data.write_text(content)
    assert main(["profile", str(data), "--out", str(tmp_path / "p.json")]) == 2
    assert message in capsys.readouterr().err
