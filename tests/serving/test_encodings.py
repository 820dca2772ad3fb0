"""Content codings of request bodies: decoded within the limit, or refused precisely."""

from __future__ import annotations

import gzip
import zlib

import pytest

from serving.encodings import SUPPORTED, decode
from serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

BODY = b'{"instances": [[1, 2, 3]]}' * 50


@pytest.mark.parametrize(
    ("header", "encoded"),
    [
        (None, BODY),
        ("identity", BODY),
        ("gzip", gzip.compress(BODY)),
        ("GZIP", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),  # RFC 9110: the zlib format
        ("deflate", zlib.compress(BODY, wbits=-15)),  # raw DEFLATE, as some clients send it
        ("gzip, deflate", zlib.compress(gzip.compress(BODY))),  # applied in order
        ("gzip", gzip.compress(BODY[:600]) + gzip.compress(BODY[600:])),  # two gzip members
    ],
    ids=["none", "identity", "gzip", "GZIP", "deflate-zlib", "deflate-raw", "stacked", "members"],
)
def test_decodes(header: str | None, encoded: bytes) -> None:
    assert decode(encoded, header, limit=len(BODY)) == BODY


def test_the_limit_applies_to_the_decoded_size() -> None:
    bomb = gzip.compress(b"0" * 10_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooLarge, match="gzip-decoded body is over the limit of 1000 bytes"):
        decode(bomb, "gzip", limit=1000)
    assert decode(gzip.compress(b"0" * 1000), "gzip", limit=1000) == b"0" * 1000


def test_the_limit_holds_across_gzip_members() -> None:
    two = gzip.compress(b"1" * 600) + gzip.compress(b"2" * 600)
    with pytest.raises(PayloadTooLarge):
        decode(two, "gzip", limit=1000)


@pytest.mark.parametrize("header", ["br", "compress", "gzip, zstd"])
def test_unknown_coding_is_415_naming_the_supported_ones(header: str) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        decode(BODY, header, limit=10_000)
    assert raised.value.status == 415
    for coding in SUPPORTED:
        assert coding in raised.value.message


@pytest.mark.parametrize(
    ("header", "data"),
    [
        ("gzip", BODY),  # not compressed at all
        ("gzip", gzip.compress(BODY)[:-9]),  # truncated
        ("deflate", b"\x00\x01\x02garbage"),
        ("gzip", b""),
    ],
    ids=["gzip-plain", "gzip-truncated", "deflate-garbage", "gzip-empty"],
)
def test_data_that_is_not_what_the_header_says_is_400(header: str, data: bytes) -> None:
    with pytest.raises(BadRequest, match=f"not valid {header} data"):
        decode(data, header, limit=10_000)
