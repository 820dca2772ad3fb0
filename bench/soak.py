"""Soak test: ``python -m bench.soak`` (10 minutes by default; not part of ``make test``).

Starts our server on the demo model pinned to core 0, drives it with ``wrk`` pinned to core 1 at a
moderate load (few connections) for ``--seconds``, samples the server's resident memory (all its
processes) every ``--interval`` seconds, and reports errors, latency and the RSS growth between
the end of the warm-up and the end of the run. Exits 1 unless there were no errors and RSS grew
less than ``--max-growth`` percent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import servers
from bench.load import LoadResult

SERVER_CORE, LOAD_CORE = 0, 1


@dataclass(frozen=True)
class SoakResult:
    """What one soak run measured; RSS figures are medians of the samples in each window."""

    seconds: float
    connections: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_idle_mb: float
    rss_after_warmup_mb: float
    rss_end_mb: float
    rss_growth_percent: float
    samples: list[tuple[float, float]]  # (seconds since the load began, RSS MB)


def soak(
    server: servers.Server,
    *,
    seconds: float,
    warmup: float,
    connections: int,
    interval: float,
    window: float,
) -> SoakResult:
    """Drive ``server`` (already started) for ``seconds`` while sampling its RSS."""
    idle = server.rss_mb()
    outcome: dict[str, LoadResult | BaseException] = {}

    def drive() -> None:
        try:
            outcome["load"] = server.drive(connections, seconds, LOAD_CORE)
        except BaseException as exc:  # reported below
            outcome["load"] = exc

    load = threading.Thread(target=drive, name="wrk", daemon=True)
    started = time.monotonic()
    load.start()
    samples: list[tuple[float, float]] = []
    while load.is_alive():
        samples.append((time.monotonic() - started, server.rss_mb()))
        load.join(interval)
    result = outcome["load"]
    if isinstance(result, BaseException):
        raise result
    after_warmup = _median(samples, warmup, warmup + window)
    end = _median(samples, seconds - window, seconds)
    return SoakResult(
        seconds=seconds,
        connections=connections,
        requests=result.requests,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        rss_idle_mb=idle,
        rss_after_warmup_mb=after_warmup,
        rss_end_mb=end,
        rss_growth_percent=100 * (end - after_warmup) / after_warmup,
        samples=samples,
    )


def _median(samples: list[tuple[float, float]], start: float, stop: float) -> float:
    values = [rss for at, rss in samples if start <= at <= stop]
    if not values:
        raise ValueError(f"no RSS sample between {start:.0f} s and {stop:.0f} s; lower --interval")
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    """Run one soak and print its figures (``--json FILE`` also writes them)."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60, help="seconds before RSS is baselined")
    parser.add_argument("--window", type=float, default=30, help="seconds of samples per median")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--interval", type=float, default=5, help="seconds between RSS samples")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth, %%")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.seconds < args.warmup + 2 * args.window:
        parser.error("--seconds must leave room for --warmup and two --window medians")

    from serving.demo import demo_data, write_demo_artifacts

    work = Path(tempfile.mkdtemp(prefix="ml-endpoints-soak-"))
    model_dir = write_demo_artifacts(work / "model")
    body = servers.single_row_bodies(demo_data()[0][0].tolist())["predict"]
    server = servers.ours("ours", model_dir, body, "--workers", str(args.workers))
    server.start(SERVER_CORE, work)
    try:
        result = soak(
            server,
            seconds=args.seconds,
            warmup=args.warmup,
            connections=args.connections,
            interval=args.interval,
            window=args.window,
        )
    finally:
        server.stop()
    print(
        f"soak {result.seconds:.0f} s, {result.connections} connections, "
        f"{args.workers} worker(s): {result.requests} requests, {result.rps:.0f} rps, "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, errors {result.errors}\n"
        f"RSS idle {result.rss_idle_mb:.1f} MB, after warm-up {result.rss_after_warmup_mb:.1f} MB, "
        f"end {result.rss_end_mb:.1f} MB: growth {result.rss_growth_percent:+.2f}% "
        f"(limit {args.max_growth}%)"
    )
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    ok = result.errors == 0 and result.rss_growth_percent < args.max_growth
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
