"""Drift benchmark: false alarms, detection power and costs of ``serving.drift``.

Every trial draws a reference sample and an independent window from the same population (the
data set's rows, with replacement), so "no drift" holds exactly, then shifts the window. The
baseline is alibi-detect's ``KSDrift`` (per-feature exact two-sample KS on raw rows, Bonferroni);
scipy's ``ks_2samp`` with the same threshold makes the same decisions, so that is what runs here.

    python -m bench.drift.run              # the full benchmark (~10 min on 2 cores)
    python -m bench.drift.run --quick      # 20 trials per cell, a smoke test
    python -m bench.drift.run --costs      # only the cost measurements
"""

from __future__ import annotations

import argparse
import math
import os
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import numpy as np
from scipy.stats import ks_2samp
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

from serving.drift import DriftMonitor, DriftProfile
from serving.drift.counts import Binner
from serving.drift.report import evaluate

ALPHA = 0.05
WINDOWS = (10, 20, 50, 100, 200, 500, 1000)
SCENARIOS = (
    "control",
    "noise_small",
    "noise_medium",
    "noise_large",
    "knockout",
    "rescale",
    "label_shift",
)
#: Gaussian noise std as a multiple of each feature's std, on half of the features.
NOISE = {"noise_small": 0.5, "noise_medium": 1.0, "noise_large": 2.0}
RESCALE = 2.0
LOADERS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "digits": lambda: load_digits(return_X_y=True),
}


@dataclass(frozen=True)
class Cell:
    dataset: str
    scenario: str
    window: int
    trials: int
    seed: int


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    ours: int
    ksdrift: int
    classic: int


def shifted_window(
    rng: np.random.Generator, X: np.ndarray, y: np.ndarray, scenario: str, n: int
) -> np.ndarray:
    """A window of ``n`` rows from the population, shifted as ``scenario`` says."""
    if scenario == "label_shift":
        # Class 0's prior is doubled (others scaled down to fit): a label shift, no x|y change.
        classes, counts = np.unique(y, return_counts=True)
        prior = counts / counts.sum()
        prior[0] *= 2.0
        prior[1:] *= (1.0 - prior[0]) / prior[1:].sum()
        picked = rng.choice(classes, size=n, p=prior)
        rows = np.empty(n, dtype=np.intp)
        for c in classes:
            members = np.flatnonzero(y == c)
            where = picked == c
            rows[where] = rng.choice(members, size=int(where.sum()))
        return X[rows].copy()
    window = X[rng.integers(0, len(X), n)].copy()
    std = X.std(axis=0)
    varying = np.flatnonzero(std > 0)
    if scenario in NOISE:
        subset = rng.choice(varying, size=math.ceil(len(varying) / 2), replace=False)
        window[:, subset] += rng.normal(size=(n, len(subset))) * (NOISE[scenario] * std[subset])
    elif scenario == "knockout":
        window[:, rng.choice(varying)] = 0.0
    elif scenario == "rescale":
        window[:, rng.choice(varying)] *= RESCALE
    return window


def largest_ks_gap(reference: np.ndarray, window: np.ndarray) -> int:
    """The feature with the largest raw two-sample KS statistic (= the smallest p-value)."""
    ref_sorted = np.sort(reference, axis=0)
    win_sorted = np.sort(window, axis=0)
    n, m = window.shape[0], reference.shape[0]
    best, best_gap = 0, -1.0
    for j in range(reference.shape[1]):
        pooled = np.concatenate([ref_sorted[:, j], win_sorted[:, j]])
        gap = np.abs(
            np.searchsorted(ref_sorted[:, j], pooled, side="right") / m
            - np.searchsorted(win_sorted[:, j], pooled, side="right") / n
        ).max()
        if gap > best_gap:
            best, best_gap = j, gap
    return best


def run_cell(cell: Cell) -> CellResult:
    X, y = LOADERS[cell.dataset]()
    X = X.astype(np.float64)
    rng = np.random.default_rng(cell.seed)
    ours = ksdrift = classic = 0
    for _ in range(cell.trials):
        reference = X[rng.integers(0, len(X), len(X))]
        window = shifted_window(rng, X, y, cell.scenario, cell.window)
        profile = DriftProfile.fit(reference)
        binner = Binner(profile)
        report = evaluate(profile, binner.reference(), binner.count(window), ALPHA)
        ours += report.drift_detected
        j = largest_ks_gap(reference, window)
        p_min = float(ks_2samp(reference[:, j], window[:, j]).pvalue)
        ksdrift += p_min < ALPHA / X.shape[1]
        classic += p_min < ALPHA
    return CellResult(cell, ours, ksdrift, classic)


def cells(trials: int, control_trials: int) -> list[Cell]:
    out = []
    for d, dataset in enumerate(LOADERS):
        for s, scenario in enumerate(SCENARIOS):
            for w, window in enumerate(WINDOWS):
                n = control_trials if scenario == "control" else trials
                out.append(Cell(dataset, scenario, window, n, 10_000 * d + 100 * s + w))
    return out


def _rate(k: int, n: int) -> str:
    return f"{k / n:.2f}"


def accuracy_tables(results: list[CellResult]) -> str:
    by = {(r.cell.dataset, r.cell.scenario, r.cell.window): r for r in results}
    lines = []
    header = "| data set | scenario | " + " | ".join(f"n={w}" for w in WINDOWS) + " |"
    rule = "|---|---|" + "---|" * len(WINDOWS)
    lines += ["### False alarm rate on clean windows (control)", ""]
    lines += [
        "ours / KSDrift-Bonferroni / classic per-feature ks_2samp without correction",
        "",
        header,
        rule,
    ]
    for dataset in LOADERS:
        cols = []
        for w in WINDOWS:
            r = by[(dataset, "control", w)]
            n = r.cell.trials
            cols.append(f"{_rate(r.ours, n)} / {_rate(r.ksdrift, n)} / {_rate(r.classic, n)}")
        lines.append(f"| {dataset} | control | " + " | ".join(cols) + " |")
    lines += ["", "### Detection rate under shift", ""]
    lines += ["ours / KSDrift-Bonferroni; `*` = ours below baseline by more than 2 SE", ""]
    lines += [header, rule]
    big: list[float] = []
    worst = 0.0
    for dataset in LOADERS:
        for scenario in SCENARIOS[1:]:
            cols = []
            for w in WINDOWS:
                r = by[(dataset, scenario, w)]
                n = r.cell.trials
                diff = (r.ksdrift - r.ours) / n
                se = math.sqrt(max(r.ours / n * (1 - r.ours / n) * 2, 1 / n) / n)
                worst = max(worst, diff / se if se else 0.0)
                flag = "*" if diff > 2 * se else ""
                cols.append(f"{_rate(r.ours, n)} / {_rate(r.ksdrift, n)}{flag}")
                if w >= 500:
                    big.append(r.ours / n)
            lines.append(f"| {dataset} | {scenario} | " + " | ".join(cols) + " |")
    lines += [
        "",
        f"Mean detection rate over every shifted cell with windows >= 500 rows: "
        f"**{np.mean(big):.3f}** ({len(big)} cells).",
    ]
    return "\n".join(lines)


def _best_seconds(action: Callable[[], object], repeats: int, rounds: int = 5) -> float:
    """Best (least disturbed) time per call over a few rounds."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            action()
        best = min(best, (time.perf_counter() - started) / repeats)
    return best


def cost_table() -> str:
    X, _ = load_breast_cancer(return_X_y=True)  # 30 features
    profile = DriftProfile.fit(X)
    rng = np.random.default_rng(0)
    lines = ["### Costs (breast_cancer, 30 features, one core, best of 5 rounds)", ""]
    lines += ["| measure | value |", "|---|---|"]
    for batch in (1, 16, 64, 1000):
        monitor = DriftMonitor(profile, window=1000)
        rows = X[rng.integers(0, len(X), batch)]
        seconds = _best_seconds(partial(monitor.update, rows), max(20, 4000 // batch))
        lines.append(f"| update, batches of {batch} rows | {seconds / batch * 1e6:.2f} us/row |")
    monitor = DriftMonitor(profile, window=1000)
    monitor.update(X[rng.integers(0, len(X), 1000)])
    seconds = _best_seconds(monitor.report, 200)
    lines.append(f"| report, 1000-row window | {seconds * 1e3:.3f} ms |")
    for window in (100, 1_000_000, timedelta(hours=1)):
        tracemalloc.start()
        monitor = DriftMonitor(profile, window=window)
        for _ in range(20):
            monitor.update(X[rng.integers(0, len(X), 500)])
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        lines.append(
            f"| memory, window={window} (10,000 rows seen) | {current / 1024:.0f} KiB traced, "
            f"{monitor.nbytes / 1024:.0f} KiB of counts at most |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trials per shifted cell")
    parser.add_argument("--control-trials", type=int, default=400, help="trials per clean cell")
    parser.add_argument("--quick", action="store_true", help="20 trials per cell")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--costs", action="store_true", help="only the cost measurements")
    args = parser.parse_args()
    if args.costs:
        print(cost_table())
        return
    trials, control = (20, 20) if args.quick else (args.trials, args.control_trials)
    started = time.perf_counter()
    todo = sorted(cells(trials, control), key=lambda c: -c.window * c.trials)
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_cell, todo, chunksize=1))
    print(accuracy_tables(results))
    print()
    print(cost_table())
    print(f"\n_{time.perf_counter() - started:.0f} s on {args.jobs} processes._")


if __name__ == "__main__":
    main()
