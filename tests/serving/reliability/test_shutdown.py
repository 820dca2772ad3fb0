"""SIGTERM under load (``wrk`` with 32 connections plus a recording probe): readiness turns false
at once, requests are served through the drain window, the in-flight request completes, the
process exits 0 within the grace period, and nothing sent before readiness turned false fails.

The in-flight request is one whose body is still arriving when the drain window ends (the
listener closes while it is being read); a slow model call would instead hold up every request
queued behind it on the worker's model thread."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.serving.reliability.loadgen import (
    Wrk,
    closed_loop,
    http_request,
    in_background,
    p99,
)
from tests.serving.reliability.observe import CLIENT, metrics, wait_for

DRAIN_SECONDS = 3.0
GRACE_SECONDS = 10.0
LOAD_SECONDS = 20  # an upper bound: the load stops when the server has exited


class SlowUpload:
    """A request whose body is half sent now and finished by :meth:`finish`."""

    def __init__(self, server: ServerProcess, body: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        self.body = body
        head = (
            f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body[: len(body) // 2])

    def finish(self) -> int:
        """Send the rest of the body and read the response head; returns the status."""
        with self.sock:
            self.sock.sendall(self.body[len(self.body) // 2 :])
            data = b""
            while b"\r\n\r\n" not in data and (chunk := self.sock.recv(65536)):
                data += chunk
        return int(data.split(b" ", 2)[1])


class ReadinessWatch:
    """Polls ``/ping`` on fresh connections every 20 ms; remembers when it first saw 503."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.turned_false: float | None = None  # time.monotonic() the first 503 arrived
        self.after_false: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                code = CLIENT.get(self.server.url + "/ping", timeout=2).status_code
            except httpx.TransportError:
                if self.turned_false is not None:
                    return  # the listener closed after the drain window
                code = -1
            if code == 503 and self.turned_false is None:
                self.turned_false = time.monotonic()
            if self.turned_false is not None:
                self.after_false.append(code)
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_loses_nothing(
    start_timed: Callable[..., ServerProcess],
    predict_body: bytes,
    workers: int,
) -> None:
    server = start_timed(
        "--workers",
        str(workers),
        service=0.002,
        ML_ENDPOINTS_DRAIN_SECONDS=str(DRAIN_SECONDS),
        ML_ENDPOINTS_GRACEFUL_TIMEOUT=str(GRACE_SECONDS),
    )
    wait_for(lambda: metrics(server)["model_server_workers"] == workers, 30, "workers up")
    wait_for(lambda: metrics(server)["model_ready"] == 1, 30, "every worker ready")
    assert server.process is not None
    request = http_request("/invocations", predict_body)
    wrk = Wrk(server.url, "/invocations", predict_body, connections=32, seconds=LOAD_SECONDS)
    try:
        stop = threading.Event()
        probe = in_background(
            lambda: closed_loop(
                server.port,
                request,
                connections=4,
                seconds=LOAD_SECONDS,
                timeout=GRACE_SECONDS,
                stop=stop,
            )
        )
        watch = ReadinessWatch(server)
        time.sleep(2)
        upload = SlowUpload(server, predict_body)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(DRAIN_SECONDS + 1)  # the listener is closed now
        in_flight = upload.finish()
        code = server.process.wait(GRACE_SECONDS + 5)
        exited = time.monotonic() - signalled
        stop.set()
        wrk.interrupt()
        watch.stop()
        outcomes = probe(LOAD_SECONDS + GRACE_SECONDS + 10)
        load = wrk.result()
    finally:
        wrk.stop()

    assert code == 0, server.log()
    assert exited < DRAIN_SECONDS + GRACE_SECONDS
    assert watch.turned_false is not None
    # an upper bound: the poll's own answer waits behind 36 busy connections on 2 cores
    assert watch.turned_false - signalled < 1.0, "readiness did not turn false at once"
    assert set(watch.after_false) == {503}, "readiness came back during shutdown"
    before = [o for o in outcomes if o.sent < watch.turned_false]
    failed = [o for o in before if not o.ok]
    assert len(before) > 100
    assert failed == [], f"{len(failed)} of {len(before)} failed, e.g. {failed[:3]}"
    in_drain = [o for o in outcomes if signalled <= o.sent < signalled + DRAIN_SECONDS - 0.5]
    assert len(in_drain) > 50, "requests were not served through the drain window"
    assert all(o.ok for o in in_drain), [o for o in in_drain if not o.ok][:3]
    assert in_flight == 200
    assert load.non2xx == 0, load  # no 5xx while draining; refused connects come after it
    print(
        f"\nshutdown, {workers} worker(s): probe sent {len(outcomes)}, {len(before)} before "
        f"readiness false ({watch.turned_false - signalled:.3f} s after SIGTERM), failed "
        f"{len(failed)}; {len(in_drain)} served in the drain window; probe p99 "
        f"{p99([o.latency for o in before]) * 1e3:.1f} ms; in-flight upload -> {in_flight}; "
        f"exit {code} after {exited:.2f} s; wrk {load}"
    )
