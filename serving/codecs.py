"""Decoding request bodies into 2-D float arrays and encoding predictions, with precise errors.

Fast paths hand the whole payload to numpy; only when that fails does a slow pass look for the
first bad value so that the error names its row and column.
"""

from __future__ import annotations

import io
import math
import tokenize
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from numpy.lib import format as npy_format

from serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
JSONLINES = "application/jsonlines"
INPUT_TYPES = (JSON, CSV, NPY, JSONLINES)
_NPY_HEADERS = {
    (1, 0): npy_format.read_array_header_1_0,
    (2, 0): npy_format.read_array_header_2_0,
}
OUTPUT_TYPES = (JSON, CSV, NPY, JSONLINES)


def media_type(header: str | None, default: str = JSON) -> str:
    """The bare media type of a Content-Type or Accept value (``text/csv; charset=utf-8``)."""
    if not header:
        return default
    return header.split(";", 1)[0].strip().lower() or default


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The best of ``offered`` for an ``Accept`` header, honouring q-values and wildcards.

    No header, or an empty one, means the first offered type; 406 when it allows none.
    """
    if not accept or not accept.strip():
        return offered[0]
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not 0 < quality <= 1:
            continue
        kind = media.split("/", 1)[0] + "/"
        match = next(
            (
                o
                for o in offered
                if media == o or media == "*/*" or (media.endswith("/*") and o.startswith(kind))
            ),
            None,
        )
        if match is not None and (best is None or (quality, -position) > best[:2]):
            best = (quality, -position, match)
    if best is None:
        raise NotAcceptable(
            f"Accept {accept!r} allows none of the types this route produces: {', '.join(offered)}"
        )
    return best[2]


def parse_json(body: bytes) -> Any:
    """Parse a JSON body or raise 400 saying where it is broken."""
    if not body:
        raise BadRequest("request body is empty; expected a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def to_rows(value: Any, *, field: str, feature_names: Sequence[str] | None = None) -> np.ndarray:
    """Turn a JSON value (rows of numbers, one flat row, or rows of objects) into a 2-D float array.

    ``null`` becomes NaN (a missing value); whether NaN is allowed is the model's decision.
    """
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = _objects_to_rows(value, field=field, feature_names=feature_names)
    try:
        array = np.asarray(value)
        # numpy would turn "1.5" into 1.5: only nulls and big integers may leave the fast path
        if array.dtype.kind not in "biuf" and (
            array.dtype.kind != "O" or any(isinstance(cell, str) for cell in array.flat)
        ):
            raise TypeError("not numbers")
        array = array.astype(np.float64, copy=False)
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(_explain_bad_rows(value, field)) from None
    if array.ndim == 1:
        if array.size == 0:
            raise BadRequest(f"'{field}' is empty; send at least one row of numbers")
        array = array.reshape(1, -1)
    elif array.ndim != 2:
        raise BadRequest(
            f"'{field}' must be a list of rows of numbers (2-D) or one row (1-D), "
            f"got {array.ndim}-D data of shape {list(array.shape)}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise BadRequest(f"'{field}' is empty; send at least one row of numbers")
    return array


def _objects_to_rows(
    rows: list[Any], *, field: str, feature_names: Sequence[str] | None
) -> list[list[Any]]:
    if not feature_names:
        raise BadRequest(
            f"'{field}' holds objects, but the model has no feature names; send lists of numbers"
        )
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(f"'{field}[{i}]' must be an object like '{field}[0]'")
        missing = [name for name in feature_names if name not in row]
        if missing:
            raise BadRequest(f"'{field}[{i}]' lacks feature(s) {missing[:5]}")
        extra = [key for key in row if key not in feature_names]
        if extra:
            raise BadRequest(f"'{field}[{i}]' has unknown feature(s) {extra[:5]}")
        out.append([row[name] for name in feature_names])
    return out


def _explain_bad_rows(value: Any, field: str) -> str:
    if not isinstance(value, list):
        return f"'{field}' must be a list of rows of numbers, got {json_type(value)}"
    if not value:
        return f"'{field}' is empty; send at least one row of numbers"
    flat = not isinstance(value[0], list)
    rows = [value] if flat else value
    width = None
    for i, row in enumerate(rows):
        where = field if flat else f"{field}[{i}]"
        if not isinstance(row, list):
            return f"'{where}' must be a list of numbers, got {json_type(row)}"
        if width is None:
            width = len(row)
        elif len(row) != width:
            return f"rows differ in length: '{where}' has {len(row)} values, the first row {width}"
        for j, cell in enumerate(row):
            if cell is None or isinstance(cell, bool | int | float):
                if isinstance(cell, int) and abs(cell) > 2**1023:
                    return f"'{where}[{j}]' is too large for a 64-bit float"
                continue
            return f"'{where}[{j}]' must be a number, got {json_type(cell)} {_short(cell)}"
    return f"'{field}' must be a list of rows of numbers"


def json_type(value: Any) -> str:
    """How a JSON value is named in error messages ("a string", "an object", ...)."""
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def rows_from_csv(body: bytes) -> np.ndarray:
    """Rows of comma-separated numbers, no header; an empty field is a missing value (NaN)."""
    try:
        text = body.decode("utf-8-sig")  # spreadsheets start CSV files with a byte order mark
    except UnicodeDecodeError as exc:
        raise BadRequest(f"text/csv body is not valid UTF-8 at byte {exc.start}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise BadRequest("text/csv body has no rows")
    cells = [[cell.strip() or "nan" for cell in line.split(",")] for line in lines]
    width = len(cells[0])
    for i, row in enumerate(cells):
        if len(row) != width:
            raise BadRequest(f"CSV line {i + 1} has {len(row)} values, line 1 has {width}")
    try:
        return np.asarray(cells, dtype=np.float64)
    except (ValueError, OverflowError):
        pass
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                hint = " (send CSV without a header row)" if i == 0 else ""
                raise BadRequest(
                    f"CSV line {i + 1}, column {j + 1}: {_short(cell)} is not a number{hint}"
                ) from None
    raise BadRequest("text/csv body could not be read as numbers")  # pragma: no cover


def rows_from_npy(body: bytes) -> np.ndarray:
    """A ``.npy`` array of booleans or numbers.

    The header is checked before any data is touched: object (pickled) arrays are refused unread,
    and the data must be exactly as long as the header's shape says (no allocation on its word).
    """
    if not body:
        raise BadRequest("application/x-npy body is empty")
    if body.startswith(b"PK\x03\x04"):
        raise BadRequest("application/x-npy body must hold one array, not an .npz archive")
    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        read_header = _NPY_HEADERS.get(version)
        if read_header is None:
            raise ValueError(f"format version {version} is not supported; use 1.0 or 2.0")
        shape, fortran_order, dtype = read_header(stream)
    except (ValueError, SyntaxError, tokenize.TokenError) as exc:  # numpy re-parses bad headers
        raise BadRequest(f"application/x-npy body is not a valid .npy array: {exc}") from None
    if not all(type(n) is int and n >= 0 for n in shape):  # numpy's header check allows these
        raise BadRequest(
            f"application/x-npy: the header's shape {list(shape)} must hold integers >= 0"
        )
    if dtype.hasobject:
        raise BadRequest(
            "application/x-npy: object arrays are refused (pickled data is never loaded); "
            "send a numeric array"
        )
    if dtype.kind not in "biuf":
        raise BadRequest(
            f"application/x-npy: dtype {dtype} is not numeric; send bool, int or float data"
        )
    data = memoryview(body)[stream.tell() :]
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise BadRequest(
            f"application/x-npy: the header's shape {list(shape)} of {dtype} needs "
            f"{expected} bytes of data, the body has {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype)
    array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    return to_rows(array.astype(np.float64), field="array")


def rows_from_jsonlines(body: bytes) -> np.ndarray:
    """One row per line: a list of numbers, or an object with ``features``."""
    rows: list[Any] = []
    for i, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"JSON Lines line {i + 1} is not valid JSON: {exc}") from None
        if isinstance(value, dict):
            if "features" not in value:
                raise BadRequest(f"JSON Lines line {i + 1}: object without 'features'")
            value = value["features"]
        rows.append(value)
    if not rows:
        raise BadRequest("application/jsonlines body has no rows")
    return to_rows(rows, field="lines")


def encode_json(document: Any) -> bytes:
    """Serialise a response document (numpy arrays allowed)."""
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_rows(
    predictions: Any, accept: str | None, *, json_document: bool = False
) -> tuple[bytes, str]:
    """Encode per-row predictions (an array or a list) as ``accept`` asks (406 if it allows
    none of :data:`OUTPUT_TYPES`).

    JSON is a bare list, as SageMaker's framework containers answer (their encoders'
    ``json.dumps(array.tolist())``); ``json_document`` wraps it as ``{"predictions": [...]}``.
    ``.npy`` is ``numpy.save`` of the array, never pickled."""
    out_type = negotiate(accept, OUTPUT_TYPES)
    rows = predictions.tolist() if isinstance(predictions, np.ndarray) else predictions
    if out_type == CSV:
        lines = [",".join(map(str, row)) if isinstance(row, list) else str(row) for row in rows]
        return ("\n".join(lines) + "\n").encode(), CSV
    if out_type == JSONLINES:
        return b"".join(orjson.dumps(row) + b"\n" for row in rows), JSONLINES
    if out_type == NPY:
        return _npy(predictions), NPY
    return encode_json({"predictions": rows} if json_document else rows), JSON


def _npy(predictions: Any) -> bytes:
    """``numpy.save`` bytes of the predictions; refused (406) when only a pickle could hold them."""
    array = np.asarray(predictions)
    if array.dtype.hasobject:  # labels held as Python objects (strings): as a unicode array
        array = np.asarray(array.tolist())
    buffer = io.BytesIO()
    try:
        np.save(buffer, array, allow_pickle=False)
    except ValueError:
        raise NotAcceptable(
            "these predictions are Python objects that .npy can hold only as a pickle; "
            "ask for application/json"
        ) from None
    return buffer.getvalue()


def check_content_type(content_type: str, allowed: Sequence[str]) -> None:
    """Raise 415 naming the allowed types unless ``content_type`` is one of them."""
    if content_type not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported here; use one of {', '.join(allowed)}"
        )
