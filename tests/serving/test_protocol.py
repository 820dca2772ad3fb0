"""Slow and oversized clients are cut off while reading (slowloris, huge headers, slow bodies)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest

from tests.conftest import ServerProcess

READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    server = ServerProcess(
        [],
        {
            "ML_ENDPOINTS_READ_TIMEOUT": str(READ_TIMEOUT),
            "ML_ENDPOINTS_MAX_BODY_BYTES": "4096",
            "ML_ENDPOINTS_MAX_HEADER_BYTES": "8192",
        },
    ).start(tmp_path_factory.mktemp("guarded"))
    yield server
    server.stop()


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read until the server closes; return the status code and the body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def timed(action: Callable[[], tuple[int, bytes]]) -> tuple[int, bytes, float]:
    started = time.monotonic()
    status, body = action()
    return status, body, time.monotonic() - started


def test_connection_that_sends_nothing_is_closed_with_408(guarded: ServerProcess) -> None:
    with connect(guarded) as sock:
        status, body, elapsed = timed(lambda: read_response(sock))
    assert status == 408
    assert "not received within" in json.loads(body)["error"]
    assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + 2


def test_headers_trickled_slowly_get_408(guarded: ServerProcess) -> None:
    with connect(guarded) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.3)
        sock.sendall(b"X-Slow: 1\r\n")  # keeps trickling, never finishes the header block
        status, _, elapsed = timed(lambda: read_response(sock))
    assert status == 408
    assert elapsed < READ_TIMEOUT + 2


def test_body_trickled_slowly_gets_408(guarded: ServerProcess) -> None:
    with connect(guarded) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"features": ['
        )
        status, _, elapsed = timed(lambda: read_response(sock))
    assert status == 408
    assert elapsed < READ_TIMEOUT + 2


def test_oversized_headers_get_431(guarded: ServerProcess) -> None:
    with connect(guarded) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 9000 + b"\r\n")
        status, body = read_response(sock)
    assert status == 431
    assert "8192" in json.loads(body)["error"]


def test_chunked_body_over_the_limit_is_refused_before_it_ends(guarded: ServerProcess) -> None:
    with connect(guarded) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"1," * 1000
        for _ in range(3):  # 6000 bytes > 4096, sent in pieces; the end is never sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.05)
        status, body, elapsed = timed(lambda: read_response(sock))
    assert status == 413
    assert "4096" in json.loads(body)["error"]
    assert elapsed < READ_TIMEOUT


def test_keep_alive_and_pipelined_requests_still_work(guarded: ServerProcess) -> None:
    request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(guarded) as sock:
        sock.sendall(request * 3)  # pipelined
        time.sleep(READ_TIMEOUT * 1.5)  # idle between requests is not a slow request
        sock.sendall(request[:-2])
        time.sleep(0.2)
        sock.sendall(b"\r\n")
        sock.settimeout(5)
        data = b""
        while data.count(b"HTTP/1.1 200") < 4:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early after {data!r}"
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 4
