"""``ml-endpoints profile``: fit a drift reference profile from training data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # NumPy loads only when the command runs: `ml-endpoints serve` stays fast
    import numpy as np

SUFFIXES = (".csv", ".npy", ".parquet", ".pq")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``profile`` subcommand."""
    parser = subparsers.add_parser(
        "profile",
        help="fit a drift reference profile (drift_reference.json) from training data",
        description="Profile training data for drift monitoring. Put the output next to the "
        "model as drift_reference.json and the server monitors drift by itself.",
    )
    parser.add_argument("data", type=Path, help="training rows: .csv (with header), .npy, .parquet")
    parser.add_argument("--out", type=Path, default=Path("drift_reference.json"))
    parser.add_argument(
        "--feature-names", help="comma-separated names (default: the header, else f0, f1, ...)"
    )
    parser.add_argument(
        "--categorical", help="comma-separated categorical columns, by name or 0-based index"
    )
    parser.add_argument(
        "--model", type=Path, help="model file or directory: also profile its predictions"
    )
    parser.add_argument("--max-bins", type=int, help="quantile bins per feature (default 256)")
    parser.add_argument(
        "--no-joint",
        action="store_true",
        help="leave out the joint test's reference (how the numeric features move together)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``profile``; returns the exit code."""
    from serving.drift.profile import MAX_BINS, DriftProfile

    try:
        rows, header = read_rows(args.data)
        names = _split(args.feature_names) or header
        outputs = None
        if args.model is not None:
            from serving.models.loader import load_model

            outputs = load_model(args.model).predict(rows).outputs
        profile = DriftProfile.fit(
            rows,
            names,
            _split(args.categorical),
            outputs=outputs,
            max_bins=args.max_bins or MAX_BINS,
            joint=not args.no_joint,
        )
    except (OSError, ValueError) as exc:
        print(f"ml-endpoints profile: {exc}", file=sys.stderr)
        return 2
    profile.save(args.out)
    what = " and the model's outputs" if profile.output is not None else ""
    joint = (
        f"; joint test on {len(profile.joint.columns)} numeric features "
        f"(PCA fitted on {profile.joint.fitted_rows} rows, calibrated on the other "
        f"{profile.rows - profile.joint.fitted_rows})"
        if profile.joint is not None
        else "; no joint test"
    )
    print(
        f"profiled {profile.rows} rows x {profile.n_features} features{what}{joint} -> {args.out}"
    )
    return 0


def read_rows(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """The rows of a .npy, .csv or Parquet file as floats, and the column names if it has any."""
    import numpy as np

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {SUFFIXES}")
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim != 2:
            raise ValueError(f"{path}: expected a 2-D array, got shape {array.shape}")
        return _floats(array, str(path)), None
    try:
        import pyarrow.compute as pc
        from pyarrow import csv, parquet
    except ImportError:
        raise ValueError(
            f"reading {suffix} files needs pyarrow: pip install 'ml-endpoints[drift]'"
        ) from None
    table = csv.read_csv(path) if suffix == ".csv" else parquet.read_table(path)
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        try:
            columns.append(pc.cast(column, "float64").to_numpy(zero_copy_only=False))
        except Exception:
            raise ValueError(
                f"{path}: column {name!r} is {column.type}, not numeric; encode it as the "
                "numbers the model receives"
            ) from None
    return np.column_stack(columns), [str(n) for n in table.column_names]


def _floats(array: np.ndarray, where: str) -> np.ndarray:
    import numpy as np

    try:
        return array.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: values are {array.dtype}, not numbers") from None


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None
