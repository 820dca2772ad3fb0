"""The side-by-side benchmark: ``python -m bench.run`` (or ``make bench``).

Every server is started on 127.0.0.1 pinned to core 0, ``wrk`` runs pinned to core 1. Each server
gets a warm-up, then ``--seconds`` per concurrency level. Prints one table (label, concurrency,
rps, p50, p99, errors, RSS), the in-process predict throughput, and the target ratios.

The ratio to the bare no-op is the one most exposed to this machine's noise (its CPU speed drifts
by tens of percent over minutes), so it is also measured interleaved: both servers up at once, c=64
runs alternating between them for ``--rounds`` rounds; the target uses the median round.

``--ab TREE`` compares our server before and after a change instead: the ``serving`` package of
the checkout ``TREE`` (e.g. ``git worktree add --detach ../before main``) against this one, both
up at once with this venv's dependencies, interleaved for ``--rounds`` rounds (the order flips
every round); per round and as medians: rps, p99 and server CPU per request at c=64, p50 at c=1.
``--after-env KEY=VALUE`` (repeatable) starts only the "after" server with these variables: with
``--ab .`` the same code with a feature on and off (e.g. the cloud signals,
``ML_ENDPOINTS_SAGEMAKER_ENDPOINT=bench ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS=1``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs its model

from bench import servers
from bench.load import LoadResult

SERVER_CORE, LOAD_CORE = 0, 1
LEVELS = (1, 8, 64)
NOOP, OURS = "bare ASGI no-op (limit)", "ml-endpoints /predict"


@dataclass(frozen=True)
class Row:
    """One table row."""

    label: str
    connections: int
    result: LoadResult
    rss_mb: float
    cpu_us: float  # server CPU time per request: robust to other load on the machine


def measure(
    server: servers.Server, seconds: float, levels: tuple[int, ...], log_dir: Path, warmup: float
) -> tuple[list[Row], float]:
    """Start ``server``, warm it up, run every level; returns rows and idle RSS (MB)."""
    try:
        _start_warm(server, log_dir, warmup)
        idle_rss = server.rss_mb()
        rows = []
        for connections in levels:
            result, cpu_us = _level(server, connections, seconds)
            rows.append(Row(server.label, connections, result, server.rss_mb(), cpu_us))
            print(_format(rows[-1]), flush=True)
        return rows, idle_rss
    finally:
        server.stop()


def _start_warm(server: servers.Server, log_dir: Path, warmup: float) -> None:
    """Start ``server`` pinned to the server core and warm it up at 8 connections."""
    server.start(SERVER_CORE, log_dir)
    server.drive(8, warmup, LOAD_CORE)


def _level(server: servers.Server, connections: int, seconds: float) -> tuple[LoadResult, float]:
    """One load level: wrk's result and the server's CPU microseconds per request."""
    cpu_before = server.cpu_seconds()
    result = server.drive(connections, seconds, LOAD_CORE)
    return result, (server.cpu_seconds() - cpu_before) / max(result.requests, 1) * 1e6


def _format(row: Row) -> str:
    r = row.result
    return (
        f"| {row.label} | {row.connections} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
        f"{r.p99_ms:.2f} | {r.errors} | {row.rss_mb:.0f} | {row.cpu_us:.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--only", nargs="*", help="exact labels of the servers to run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved c=64 rounds of ours vs the no-op (0: skip)",
    )
    parser.add_argument(
        "--ab",
        type=Path,
        metavar="TREE",
        help="only an interleaved A/B of ours: the checkout TREE (before) against this one",
    )
    parser.add_argument(
        "--after-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --ab: a variable for the 'after' server only (repeatable)",
    )
    args = parser.parse_args(argv)

    from serving.demo import demo_data, write_demo_artifacts

    work = servers.WORK
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    logreg = write_demo_artifacts(work / "models" / "logreg", "logreg")
    hgb = write_demo_artifacts(work / "models" / "hgb", "hgb")
    bodies = servers.single_row_bodies(demo_data()[0][0].tolist())
    predict, v2 = bodies["predict"], bodies["v2"]
    if args.ab is not None:
        before = servers.ours("before", logreg, predict, tree=args.ab.resolve())
        extra = dict(item.partition("=")[::2] for item in args.after_env)
        after = servers.ours("after", logreg, predict, env=extra)
        if extra:
            print(f"after: with {' '.join(args.after_env)}")
        _ab(before, after, args.ab.resolve(), args.rounds, args.seconds, log_dir, args.warmup)
        return 0

    factories: list[tuple[str, Callable[[], servers.Server]]] = [
        (NOOP, lambda: servers.noop(predict)),
        (OURS, lambda: servers.ours(OURS, logreg, predict)),
        (
            "ml-endpoints OIP v2",
            lambda: servers.ours("ml-endpoints OIP v2", logreg, v2, path="/v2/models/model/infer"),
        ),
        (
            "classic FastAPI",
            lambda: servers.fastapi("classic FastAPI", logreg / "model.joblib", predict),
        ),
        (
            "MLServer default",
            lambda: servers.mlserver(
                "MLServer default", logreg / "model.joblib", v2, batching=False
            ),
        ),
        (
            "MLServer adaptive batching",
            lambda: servers.mlserver(
                "MLServer adaptive batching", logreg / "model.joblib", v2, batching=True
            ),
        ),
        (
            "ml-endpoints /predict HGB",
            lambda: servers.ours("ml-endpoints /predict HGB", hgb, predict),
        ),
        (
            "classic FastAPI HGB",
            lambda: servers.fastapi("classic FastAPI HGB", hgb / "model.joblib", predict),
        ),
    ]
    if args.only:
        factories = [(k, f) for k, f in factories if any(o == k for o in args.only)]

    print(
        f"server on core {SERVER_CORE}, wrk on core {LOAD_CORE}; {args.seconds:g} s per level; "
        f"logs in {log_dir}\n"
    )
    print("| server | connections | rps | p50 ms | p99 ms | errors | RSS MB | CPU us/req |")
    print("|---|---|---|---|---|---|---|---|")
    results: dict[tuple[str, int], Row] = {}
    idle: dict[str, float] = {}
    for _, factory in factories:
        server = factory()
        rows, idle[server.label] = measure(server, args.seconds, LEVELS, log_dir, args.warmup)
        results.update({(r.label, r.connections): r for r in rows})

    print("\nIdle RSS (MB): " + ", ".join(f"{k}: {v:.0f}" for k, v in idle.items()))
    interleaved = None
    if args.rounds > 0 and (not args.only or {NOOP, OURS} <= set(args.only)):
        interleaved = _interleaved(
            servers.noop(predict),
            servers.ours(OURS, logreg, predict),
            args.rounds,
            args.seconds,
            log_dir,
            args.warmup,
        )
    _print_inprocess()
    _print_ratios(results, idle, interleaved)
    return 0


def _interleaved(
    noop: servers.Server,
    ours: servers.Server,
    rounds: int,
    seconds: float,
    log_dir: Path,
    warmup: float,
) -> float:
    """Median ratio of ours to the no-op at c=64 over alternating runs; prints every round."""
    print(f"\nInterleaved c=64 ({rounds} rounds, {seconds:g} s each, both servers up):\n")
    print("| round | no-op rps | ours rps | ratio | no-op CPU us/req | ours CPU us/req |")
    print("|---|---|---|---|---|---|")
    ratios = []
    try:
        for server in (noop, ours):
            _start_warm(server, log_dir, warmup)
        for round_ in range(1, rounds + 1):
            (base, base_cpu), (mine, our_cpu) = (_level(s, 64, seconds) for s in (noop, ours))
            base_rps, our_rps = base.rps, mine.rps
            ratios.append(our_rps / base_rps)
            print(
                f"| {round_} | {base_rps:,.0f} | {our_rps:,.0f} | {ratios[-1]:.2f}x | "
                f"{base_cpu:.0f} | {our_cpu:.0f} |",
                flush=True,
            )
    finally:
        noop.stop()
        ours.stop()
    return statistics.median(ratios)


def _ab(
    before: servers.Server,
    after: servers.Server,
    tree: Path,
    rounds: int,
    seconds: float,
    log_dir: Path,
    warmup: float,
) -> None:
    """Interleaved rounds of ``before`` and ``after``; prints every round and the medians."""
    print(f"A/B on core {SERVER_CORE} (wrk on core {LOAD_CORE}), {rounds} rounds; per round and")
    print(f"server: c=64 then c=1, {seconds:g} s each; the order flips every round.")
    print(f"before: {servers.serving_package(tree)}; after: {servers.serving_package(None)}\n")
    print(
        "| round | order | rps c=64 before | after | p99 ms c=64 before | after | "
        "CPU us/req c=64 before | after | p50 ms c=1 before | after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    figures: dict[str, list[tuple[float, float, float, float]]] = {"before": [], "after": []}
    try:
        for server in (before, after):
            _start_warm(server, log_dir, warmup)
        for round_ in range(1, rounds + 1):
            order = (before, after) if round_ % 2 else (after, before)
            for server in order:
                busy, cpu_us = _level(server, 64, seconds)
                idle, _ = _level(server, 1, seconds)
                figures[server.label].append((busy.rps, busy.p99_ms, cpu_us, idle.p50_ms))
            before_row, after_row = (figures[k][-1] for k in figures)
            print(f"| {round_} | {' then '.join(s.label for s in order)} | ", end="")
            print(_ab_cells(before_row, after_row), flush=True)
    finally:
        before.stop()
        after.stop()
    medians = {
        k: [statistics.median(column) for column in zip(*v, strict=True)]
        for k, v in figures.items()
    }
    print("| median | | " + _ab_cells(medians["before"], medians["after"]))
    ratios = [a / b for a, b in zip(medians["after"], medians["before"], strict=True)]
    print(
        f"\nafter / before (medians): rps c=64 {ratios[0]:.3f}x, p99 c=64 {ratios[1]:.3f}x, "
        f"CPU per request {ratios[2]:.3f}x, p50 c=1 {ratios[3]:.3f}x"
    )


def _ab_cells(before: Sequence[float], after: Sequence[float]) -> str:
    """Table cells of one A/B row: (rps, p99 ms, CPU us/req, p50 ms), before then after each."""
    (b_rps, b_p99, b_cpu, b_p50), (a_rps, a_p99, a_cpu, a_p50) = before, after
    return (
        f"{b_rps:,.0f} | {a_rps:,.0f} | {b_p99:.2f} | {a_p99:.2f} | {b_cpu:.0f} | {a_cpu:.0f} | "
        f"{b_p50:.3f} | {a_p50:.3f} |"
    )


def _print_inprocess() -> None:
    from bench.inprocess import measure as measure_inprocess

    print("\nIn-process predict throughput (one core, rows/s):\n")
    print("| model / predictor | batch | rows/s |")
    print("|---|---|---|")
    for kind in ("logreg", "hgb"):
        for label, batch, rate in measure_inprocess(kind):  # type: ignore[arg-type]
            print(f"| {label} | {batch} | {rate:,.0f} |")


def _print_ratios(
    results: dict[tuple[str, int], Row], idle: dict[str, float], interleaved: float | None
) -> None:
    def rps(label: str, c: int) -> float | None:
        row = results.get((label, c))
        return row.result.rps if row else None

    ours, hgb = OURS, "ml-endpoints /predict HGB"
    checks = [
        ("c=64 rps vs bare ASGI no-op (table above)", ours, NOOP, 0.5),
        ("c=64 rps vs classic FastAPI", ours, "classic FastAPI", 5.0),
        ("c=64 rps vs MLServer default", ours, "MLServer default", 10.0),
        ("c=64 rps (OIP v2) vs MLServer default", "ml-endpoints OIP v2", "MLServer default", 10.0),
        ("HGB c=64 rps vs classic FastAPI HGB", hgb, "classic FastAPI HGB", 3.0),
    ]
    print("\nTargets (measured in this run):\n")
    print("| target | measured | required | met |")
    print("|---|---|---|---|")
    for name, a, b, need in checks:
        ra, rb = rps(a, 64), rps(b, 64)
        if ra is None or rb is None:
            continue
        ratio = ra / rb
        print(f"| {name} | {ratio:.2f}x | >= {need:g}x | {'yes' if ratio >= need else 'NO'} |")
        if interleaved is not None and b == NOOP:
            print(
                f"| c=64 rps vs bare ASGI no-op (interleaved, median) | {interleaved:.2f}x | "
                f">= {need:g}x | {'yes' if interleaved >= need else 'NO'} |"
            )
    for label, c, metric, limit in ((ours, 64, "p99", 15.0), (ours, 1, "p50", 0.5)):
        row = results.get((label, c))
        if row is not None:
            value = row.result.p99_ms if metric == "p99" else row.result.p50_ms
            print(
                f"| {metric} at c={c} | {value:.2f} ms | <= {limit:g} ms | "
                f"{'yes' if value <= limit else 'NO'} |"
            )
    errors = sum(r.result.errors for r in results.values() if r.label.startswith("ml-endpoints"))
    met = "yes" if errors == 0 else "NO"
    print(f"| errors (ml-endpoints, all levels) | {errors} | 0 | {met} |")
    if ours in idle:
        print(
            f"| idle RSS, one worker | {idle[ours]:.0f} MB | <= 150 MB | "
            f"{'yes' if idle[ours] <= 150 else 'NO'} |"
        )


if __name__ == "__main__":
    sys.exit(main())
