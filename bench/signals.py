"""What one cloud signal line costs its worker: CPU per :meth:`SignalPublisher.publish` (read the
worker's registry, take the deltas and quantiles, format, write one line), in process.

The publisher runs on its own thread once per interval, off the request path; this is the work
it takes from the worker's core each time. The registry holds what a serving worker's holds
(every protocol, several error codes, drift series of 30 features), written to ``/dev/null``.

``python -m bench.signals [--lines N]``
"""

from __future__ import annotations

import argparse
import os
import random
import time

from prometheus_client import Gauge

from serving import cloud_signals as cs
from serving import contract
from serving.metrics import Metrics, RequestRecorder

PROTOCOLS = ("sagemaker", "vertex", "predict", "v2")
FEATURES = 30


def populated() -> Metrics:
    """A worker's metrics after some traffic on every protocol."""
    metrics = Metrics("bench", "1", "champion")
    recorder = RequestRecorder(metrics, PROTOCOLS)
    rng = random.Random(0)
    for protocol in PROTOCOLS:
        for _ in range(2000):
            status = rng.choice((200,) * 40 + (400, 415, 500, 503))
            recorder.end(protocol, rng.lognormvariate(-7, 1), 300, 40, status, admitted=False)
    metrics.ready_child.set(1)
    names = ["model", "version", "variant"]
    detected = Gauge(contract.DRIFT_DETECTED_METRIC, "", names, registry=metrics.registry)
    detected.labels(*metrics.base).set(0)
    p_value = Gauge(
        contract.DRIFT_P_VALUE_METRIC, "", [*names, "feature", "test"], registry=metrics.registry
    )
    for feature in range(FEATURES):
        p_value.labels(*metrics.base, f"f{feature}", "ks").set(rng.random())
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=2000)
    args = parser.parse_args(argv)
    metrics = populated()
    sink = os.open(os.devnull, os.O_WRONLY)
    formatter = cs.emf_formatter("MLEndpoints", "bench", "champion", {"model": "bench"})
    publisher = cs.SignalPublisher(
        cs.SignalReader(metrics.registry),
        formatter,
        interval=3600,  # the thread stays idle: publish() is timed here
        write=lambda document: cs.write_line(document, sink),
    )
    try:
        started_cpu, started = time.process_time(), time.perf_counter()
        for _ in range(args.lines):
            publisher.publish()
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    finally:
        publisher.close()
        os.close(sink)
    per_line_us = cpu / args.lines * 1e6
    print(
        f"{args.lines} EMF lines: {per_line_us:.0f} us CPU per line "
        f"({wall / args.lines * 1e6:.0f} us wall); at one line a minute per worker that is "
        f"{per_line_us / 60e6 * 100:.5f}% of a core, at one a second "
        f"{per_line_us / 1e6 * 100:.3f}%"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
