"""Bounded request mixes against a test server on 127.0.0.1, shaped to move every signal the
dashboard, the alert rules and the canary watch read: successes over two protocols and several
batch sizes, 4xx (malformed bodies), 5xx and slow requests (through :data:`FAULT_HANDLER`) and
drifted rows."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from serving.demo import demo_data

#: ``predict_fn`` failing (500) on rows whose first feature is -1 and slow (50 ms) on rows
#: whose first feature is -2; otherwise the model's own answer.
FAULT_HANDLER = """
import time

import numpy as np


def predict_fn(data, model):
    rows = np.asarray(data)
    if (rows[:, 0] == -1).any():
        raise RuntimeError("injected fault")
    if (rows[:, 0] == -2).any():
        time.sleep(0.05)
    return model.predict(rows)
"""
ROWS: list[list[float]] = demo_data()[0].tolist()
FAILING = [[-1.0, *ROWS[0][1:]]]
SLOW = [[-2.0, *ROWS[0][1:]]]
#: Every feature five times its training scale: any drift test notices within one window.
DRIFTED = [[value * 5 for value in row] for row in ROWS]


@dataclass
class Mix:
    """Requests per round of each kind."""

    good: int = 4
    batch: int = 1
    """Requests of 8 rows each (moves the rows-per-model-call histogram)."""
    malformed: int = 0
    """400: a body that is not JSON."""
    failing: int = 0
    """500 through :data:`FAULT_HANDLER` (the server must run it)."""
    slow: int = 0
    """50 ms each through :data:`FAULT_HANDLER`."""
    drifted: int = 0
    """Requests of 8 drifted rows."""


@dataclass
class Sent:
    """Status codes answered, counted."""

    statuses: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def drive(
    url: str,
    mix: Mix,
    seconds: float,
    max_requests: int = 20_000,
    stop: threading.Event | None = None,
) -> Sent:
    """Send rounds of ``mix`` to ``url`` for ``seconds`` (at most ``max_requests``, and not
    after ``stop`` is set)."""
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    sent = offset = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline and sent < max_requests:
            if stop is not None and stop.is_set():
                break
            for kind, count in (
                ("good", mix.good),
                ("batch", mix.batch),
                ("malformed", mix.malformed),
                ("failing", mix.failing),
                ("slow", mix.slow),
                ("drifted", mix.drifted),
            ):
                for _ in range(count):
                    offset = (offset + 8) % (len(ROWS) - 8)
                    status = _send(client, kind, offset)
                    statuses[status] = statuses.get(status, 0) + 1
                    sent += 1
    return Sent(statuses)


def _send(client: httpx.Client, kind: str, offset: int) -> int:
    if kind == "good":
        return client.post("/predict", json={"features": ROWS[offset]}).status_code
    if kind == "malformed":
        return client.post(
            "/invocations", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
    rows = {
        "batch": ROWS[offset : offset + 8],
        "failing": FAILING,
        "slow": SLOW,
        "drifted": DRIFTED[offset : offset + 8],
    }[kind]
    return client.post("/invocations", json={"instances": rows}).status_code
