"""The HTTP/1.1 transport over real sockets: slow and oversized clients are cut off while reading
(slowloris, huge headers, slow bodies) and the direct route keeps HTTP semantics."""

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


# -- the direct route: prediction requests answered by the protocol, without ASGI -----------


def post(
    path: str, body: bytes, content_type: bytes = b"application/json", extra: bytes = b""
) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        content_type,
        len(body),
        extra,
        body,
    )


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Read ``count`` responses (each with a Content-Length) off a keep-alive connection."""
    sock.settimeout(10)
    data = b""
    responses = []
    while len(responses) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            length = int(headers["content-length"])
            if len(rest) >= length:
                responses.append((int(lines[0].split(" ")[1]), headers, rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(responses)} responses"
        data += chunk
    return responses


def test_pipelined_predictions_and_probes_are_answered_in_order(
    guarded: ServerProcess, demo_rows: list[list[float]]
) -> None:
    good = [json.dumps({"features": row}).encode() for row in demo_rows[:3]]
    csv = ",".join(map(str, demo_rows[3])).encode()
    requests = [
        post("/predict", good[0]),
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n",
        post("/predict", b'{"features": [1, 2]}'),  # wrong width: 400, only for itself
        post("/invocations", csv, b"text/csv"),
        post("/predict", good[1]),
        post("/predict", good[2]),
    ]
    with connect(guarded) as sock:
        sock.sendall(b"".join(requests))  # all at once: pipelined
        responses = read_responses(sock, len(requests))
    statuses = [status for status, _, _ in responses]
    assert statuses == [200, 200, 400, 200, 200, 200]
    answers = [json.loads(body) for _, _, body in responses]
    assert "expected 30 features" in answers[2]["error"]
    with connect(guarded) as sock:  # the same predictions asked one by one
        for i, index in enumerate((0, 4, 5)):
            sock.sendall(post("/predict", good[i]))
            assert json.loads(read_responses(sock, 1)[0][2]) == answers[index]


def test_http_1_0_prediction_is_answered_and_the_connection_closed(
    guarded: ServerProcess, demo_rows: list[list[float]]
) -> None:
    body = json.dumps({"features": demo_rows[0]}).encode()
    with connect(guarded) as sock:
        sock.sendall(post("/predict", body).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        status, answer = read_response(sock)  # reads until the server closes
    assert status == 200
    assert set(json.loads(answer)) == {"prediction", "confidence"}


@pytest.mark.parametrize("path", ["/%70redict", "/predict?trace=1"])
def test_prediction_paths_are_decoded_like_any_other(
    guarded: ServerProcess, demo_rows: list[list[float]], path: str
) -> None:
    body = json.dumps({"features": demo_rows[0]}).encode()
    with connect(guarded) as sock:
        sock.sendall(post(path, body))
        [(status, headers, answer)] = read_responses(sock, 1)
    assert status == 200, answer
    assert headers["content-type"] == "application/json"
    assert set(json.loads(answer)) == {"prediction", "confidence"}


def test_expect_100_continue_is_honoured_on_prediction_routes(
    guarded: ServerProcess, demo_rows: list[list[float]]
) -> None:
    body = json.dumps({"features": demo_rows[0]}).encode()
    request = post("/predict", body, extra=b"Expect: 100-continue\r\n")
    head, body = request[: -len(body)], request[-len(body) :]
    with connect(guarded) as sock:
        sock.sendall(head)
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        [(status, _, _)] = read_responses(sock, 1)
    assert status == 200


def test_oversized_prediction_body_is_refused_by_its_declared_length(
    guarded: ServerProcess,
) -> None:
    with connect(guarded) as sock:
        sock.sendall(post("/predict", b"{}")[:-2].replace(b"Length: 2", b"Length: 5000"))
        [(status, _, answer)] = read_responses(sock, 1)
    assert status == 413
    assert "4096" in json.loads(answer)["error"]


def test_access_log_lists_direct_and_asgi_requests_alike(
    start_server: Callable[..., ServerProcess], demo_rows: list[list[float]]
) -> None:
    server = start_server(env={"ML_ENDPOINTS_ACCESS_LOG": "true"})
    body = json.dumps({"features": demo_rows[0]}).encode()
    with connect(server) as sock:
        sock.sendall(post("/predict", body) + b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [status for status, _, _ in read_responses(sock, 2)] == [200, 200]
    log = server.log()
    assert '"POST /predict HTTP/1.1" 200' in log
    assert '"GET /health/live HTTP/1.1" 200' in log


@pytest.mark.parametrize("first", ["/health/live", "/predict"])
def test_slow_request_after_an_answered_one_still_gets_408(
    guarded: ServerProcess, demo_rows: list[list[float]], first: str
) -> None:
    body = json.dumps({"features": demo_rows[0]}).encode()
    request = (
        post(first, body)
        if first == "/predict"
        else b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % first.encode()
    )
    with connect(guarded) as sock:
        sock.sendall(request)
        assert read_responses(sock, 1)[0][0] == 200
        sock.sendall(post("/predict", body)[:-10])  # the body never ends
        status, _, elapsed = timed(lambda: read_response(sock))
    assert status == 408
    assert elapsed < READ_TIMEOUT + 2
