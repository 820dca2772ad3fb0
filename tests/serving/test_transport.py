"""The HTTP/1.1 transport (``serving.transport``) driven in-process over a fake transport.

In the style of uvicorn's own protocol tests (encode/uvicorn ``tests/protocols/test_http.py``:
a ``MockTransport`` that keeps what is written, a loop whose timers the test fires): the protocol
under test is uvicorn's ``HttpToolsProtocol`` as extended here, and every extension point is
exercised without a socket or a server process, in about a second. A uvicorn upgrade that changes
the internals this module builds on (parser callbacks, ``cycle``, ``pipeline``, ``flow``,
``_start_asgi_task``, ``on_response_complete``, ``shutdown``) fails here first.

The app is the real ``ServingApp`` (admission, body limits, errors, metrics) with a router of two
routes: a prediction route whose answers the test can hold back, and a probe.
``tests/serving/test_transport_live.py`` checks the same behaviour over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from serving.app import ServingApp
from serving.http import Access, Request, Response, Route, Router, json_response
from serving.metrics import Metrics, RequestRecorder
from serving.transport import HttpProtocol, http_protocol

pytestmark = pytest.mark.anyio

READ_TIMEOUT = 1.0
BODY_LIMIT = 4096
MAX_HEADER_BYTES = 8192
PROBE = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def post(body: bytes, path: bytes = b"/predict", extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path,
        len(body),
        extra,
        body,
    )


class FakeTransport:
    """An asyncio transport that keeps what the protocol writes."""

    def __init__(self) -> None:
        self.buffer = b""
        self.closed = False
        self.read_paused = False

    def get_extra_info(self, key: str) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(key)

    def write(self, data: bytes) -> None:
        assert not self.closed, f"write after close: {data!r}"
        self.buffer += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        self.read_paused = False

    def set_protocol(self, _: object) -> None:
        pass


class Timer:
    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.when, self.callback, self.args = when, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """The running loop as the protocol sees it, except that timers (``call_later``: the read
    deadline, keep-alive) fire only when the test advances this clock; tasks are counted."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.now = 0.0
        self.tasks = 0
        self._timers: list[Timer] = []

    def create_task(self, coroutine: Any, **kwargs: Any) -> asyncio.Task[Any]:
        self.tasks += 1
        return self.loop.create_task(coroutine, **kwargs)

    def call_soon(self, callback: Callable[..., None], *args: Any) -> asyncio.Handle:
        return self.loop.call_soon(callback, *args)

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(self.now + delay, callback, args)
        self._timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self._timers if t.when <= self.now and not t.cancelled]
        self._timers = [t for t in self._timers if t not in due and not t.cancelled]
        for timer in due:
            timer.callback(*timer.args)


class Held:
    """Answers of the prediction route, held back until the test releases them."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Future[None]] = []
        self.tasks: list[asyncio.Task[Any] | None] = []  # the current task of each call
        self.holding = False

    async def predict(self, request: Request) -> Response:
        self.tasks.append(asyncio.current_task())
        if self.holding:
            gate = asyncio.get_running_loop().create_future()
            self.gates.append(gate)
            await gate
        return json_response({"body": request.body.decode(), "path": request.path})

    def release(self) -> None:
        for gate in self.gates:
            gate.set_result(None)
        self.gates.clear()


async def live(_: Request) -> Response:
    return json_response({"status": "alive"})


class Connection:
    """One client connection to a fresh :class:`HttpProtocol` over a :class:`FakeTransport`."""

    def __init__(self, held: Held, clock: Clock) -> None:
        self.loop = clock.loop
        router = Router(
            [
                Route("POST", "/predict", held.predict, protocol="test", body=True),
                Route("GET", "/health/live", live, access=Access.HEALTH),
            ]
        )
        metrics = Metrics("model", "1", "default")
        self.app = ServingApp(
            router,
            RequestRecorder(metrics, ["test"]),
            body_limit=BODY_LIMIT,
            max_inflight=8,
        )
        protocol = http_protocol(
            self.app, read_timeout=READ_TIMEOUT, max_header_bytes=MAX_HEADER_BYTES
        )
        config = Config(app=self.app, lifespan="off", proxy_headers=False, log_config=None)
        self.protocol: HttpProtocol = protocol(
            config=config, server_state=ServerState(), app_state={}, _loop=clock
        )
        self.transport = FakeTransport()
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    async def send(self, data: bytes) -> None:
        """Deliver ``data`` as the event loop does (from a callback, outside any task), then
        let everything it started run."""
        self.loop.call_soon(self.protocol.data_received, data)
        await settle()

    def responses(self) -> list[tuple[int, dict[str, str], bytes]]:
        """Every complete response written so far (interim 100 Continue left out)."""
        data, found = self.transport.buffer, []
        while True:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if not sep:
                return found
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            if status == 100:
                data = rest
                continue
            length = int(headers["content-length"])
            if len(rest) < length:
                return found
            found.append((status, headers, rest[:length]))
            data = rest[length:]


async def settle() -> None:
    """Let every ready callback and task run."""
    for _ in range(20):
        await asyncio.sleep(0)


async def hold_one(conn: Connection, held: Held) -> None:
    """Send one prediction request whose answer is held back."""
    held.holding = True
    await conn.send(post(b"{}"))
    assert held.gates, "the request did not reach its handler"


@pytest.fixture
async def held() -> Held:
    return Held()


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def conn(held: Held, clock: Clock) -> Connection:
    return Connection(held, clock)


# -- the direct route ---------------------------------------------------------------------------
async def test_prediction_is_answered_without_asgi_and_without_a_task(
    conn: Connection, held: Held, clock: Clock
) -> None:
    await conn.send(post(b'{"x": 1}'))
    [(status, headers, body)] = conn.responses()
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"body": '{"x": 1}', "path": "/predict"}
    assert clock.tasks == 0  # no ASGI cycle: uvicorn starts a task for each of those
    assert held.tasks == [None]  # code on the prediction path runs without a current task
    assert not conn.transport.closed  # keep-alive


async def test_a_body_arriving_in_pieces_is_collected_by_the_direct_route(
    conn: Connection, held: Held, clock: Clock
) -> None:
    request = post(b'{"features": [1, 2, 3]}')
    for i in range(0, len(request), 7):
        await conn.send(request[i : i + 7])
    [(status, _, body)] = conn.responses()
    assert status == 200
    assert json.loads(body)["body"] == '{"features": [1, 2, 3]}'
    assert clock.tasks == 0


async def test_probes_go_through_asgi(conn: Connection, clock: Clock) -> None:
    await conn.send(PROBE)
    assert [status for status, _, _ in conn.responses()] == [200]
    assert clock.tasks == 1


@pytest.mark.parametrize("path", [b"/%70redict", b"/predict?trace=1"])
async def test_prediction_paths_are_decoded_like_any_other(
    conn: Connection, clock: Clock, path: bytes
) -> None:
    await conn.send(post(b"{}", path))
    [(status, _, body)] = conn.responses()
    assert status == 200
    assert json.loads(body)["path"] == "/predict"
    assert clock.tasks == 0


async def test_pipelined_requests_are_answered_in_order(
    conn: Connection, held: Held, clock: Clock
) -> None:
    held.holding = True
    await conn.send(post(b"first") + PROBE + post(b"third"))  # all at once: pipelined
    assert conn.transport.buffer == b""  # the probe waits for the direct answer before it
    assert conn.transport.read_paused
    held.release()
    await settle()
    assert len(conn.responses()) == 2  # the first and the probe; the third is held
    held.release()
    await settle()
    answers = conn.responses()
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert json.loads(answers[0][2])["body"] == "first"
    assert json.loads(answers[1][2]) == {"status": "alive"}
    assert json.loads(answers[2][2])["body"] == "third"
    # the probe, and the third request: it was parsed while another was in progress, so it
    # queued as uvicorn queues pipelined requests, behind the probe
    assert clock.tasks == 2
    assert not conn.transport.read_paused


async def test_http_1_0_direct_request_is_answered_then_closed(conn: Connection) -> None:
    await conn.send(post(b"{}").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    [(status, headers, _)] = conn.responses()
    assert status == 200
    assert headers["connection"] == "close"
    assert conn.transport.closed


async def test_expect_100_continue_is_honoured(conn: Connection, clock: Clock) -> None:
    request = post(b'{"x": 1}', extra=b"Expect: 100-continue\r\n")
    head, body = request[: -len(b'{"x": 1}')], b'{"x": 1}'
    await conn.send(head)
    assert conn.transport.buffer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    await conn.send(body)
    [(status, _, answer)] = conn.responses()
    assert status == 200
    assert json.loads(answer)["body"] == '{"x": 1}'
    assert clock.tasks == 1  # through ASGI, which sends the interim response


async def test_access_log_lists_direct_and_asgi_requests_alike(
    conn: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    conn.protocol.access_log = True
    await conn.send(post(b"{}") + PROBE)
    assert len(conn.responses()) == 2
    assert '"POST /predict HTTP/1.1" 200' in caplog.text
    assert '"GET /health/live HTTP/1.1" 200' in caplog.text


async def test_a_client_gone_before_the_answer_gets_nothing_written(
    conn: Connection, held: Held
) -> None:
    await hold_one(conn, held)
    conn.transport.close()
    conn.protocol.connection_lost(None)
    held.release()
    await settle()  # FakeTransport.write would fail on a write after close
    assert conn.transport.buffer == b""


# -- limits while reading -----------------------------------------------------------------------
async def test_a_connection_that_sends_nothing_gets_408(conn: Connection, clock: Clock) -> None:
    clock.advance(READ_TIMEOUT * 0.9)
    assert conn.transport.buffer == b""
    clock.advance(READ_TIMEOUT * 0.2)
    [(status, headers, body)] = conn.responses()
    assert status == 408
    assert headers["connection"] == "close"
    assert "not received within" in json.loads(body)["error"]
    assert conn.transport.closed


async def test_headers_trickled_slowly_get_408(conn: Connection, clock: Clock) -> None:
    await conn.send(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
    clock.advance(READ_TIMEOUT / 2)
    await conn.send(b"X-Slow: 1\r\n")  # still trickling: the deadline counts from the first byte
    clock.advance(READ_TIMEOUT / 2)
    assert [status for status, _, _ in conn.responses()] == [408]
    assert conn.transport.closed


@pytest.mark.parametrize("first", [PROBE, post(b"{}")], ids=["after-asgi", "after-direct"])
async def test_a_slow_request_after_an_answered_one_gets_408(
    conn: Connection, clock: Clock, first: bytes
) -> None:
    await conn.send(first)
    clock.advance(READ_TIMEOUT * 3)  # idle between requests is not a slow request
    assert not conn.transport.closed
    await conn.send(post(b'{"x": 1}')[:-3])  # the body never ends
    clock.advance(READ_TIMEOUT)
    assert [status for status, _, _ in conn.responses()] == [200, 408]
    assert conn.transport.closed


async def test_oversized_headers_get_431(conn: Connection) -> None:
    await conn.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEADER_BYTES)
    [(status, _, body)] = conn.responses()
    assert status == 431
    assert str(MAX_HEADER_BYTES) in json.loads(body)["error"]
    assert conn.transport.closed


async def test_a_declared_body_over_the_limit_gets_413_before_it_arrives(
    conn: Connection, clock: Clock, held: Held
) -> None:
    await conn.send(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    [(status, _, body)] = conn.responses()
    assert status == 413
    assert str(BODY_LIMIT) in json.loads(body)["error"]
    assert clock.tasks == 1  # refused by the app on the ASGI path, never buffered
    assert held.tasks == []


async def test_a_chunked_body_over_the_limit_gets_413_then_one_silent_close(
    conn: Connection, clock: Clock
) -> None:
    await conn.send(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"1," * 1000
    for _ in range(3):  # 6000 bytes > 4096; the last chunk never comes
        await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    assert [status for status, _, _ in conn.responses()] == [413]
    clock.advance(READ_TIMEOUT)  # the request never ended: close, without a second status line
    assert conn.transport.closed
    assert conn.transport.buffer.count(b"HTTP/1.1 ") == 1


# -- graceful shutdown ----------------------------------------------------------------------------
async def test_shutdown_closes_an_idle_connection_at_once(conn: Connection) -> None:
    await conn.send(post(b"{}"))
    conn.protocol.shutdown()
    assert conn.transport.closed


async def test_shutdown_lets_a_direct_request_in_progress_finish_then_closes(
    conn: Connection, held: Held
) -> None:
    await hold_one(conn, held)
    conn.protocol.shutdown()
    assert not conn.transport.closed
    held.release()
    await settle()
    [(status, headers, _)] = conn.responses()
    assert status == 200
    assert headers["connection"] == "close"
    assert conn.transport.closed
