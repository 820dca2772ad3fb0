"""Unit tests of ``serving.codecs``: bodies to rows, predictions to bodies, precise 4xx errors."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pytest

from serving import codecs
from serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType


def npy(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("text/CSV; charset=utf-8", "text/csv"),
        (" application/x-npy ", "application/x-npy"),
    ],
)
def test_media_type(header: str | None, expected: str) -> None:
    assert codecs.media_type(header) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, codecs.JSON),
        ("  ", codecs.JSON),
        ("*/*", codecs.JSON),
        ("text/csv", codecs.CSV),
        ("TEXT/CSV", codecs.CSV),
        ("text/*", codecs.CSV),
        ("text/html, application/jsonlines", codecs.JSONLINES),
        ("application/json;q=0.2, text/csv;q=0.8", codecs.CSV),
        ("text/csv;q=0.5, application/jsonlines;q=0.5", codecs.CSV),
        ("application/*;q=0.9, application/jsonlines", codecs.JSONLINES),
        ("text/csv;q=0, */*;q=0.1", codecs.JSON),
        ("text/csv;q=oops, application/json", codecs.JSON),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert codecs.negotiate(accept, codecs.OUTPUT_TYPES) == expected


@pytest.mark.parametrize("accept", ["text/html", "image/*", "text/csv;q=0", "application/xml"])
def test_negotiate_refuses_what_it_cannot_produce(accept: str) -> None:
    with pytest.raises(
        NotAcceptable, match="application/json, text/csv, application/x-npy, application/jsonlines"
    ):
        codecs.negotiate(accept, codecs.OUTPUT_TYPES)


def test_parse_json() -> None:
    assert codecs.parse_json(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    with pytest.raises(BadRequest, match="empty"):
        codecs.parse_json(b"")
    with pytest.raises(BadRequest, match="not valid JSON"):
        codecs.parse_json(b'{"a": ')
    with pytest.raises(BadRequest, match="not valid JSON"):
        codecs.parse_json(b"[" * 5000 + b"]" * 5000)


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ([1, 2, 3], (1, 3)),
        ([[1, 2], [3, 4]], (2, 2)),
        ([[True, 0.5]], (1, 2)),
        ([[None, 1]], (1, 2)),
    ],
)
def test_to_rows_shapes(value: Any, shape: tuple[int, int]) -> None:
    rows = codecs.to_rows(value, field="instances")
    assert rows.shape == shape
    assert rows.dtype == np.float64


def test_to_rows_null_is_nan() -> None:
    assert np.isnan(codecs.to_rows([[None, 1]], field="x")[0, 0])


def test_to_rows_objects_follow_the_feature_order() -> None:
    rows = codecs.to_rows([{"b": 2, "a": 1}], field="instances", feature_names=["a", "b"])
    np.testing.assert_array_equal(rows, [[1.0, 2.0]])


@pytest.mark.parametrize(
    ("value", "names", "message"),
    [
        ("1,2", None, "'instances' must be a list of rows of numbers, got a string"),
        ({"a": 1}, None, "'instances' must be a list of rows of numbers, got an object"),
        ([], None, "'instances' is empty"),
        ([[]], None, "'instances' is empty"),
        ([[1, 2], [3]], None, "rows differ in length: 'instances[1]' has 1 values"),
        ([[1, "x"]], None, "'instances[0][1]' must be a number, got a string 'x'"),
        ([[1, "1.5"]], None, "'instances[0][1]' must be a number, got a string '1.5'"),
        ([[None, "nan"]], None, "'instances[0][1]' must be a number, got a string 'nan'"),
        ([1, "x"], None, "'instances[1]' must be a number, got a string 'x'"),
        ([[1], 2], None, "'instances[1]' must be a list of numbers, got a number"),
        ([[[1]]], None, "got 3-D data"),
        ([[10**400]], None, "'instances[0][0]' is too large for a 64-bit float"),
        ([{"a": 1}], None, "the model has no feature names"),
        ([{"a": 1}], ["a", "b"], "'instances[0]' lacks feature(s) ['b']"),
        ([{"a": 1, "b": 2, "c": 3}], ["a", "b"], "'instances[0]' has unknown feature(s) ['c']"),
        ([{"a": 1, "b": 2}, [1, 2]], ["a", "b"], "'instances[1]' must be an object"),
    ],
)
def test_to_rows_errors_name_the_place(value: Any, names: list[str] | None, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        codecs.to_rows(value, field="instances", feature_names=names)
    assert message in info.value.message


def test_csv_with_a_byte_order_mark() -> None:
    np.testing.assert_array_equal(codecs.rows_from_csv(b"\xef\xbb\xbf1,2\n"), [[1.0, 2.0]])


def test_csv_rows() -> None:
    rows = codecs.rows_from_csv(b"1,2.5,-3e2\r\n4, ,6\n\n")
    assert rows.shape == (2, 3)
    assert rows[0].tolist() == [1.0, 2.5, -300.0]
    assert np.isnan(rows[1, 1])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "text/csv body has no rows"),
        (b"\n \n", "text/csv body has no rows"),
        (
            b"a,b\n1,2\n",
            "CSV line 1, column 1: 'a' is not a number (send CSV without a header row)",
        ),
        (b"1,2\n3,x\n", "CSV line 2, column 2: 'x' is not a number"),
        (b"1,2\n3\n", "CSV line 2 has 1 values, line 1 has 2"),
        (b"1,\xff\n", "text/csv body is not valid UTF-8 at byte 2"),
    ],
)
def test_csv_errors(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        codecs.rows_from_csv(body)
    assert info.value.message == message


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint32, np.float16, np.float64])
def test_npy_numeric(dtype: Any) -> None:
    array = np.ones((3, 4), dtype=dtype)
    rows = codecs.rows_from_npy(npy(array))
    assert rows.dtype == np.float64
    np.testing.assert_array_equal(rows, np.ones((3, 4)))


def test_npy_keeps_order_and_byte_order() -> None:
    array = np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3))
    np.testing.assert_array_equal(codecs.rows_from_npy(npy(array)), [[0, 1, 2], [3, 4, 5]])


def test_npy_object_array_is_refused() -> None:
    body = npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(BadRequest, match="object arrays are refused"):
        codecs.rows_from_npy(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is empty"),
        (b"not numpy", "not a valid .npy array: the magic string is not correct"),
        (
            npy(np.ones((2, 3)))[:-1],
            "shape [2, 3] of float64 needs 48 bytes of data, the body has 47",
        ),
        (
            npy(np.ones((2, 3))).replace(b"(2, 3)", b"(1000000000, 30)"),
            "shape [1000000000, 30] of float64 needs 240000000000 bytes",
        ),
        (npy(np.array([["a", "b"]])), "dtype <U1 is not numeric"),
        (npy(np.ones(2, dtype=np.complex64)), "dtype complex64 is not numeric"),
        (npy(np.ones((2, 2, 2))), "got 3-D data"),
    ],
)
def test_npy_errors(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        codecs.rows_from_npy(body)
    assert message in info.value.message


def test_npz_archive_is_refused() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.ones(2))
    with pytest.raises(BadRequest, match=r"one array, not an \.npz archive"):
        codecs.rows_from_npy(buffer.getvalue())


def test_jsonlines() -> None:
    rows = codecs.rows_from_jsonlines(b'[1, 2]\n\n{"features": [3, 4]}\n')
    np.testing.assert_array_equal(rows, [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "application/jsonlines body has no rows"),
        (b"[1, 2]\n[3,\n", "JSON Lines line 2 is not valid JSON"),
        (b'{"rows": [1]}\n', "JSON Lines line 1: object without 'features'"),
        (b'[1, 2]\n["a", 2]\n', "'lines[1][0]' must be a number"),
    ],
)
def test_jsonlines_errors(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        codecs.rows_from_jsonlines(body)
    assert message in info.value.message


def test_encode_rows_in_every_output_type() -> None:
    """JSON a bare list unless the document shape is asked for; ``.npy`` as ``np.save`` writes
    it (aws/sagemaker-inference-toolkit ``encoder.py``: ``_array_to_json``, ``_array_to_npy``)."""
    labels = [0, 1]
    probabilities = [[0.25, 0.75], [1.0, 0.0]]
    assert codecs.encode_rows(labels, None) == (b"[0,1]", codecs.JSON)
    assert codecs.encode_rows(np.array(labels), None, json_document=True) == (
        b'{"predictions":[0,1]}',
        codecs.JSON,
    )
    for value in (
        np.array(probabilities),
        probabilities,
        np.array(["setosa", "virginica"], object),
    ):
        body, kind = codecs.encode_rows(value, "application/x-npy")
        assert kind == codecs.NPY
        expected = io.BytesIO()
        np.save(expected, np.asarray(np.asarray(value).tolist()), allow_pickle=False)
        assert body == expected.getvalue()
        assert np.load(io.BytesIO(body), allow_pickle=False).tolist() == np.asarray(value).tolist()
    assert codecs.encode_rows(labels, "text/csv") == (b"0\n1\n", codecs.CSV)
    assert codecs.encode_rows(probabilities, "text/csv") == (b"0.25,0.75\n1.0,0.0\n", codecs.CSV)
    body, kind = codecs.encode_rows(probabilities, "application/jsonlines")
    assert kind == codecs.JSONLINES
    assert [orjson.loads(line) for line in body.splitlines()] == probabilities
    with pytest.raises(NotAcceptable):
        codecs.encode_rows(labels, "text/html")


def test_encode_json_takes_numpy() -> None:
    assert codecs.encode_json({"p": np.array([1.5, 2.0])}) == b'{"p":[1.5,2.0]}'


def test_check_content_type() -> None:
    codecs.check_content_type(codecs.JSON, (codecs.JSON,))
    with pytest.raises(UnsupportedMediaType, match="'text/plain' is not supported here"):
        codecs.check_content_type("text/plain", (codecs.JSON, codecs.CSV))
