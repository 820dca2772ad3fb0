"""Load for reliability tests: a small asyncio HTTP/1.1 client that records every request, and
``wrk`` in the background for raw pressure.

The asyncio client keeps each request's send time, latency and outcome, which ``wrk`` cannot give:
tests need to know which requests were sent before readiness turned false, which were refused
with 503, and how long each took. Every loop is bounded by a duration and a per-request timeout.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvloop

WRK_SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "wrk" / "post.lua"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Outcome:
    """One request: when it was sent (``time.monotonic()``), how long it took, how it ended."""

    sent: float
    latency: float
    status: int | None  # None: no HTTP response (connection refused/reset, timeout)
    error: str | None = None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def http_request(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    """A keep-alive HTTP/1.1 POST, ready to write."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Connection:
    """One keep-alive connection; reopened after any error or ``Connection: close``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str]]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(HOST, self.port)
        reader, writer = self._streams
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _timed(connection: _Connection, request: bytes, timeout: float) -> Outcome:
    sent = time.monotonic()
    try:
        status, headers = await asyncio.wait_for(connection.exchange(request), timeout)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
        connection.close()
        return Outcome(sent, time.monotonic() - sent, None, f"{type(exc).__name__}: {exc}")
    return Outcome(sent, time.monotonic() - sent, status, None, headers.get("retry-after"))


async def closed_loop(
    port: int,
    request: bytes,
    *,
    connections: int,
    seconds: float,
    timeout: float = 10.0,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """``connections`` clients each sending the next request when the last one ends."""
    deadline = time.monotonic() + seconds
    outcomes: list[Outcome] = []

    async def client() -> None:
        connection = _Connection(port)
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            outcome = await _timed(connection, request, timeout)
            outcomes.append(outcome)
            if outcome.status is None:
                await asyncio.sleep(0.01)  # refused or reset: do not spin
        connection.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return outcomes


async def open_loop(
    port: int, request: bytes, *, rate: float, seconds: float, timeout: float = 10.0
) -> list[Outcome]:
    """Requests sent on a fixed schedule of ``rate`` per second, whatever the server does."""
    idle: list[_Connection] = []
    outcomes: list[Outcome] = []

    async def one() -> None:
        connection = idle.pop() if idle else _Connection(port)
        outcomes.append(await _timed(connection, request, timeout))
        idle.append(connection)

    started = time.monotonic()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return outcomes


def run(coroutine: Coroutine[Any, Any, list[Outcome]]) -> list[Outcome]:
    """Run a load coroutine to completion on its own uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def in_background(
    make: Callable[[], Awaitable[list[Outcome]]],
) -> Callable[[float], list[Outcome]]:
    """Start ``make()`` on a thread now; the returned function joins it (with a timeout)."""
    result: list[list[Outcome]] = []
    failure: list[BaseException] = []

    async def wrapped() -> list[Outcome]:
        return await make()

    def target() -> None:
        try:
            result.append(run(wrapped()))
        except BaseException as exc:  # re-raised by join()
            failure.append(exc)

    thread = threading.Thread(target=target, name="load", daemon=True)
    thread.start()

    def join(timeout: float) -> list[Outcome]:
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"load generator still running after {timeout} s")
        if failure:
            raise failure[0]
        return result[0]

    return join


def p99(latencies: list[float]) -> float:
    """The 99th percentile of ``latencies`` in seconds (``nan`` when empty)."""
    return float(np.percentile(latencies, 99)) if latencies else float("nan")


@dataclass(frozen=True)
class WrkResult:
    """What ``wrk`` counted: HTTP statuses other than 2xx/3xx apart from socket errors."""

    requests: int
    non2xx: int
    socket_errors: int
    p99_ms: float


class Wrk:
    """``wrk`` POSTing one body with ``connections`` connections for ``seconds``, in background."""

    _RESULT = re.compile(r"RESULT (.*)")

    def __init__(self, url: str, path: str, body: bytes, *, connections: int, seconds: int) -> None:
        self._body = tempfile.NamedTemporaryFile(suffix=".body")  # noqa: SIM115 - closed in result()
        self._body.write(body)
        self._body.flush()
        self.seconds = seconds
        self.process = subprocess.Popen(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(WRK_SCRIPT),
                url,
            ],
            env={"WRK_BODY_FILE": self._body.name, "WRK_PATH": path, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def interrupt(self) -> None:
        """Stop ``wrk`` now (SIGINT: it still prints its summary)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def result(self) -> WrkResult:
        """Wait for ``wrk`` to finish and parse its summary."""
        try:
            output, _ = self.process.communicate(timeout=self.seconds + 30)
        finally:
            self._body.close()
        found = self._RESULT.search(output)
        if found is None:
            raise RuntimeError(f"wrk printed no result:\n{output}")
        values = {k: int(v) for k, v in (item.split("=") for item in found.group(1).split())}
        return WrkResult(
            requests=values["requests"],
            non2xx=values["non2xx"],
            socket_errors=sum(values[k] for k in ("connect", "read", "write", "timeout")),
            p99_ms=values["p99_us"] / 1e3,
        )

    def stop(self) -> None:
        """End ``wrk`` early (finalizers)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._body.close()
