"""Drift benchmark: false alarms, detection power and costs of ``serving.drift``.

Every trial draws a reference sample and an independent window from the same population (the
data set's rows, with replacement), so "no drift" holds exactly, then shifts the window. The
baseline is alibi-detect's ``KSDrift`` (per-feature exact two-sample KS on raw rows, Bonferroni);
scipy's ``ks_2samp`` with the same threshold makes the same decisions, so that is what runs here.
The monitor runs twice on the same windows: with the joint test (what ships) and without it
(the per-feature family alone, i.e. the monitor before the joint test existed).

    python -m bench.drift.run              # the full benchmark (~15 min on 2 cores)
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
from scipy.special import ndtri
from scipy.stats import ks_2samp
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

from serving.drift import DriftMonitor, DriftProfile
from serving.drift.counts import Binner
from serving.drift.report import evaluate

ALPHA = 0.05
WINDOWS = (10, 20, 50, 100, 200, 500, 1000)
MARGINAL_SCENARIOS = (
    "noise_small",
    "noise_medium",
    "noise_large",
    "knockout",
    "rescale",
    "label_shift",
)
#: Shifts that keep every feature's marginal distribution (exactly, or within noise).
JOINT_SCENARIOS = ("permute_column", "decorrelate_pair", "segment_mix", "segment_mix_loose")
SCENARIOS = ("control", *MARGINAL_SCENARIOS, *JOINT_SCENARIOS)
#: A pair of features counts as strongly correlated from this |Pearson r| (else the top pair).
STRONG = 0.9
#: Segment mixes: the window takes this share from one side of the split (the population has
#: about half on each side).
SEGMENT_SHARE = 0.8
#: Which principal components of the standardized population (0 = least variance) span the
#: direction that splits the segments: the tightest relations, and (loose) moderate ones.
SEGMENT_COMPONENTS = {"segment_mix": (0, 3), "segment_mix_loose": (3, 8)}
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
    marginal: int
    ksdrift: int
    classic: int


@dataclass(frozen=True)
class Population:
    """The data set's rows and what the correlation-only scenarios need to know about them."""

    X: np.ndarray
    y: np.ndarray
    strong_pairs: list[tuple[int, int]]
    #: Whitened scores of every row on each principal component, least variance first.
    scores: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, y: np.ndarray) -> Population:
        varying = np.flatnonzero(X.std(axis=0) > 0)
        z = (X[:, varying] - X[:, varying].mean(axis=0)) / X[:, varying].std(axis=0)
        corr = np.corrcoef(z.T)
        np.fill_diagonal(corr, 0.0)
        pairs = [
            (int(varying[a]), int(varying[b]))
            for a, b in zip(*np.nonzero(np.triu(np.abs(corr) >= STRONG)), strict=True)
        ]
        if not pairs:
            a, b = np.unravel_index(np.abs(corr).argmax(), corr.shape)
            pairs = [(int(varying[a]), int(varying[b]))]
        variance, vectors = np.linalg.eigh(np.cov(z.T))  # ascending: tightest relations first
        scores = z @ vectors / np.sqrt(np.maximum(variance, 1e-12))
        return cls(X, y, pairs, scores)


def _normal_scores(column: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ranks (ties broken at random) mapped to standard normal quantiles."""
    order = np.lexsort((rng.random(column.size), column))
    ranks = np.empty(column.size)
    ranks[order] = np.arange(column.size)
    return np.asarray(ndtri((ranks + 0.5) / column.size))


def correlation_only_window(
    rng: np.random.Generator, population: Population, scenario: str, n: int
) -> np.ndarray:
    """A window whose marginals match the population's but whose joint distribution does not.

    ``permute_column``: one random column shuffled within the window (every marginal exact).
    ``decorrelate_pair``: for a random strongly correlated pair (a, b), b's values are reassigned
    among the window's rows in the order of b's normal score minus its regression on a's, so that
    a and b become uncorrelated while b keeps its values and what it shares with the rest.
    ``segment_mix*``: the population split in two segments by the sign of a random whitened
    direction within a few principal components; the window takes ``SEGMENT_SHARE`` of its rows
    from one segment instead of about half (marginals move only as far as those components
    carry variance: within noise for the tightest ones).
    """
    X = population.X
    if scenario in SEGMENT_COMPONENTS:
        low, high = SEGMENT_COMPONENTS[scenario]
        direction = rng.normal(size=high - low)
        side = population.scores[:, low:high] @ direction > 0
        first, second = np.flatnonzero(side), np.flatnonzero(~side)
        k = rng.binomial(n, SEGMENT_SHARE)
        return X[np.concatenate([rng.choice(first, k), rng.choice(second, n - k)])].copy()
    window = X[rng.integers(0, len(X), n)].copy()
    if scenario == "permute_column":
        j = rng.choice(np.flatnonzero(X.std(axis=0) > 0))
        window[:, j] = rng.permutation(window[:, j])
    elif scenario == "decorrelate_pair":
        a, b = population.strong_pairs[rng.integers(len(population.strong_pairs))]
        za, zb = _normal_scores(window[:, a], rng), _normal_scores(window[:, b], rng)
        r = float(np.corrcoef(za, zb)[0, 1]) if za.std() > 0 and zb.std() > 0 else 0.0
        order = np.argsort(np.argsort(zb - r * za, kind="stable"), kind="stable")
        window[:, b] = np.sort(window[:, b])[order]
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    return window


def shifted_window(
    rng: np.random.Generator, population: Population, scenario: str, n: int
) -> np.ndarray:
    """A window of ``n`` rows from the population, shifted as ``scenario`` says."""
    X, y = population.X, population.y
    if scenario in JOINT_SCENARIOS:
        return correlation_only_window(rng, population, scenario, n)
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


def _detects(profile: DriftProfile, window: np.ndarray) -> bool:
    binner = Binner(profile)
    return evaluate(profile, binner.reference(), binner.count(window), ALPHA).drift_detected


def run_cell(cell: Cell) -> CellResult:
    X, y = LOADERS[cell.dataset]()
    population = Population.of(X.astype(np.float64), y)
    X = population.X
    rng = np.random.default_rng(cell.seed)
    ours = marginal = ksdrift = classic = 0
    for _ in range(cell.trials):
        reference = X[rng.integers(0, len(X), len(X))]
        window = shifted_window(rng, population, cell.scenario, cell.window)
        profile = DriftProfile.fit(reference)
        ours += _detects(profile, window)
        # the same per-feature profile without the joint test: the monitor as it was before
        marginal += _detects(DriftProfile(profile.features, profile.rows), window)
        j = largest_ks_gap(reference, window)
        p_min = float(ks_2samp(reference[:, j], window[:, j]).pvalue)
        ksdrift += p_min < ALPHA / X.shape[1]
        classic += p_min < ALPHA
    return CellResult(cell, ours, marginal, ksdrift, classic)


def cells(
    trials: int,
    control_trials: int,
    datasets: tuple[str, ...] = tuple(LOADERS),
    scenarios: tuple[str, ...] = SCENARIOS,
) -> list[Cell]:
    out = []
    for d, dataset in enumerate(LOADERS):
        for s, scenario in enumerate(SCENARIOS):
            if dataset not in datasets or scenario not in scenarios:
                continue
            for w, window in enumerate(WINDOWS):
                n = control_trials if scenario == "control" else trials
                out.append(Cell(dataset, scenario, window, n, 10_000 * d + 100 * s + w))
    return out


def _rate(k: int, n: int) -> str:
    return f"{k / n:.2f}"


def _below(k: int, baseline: int, n: int) -> bool:
    """``k`` detections below ``baseline`` by more than two standard errors of the difference."""
    p = k / n
    se = math.sqrt(max(p * (1 - p) * 2, 1 / n) / n)
    return (baseline - k) / n > 2 * se


def _table(
    by: dict[tuple[str, str, int], CellResult], scenarios: tuple[str, ...], *, control: bool
) -> list[str]:
    header = "| data set | scenario | " + " | ".join(f"n={w}" for w in WINDOWS) + " |"
    lines = [header, "|---|---|" + "---|" * len(WINDOWS)]
    for dataset in LOADERS:
        for scenario in scenarios:
            if (dataset, scenario, WINDOWS[0]) not in by:
                continue
            cols = []
            for w in WINDOWS:
                r = by[(dataset, scenario, w)]
                n = r.cell.trials
                rates = [_rate(r.ours, n), _rate(r.marginal, n), _rate(r.ksdrift, n)]
                if control:
                    rates.append(_rate(r.classic, n))
                flags = ("*" if _below(r.ours, r.marginal, n) else "") + (
                    "!" if _below(r.ours, r.ksdrift, n) else ""
                )
                cols.append(" / ".join(rates) + flags)
            lines.append(f"| {dataset} | {scenario} | " + " | ".join(cols) + " |")
    return lines


def accuracy_tables(results: list[CellResult]) -> str:
    by = {(r.cell.dataset, r.cell.scenario, r.cell.window): r for r in results}
    lines = ["### False alarm rate on clean windows (control)", ""]
    lines += [
        "ours (with the joint test) / ours without the joint test / KSDrift-Bonferroni / "
        "classic per-feature ks_2samp without correction",
        "",
        *_table(by, ("control",), control=True),
    ]
    legend = (
        "ours (with the joint test) / ours without the joint test / KSDrift-Bonferroni; "
        "`*` = ours below ours-without-joint by more than 2 SE, `!` = ours below KSDrift by "
        "more than 2 SE"
    )
    lines += ["", "### Detection rate under shift", "", legend, ""]
    lines += _table(by, MARGINAL_SCENARIOS, control=False)
    lines += ["", "### Detection rate under correlation-only shift", "", legend, ""]
    lines += _table(by, JOINT_SCENARIOS, control=False)
    clean = [r.ours / r.cell.trials for r in results if r.cell.scenario == "control"]
    big = [
        (r.ours / r.cell.trials, r.marginal / r.cell.trials)
        for r in results
        if r.cell.scenario in MARGINAL_SCENARIOS and r.cell.window >= 500
    ]
    flagged = sum(
        _below(r.ours, r.marginal, r.cell.trials) for r in results if r.cell.scenario != "control"
    )
    lines.append("")
    if clean:
        lines.append(
            f"Largest false alarm rate of ours over {len(clean)} clean cells: **{max(clean):.3f}**."
        )
    if big:
        ours, marginal = np.mean(big, axis=0)
        lines.append(
            f"Mean detection rate over every marginal-shift cell with windows >= 500 rows: "
            f"**{ours:.3f}** with the joint test, {marginal:.3f} without ({len(big)} cells)."
        )
    lines.append(f"Shifted cells where the joint test costs power (`*`): **{flagged}**.")
    return "\n".join(lines)


def _best_cpu_seconds(actions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Least CPU time per call of each action over 7 rounds, the actions interleaved round by
    round, so that a busy machine slows them alike (CPU time, not wall time: waiting for a core
    is not a cost of the monitor)."""
    best = dict.fromkeys(actions, float("inf"))
    for _ in range(7):
        for name, action in actions.items():
            started = time.process_time()
            for _ in range(repeats):
                action()
            best[name] = min(best[name], (time.process_time() - started) / repeats)
    return best


def cost_table() -> str:
    X, _ = load_breast_cancer(return_X_y=True)  # 30 features
    profiles = {"with the joint test": DriftProfile.fit(X)}
    profiles["without"] = DriftProfile(profiles["with the joint test"].features, len(X))
    rng = np.random.default_rng(0)
    lines = [
        "### Costs (breast_cancer, 30 features, one core, CPU time, best of 7 rounds)",
        "",
        "| measure | " + " | ".join(profiles) + " |",
        "|---|" + "---|" * len(profiles),
    ]

    def row(measure: str, values: list[str]) -> None:
        lines.append(f"| {measure} | " + " | ".join(values) + " |")

    for batch in (1, 16, 64, 1000):
        rows = X[rng.integers(0, len(X), batch)]
        updates = {
            name: partial(DriftMonitor(p, window=1000).update, rows) for name, p in profiles.items()
        }
        seconds = _best_cpu_seconds(updates, max(20, 4000 // batch))
        row(
            f"update, batches of {batch} rows",
            [f"{seconds[n] / batch * 1e6:.2f} us/row" for n in profiles],
        )
    window = X[rng.integers(0, len(X), 1000)]
    reports = {}
    for name, p in profiles.items():
        monitor = DriftMonitor(p, window=1000)
        monitor.update(window)
        reports[name] = monitor.report
    seconds = _best_cpu_seconds(reports, 100)
    row("report, 1000-row window", [f"{seconds[n] * 1e3:.3f} ms" for n in profiles])
    for size in (100, 1_000_000, timedelta(hours=1)):
        values = []
        for p in profiles.values():
            tracemalloc.start()
            monitor = DriftMonitor(p, window=size)
            for _ in range(20):
                monitor.update(X[rng.integers(0, len(X), 500)])
            current, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            values.append(
                f"{current / 1024:.0f} KiB traced, {monitor.nbytes / 1024:.0f} KiB of counts"
            )
        row(f"memory, window={size} (10,000 rows seen)", values)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trials per shifted cell")
    parser.add_argument("--control-trials", type=int, default=400, help="trials per clean cell")
    parser.add_argument("--quick", action="store_true", help="20 trials per cell")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--costs", action="store_true", help="only the cost measurements")
    parser.add_argument("--datasets", help=f"comma-separated subset of {', '.join(LOADERS)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    if args.costs:
        print(cost_table())
        return
    trials, control = (20, 20) if args.quick else (args.trials, args.control_trials)
    datasets = tuple(args.datasets.split(",")) if args.datasets else tuple(LOADERS)
    scenarios = tuple(args.scenarios.split(",")) if args.scenarios else SCENARIOS
    started = time.perf_counter()
    todo = sorted(cells(trials, control, datasets, scenarios), key=lambda c: -c.window * c.trials)
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_cell, todo, chunksize=1))
    print(accuracy_tables(results))
    print()
    print(cost_table())
    print(f"\n_{time.perf_counter() - started:.0f} s on {args.jobs} processes._")


if __name__ == "__main__":
    main()
