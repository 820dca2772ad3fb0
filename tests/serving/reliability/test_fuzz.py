"""Property-based fuzzing of every decoder: whatever the body, the answer is a 200 or a 4xx with a
precise JSON message, never a 5xx and never a crash.

Most examples run in-process through the ASGI app (every protocol handler, the codecs, the
runtime's validation, one event loop for all); a bounded number go over real HTTP to the server
process. Hypothesis runs derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

import asyncio
import io
import json
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from serving.compose import create_app
from serving.settings import Settings
from tests.conftest import ServerProcess
from tests.serving.reliability.observe import status

ROUTES = {
    "sagemaker": "/invocations",
    "vertex": "/v1/endpoints/1/deployedModels/2:predict",
    "v1": "/v1/models/model:predict",
    "v2": "/v2/models/model/infer",
    "kubernetes": "/predict",
}
IN_PROCESS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
OVER_HTTP = settings(IN_PROCESS, max_examples=30)

Post = Callable[[str, bytes, dict[str, str]], httpx.Response]

# -- values --------------------------------------------------------------------------------
cells = st.one_of(
    st.floats(width=64),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=10**300, max_value=10**400),
    st.none(),
    st.booleans(),
    st.text(max_size=6),
)
rows = st.one_of(
    st.lists(st.lists(cells, max_size=32), max_size=4),
    st.lists(cells, max_size=32),
    st.lists(st.lists(st.floats(-1e6, 1e6), min_size=30, max_size=30), min_size=1, max_size=3),
    st.lists(st.dictionaries(st.text(max_size=12), cells, max_size=3), max_size=2),
)
json_values = st.recursive(
    cells, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner)
)
tensors = st.fixed_dictionaries(
    {
        "name": st.text(max_size=8) | st.integers(),
        "shape": st.lists(st.integers(-2, 40), max_size=3) | json_values,
        "datatype": st.sampled_from(
            ["FP64", "FP32", "FP16", "INT8", "UINT8", "INT64", "UINT64", "BOOL", "BYTES", "fp32"]
        )
        | json_values,
    },
    optional={
        "data": rows | json_values,
        "parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-8, 300) | cells})
        | json_values,
    },
)
documents = {
    "sagemaker": st.one_of(
        rows,
        st.fixed_dictionaries({}, optional={"instances": rows, "features": rows, "inputs": rows}),
        json_values,
    ),
    "vertex": st.one_of(
        st.fixed_dictionaries(
            {"instances": rows},
            optional={"parameters": st.fixed_dictionaries({"output": cells}) | json_values},
        ),
        json_values,
    ),
    "v1": st.one_of(st.fixed_dictionaries({"instances": rows}), json_values),
    "v2": st.one_of(
        st.fixed_dictionaries(
            {"inputs": st.lists(tensors, max_size=2) | json_values},
            optional={
                "id": json_values,
                "outputs": st.lists(st.fixed_dictionaries({"name": cells})) | json_values,
                "parameters": st.fixed_dictionaries({"binary_data_output": cells}) | json_values,
            },
        ),
        json_values,
    ),
    "kubernetes": st.one_of(
        st.fixed_dictionaries({"features": rows | st.dictionaries(st.text(max_size=12), cells)}),
        json_values,
    ),
}


def encode(document: Any) -> bytes:
    """JSON as a careless client writes it: NaN/Infinity literals and 400-digit numbers too."""
    return json.dumps(document, allow_nan=True).encode()


def deeply_nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


# -- .npy bodies -----------------------------------------------------------------------------
def npy_header(descr: Any, fortran_order: Any, shape: Any, version: int = 1) -> bytes:
    """A ``.npy`` preamble with any header dictionary (numpy itself refuses to write bad ones)."""
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran_order!r}, 'shape': {shape!r}, }}"
    raw = text.encode("latin-1")
    size = len(raw).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + raw


def saved(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


npy_arrays = st.builds(
    lambda dtype, shape, order: saved(np.zeros(shape, dtype=dtype, order=order)),
    st.sampled_from(["<f8", ">f4", "<f2", "i1", "<u8", "?", "<c8", "<U3", "S2", "<M8[s]", "V4"]),
    st.lists(st.integers(0, 4), max_size=3).map(tuple),
    st.sampled_from(["C", "F"]),
)
npy_headers = st.builds(
    lambda header, data: header + data,
    st.builds(
        npy_header,
        st.sampled_from(["<f8", "|O", "<i4", "zz", [("a", "<f8")], 3]),
        st.sampled_from([False, True, 1, "no"]),
        st.one_of(
            st.lists(st.integers(-3, 5) | st.booleans(), max_size=3).map(tuple),
            st.just((1.5,)),
            st.just([2, 2]),
            st.just((10**30, 10**30)),
        ),
        st.sampled_from([1, 2]),
    ),
    st.binary(max_size=64),
)
npy_bodies = st.one_of(
    npy_arrays,
    npy_headers,
    npy_headers.map(lambda body: body[: len(body) // 2]),  # cut anywhere, header included
    st.binary(max_size=64).map(lambda tail: b"\x93NUMPY" + tail),
    st.binary(max_size=64),
)


class Trap:
    """Unpickling this creates ``marker``: proof that pickled request data was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


# -- the app in-process ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def post(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Post]:
    """POST to the ASGI app on one long-lived event loop, its model loaded."""
    cache = tmp_path_factory.mktemp("fuzz-cache")
    app = create_app(
        Settings(model_uri=str(demo_model_dir), cache_dir=str(cache), compile=False),
        load_before_serving=True,
    )
    runner = asyncio.Runner()
    runner.run(app.start())  # returns once the model is loaded
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # scopes typed as dict
    client = httpx.AsyncClient(transport=transport, base_url="http://fuzz")
    ready = runner.run(client.get("/ping"))
    assert ready.status_code == 200, ready.text

    def send(path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return runner.run(client.post(path, content=body, headers=headers))

    yield send
    runner.run(client.aclose())
    app.close()
    runner.close()


def assert_answered(response: httpx.Response) -> None:
    """200, or a 4xx whose body is ``{"error": <a precise message>}``; never a 5xx."""
    if response.status_code == 200:
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert isinstance(message, str)
    assert len(message) > 15, message
    assert "internal error" not in message


@IN_PROCESS
@given(protocol=st.sampled_from(sorted(ROUTES)), data=st.data())
def test_json_bodies_of_every_protocol(post: Post, protocol: str, data: st.DataObject) -> None:
    body = encode(data.draw(documents[protocol], label="document"))
    assert_answered(post(ROUTES[protocol], body, {"content-type": "application/json"}))


@IN_PROCESS
@given(
    protocol=st.sampled_from(sorted(ROUTES)),
    body=st.one_of(
        st.just(b""),
        st.binary(max_size=64),
        st.integers(1, 5000).map(deeply_nested),
        st.text(max_size=32).map(str.encode),
    ),
)
@example(protocol="v2", body=deeply_nested(100_000))
@example(protocol="sagemaker", body=b"\xff\xfe{}")
def test_empty_binary_and_deeply_nested_bodies(post: Post, protocol: str, body: bytes) -> None:
    assert_answered(post(ROUTES[protocol], body, {"content-type": "application/json"}))


@IN_PROCESS
@given(
    body=st.one_of(
        st.lists(st.lists(st.text(max_size=8), max_size=32), max_size=4).map(
            lambda lines: "\n".join(",".join(cells) for cells in lines).encode()
        ),
        st.lists(st.lists(cells.map(str), max_size=31), max_size=3).map(
            lambda lines: "\n".join(",".join(cells) for cells in lines).encode()
        ),
        st.binary(max_size=64),
    )
)
@example(body=b"\xff\xfe1,2")
def test_csv_bodies(post: Post, body: bytes) -> None:
    assert_answered(post("/invocations", body, {"content-type": "text/csv"}))


@IN_PROCESS
@given(body=st.lists(json_values.map(encode) | st.binary(max_size=16)).map(b"\n".join))
def test_json_lines_bodies(post: Post, body: bytes) -> None:
    assert_answered(post("/invocations", body, {"content-type": "application/jsonlines"}))


@IN_PROCESS
@given(body=npy_bodies)
@example(body=npy_header("<f8", False, (-1, -2)) + bytes(16))
@example(body=npy_header("<f8", False, (True,)) + bytes(8))
@example(body=npy_header("<f8", False, (1,))[:-8] + b"(((")
def test_npy_bodies(post: Post, body: bytes) -> None:
    assert_answered(post("/invocations", body, {"content-type": "application/x-npy"}))


@IN_PROCESS
@given(
    header_length=st.integers(-5, 400).map(str)
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=5),
    document=documents["v2"],
    binary=st.binary(max_size=64),
)
def test_v2_binary_extension(post: Post, header_length: str, document: Any, binary: bytes) -> None:
    headers = {"content-type": "application/octet-stream"}
    headers["inference-header-content-length"] = header_length
    assert_answered(post(ROUTES["v2"], encode(document) + binary, headers))


def test_pickled_object_arrays_are_refused_unread(post: Post, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    body = saved(np.array([Trap(marker), 1.0], dtype=object))
    assert pickle.loads(body[body.index(b"\x80") :]) is not None  # the trap does work...
    assert marker.exists()
    marker.unlink()
    response = post("/invocations", body, {"content-type": "application/x-npy"})
    assert response.status_code == 400  # ...but the server never springs it
    assert "object arrays are refused" in response.json()["error"]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b"[[1, 2], [3]]", "rows differ in length: 'body[1]' has 1 values"),
        ("application/json", b'{"instances": [["a"]]}', "'instances[0][0]' must be a number"),
        ("application/json", b"[[NaN]]", "body is not valid JSON"),
        ("application/json", b"[[1e999]]", "number is infinity when parsed as double"),
        ("text/csv", b"1," * 29 + b"-1e999", "row 0, feature 29 is infinite"),
        ("text/csv", b"1,2", "expected 30 features per row, got 2"),
        ("application/json", b"", "request body is empty"),
        ("application/json", deeply_nested(5000), "body is not valid JSON"),
        ("text/csv", b"\xff,1", "not valid UTF-8 at byte 0"),
        ("text/csv", b"a,b\n1,2", "CSV line 1, column 1: 'a' is not a number"),
        ("application/x-npy", saved(np.zeros(3, dtype="<U2")), "dtype <U2 is not numeric"),
        ("application/jsonlines", b"[1]\n{", "JSON Lines line 2 is not valid JSON"),
    ],
)
def test_messages_name_the_problem(
    post: Post, content_type: str, body: bytes, expected: str
) -> None:
    response = post("/invocations", body, {"content-type": content_type})
    assert response.status_code == 400
    assert expected in response.json()["error"]


# -- over real HTTP --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def http_post(demo_server: ServerProcess) -> Iterator[Post]:
    with httpx.Client(base_url=demo_server.url, timeout=10) as client:

        def send(path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
            return client.post(path, content=body, headers=headers)

        yield send


bodies_by_type = st.one_of(
    st.tuples(st.just("application/json"), json_values.map(encode)),
    st.tuples(st.just("text/csv"), st.binary(max_size=64)),
    st.tuples(st.just("application/x-npy"), npy_bodies),
    st.tuples(st.just("application/jsonlines"), st.binary(max_size=64)),
)


@OVER_HTTP
@given(protocol=st.sampled_from(sorted(ROUTES)), typed=bodies_by_type)
def test_real_server_answers_hostile_bodies(
    http_post: Post, demo_server: ServerProcess, protocol: str, typed: tuple[str, bytes]
) -> None:
    content_type, body = typed
    assert_answered(http_post(ROUTES[protocol], body, {"content-type": content_type}))
    assert demo_server.process is not None
    assert demo_server.process.poll() is None
    assert status(demo_server, "/ping") == 200
