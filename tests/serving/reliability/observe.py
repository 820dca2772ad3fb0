"""What reliability tests observe of a running server: metrics, readiness, processes, memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess

#: One client for every probe (each httpx client builds an SSL context: ~45 ms); no keep-alive,
#: so that with several workers any of them may answer.
CLIENT = httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))


def metrics(server: ServerProcess) -> dict[str, float]:
    """Every sample of ``GET /metrics`` by name, summed over label sets."""
    text = CLIENT.get(server.url + "/metrics").text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def status(server: ServerProcess, path: str) -> int:
    """Status of a GET on a fresh connection."""
    return CLIENT.get(server.url + path).status_code


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms; ``TimeoutError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its child processes, in MB."""
    total = 0
    for process in (pid, *children(pid)):
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid``."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def worker_pids(server: ServerProcess) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    assert server.process is not None
    workers = set()
    for child in children(server.process.pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            workers.add(child)
    return workers
