"""Compressed request bodies (``Content-Encoding: gzip`` or ``deflate``), decoded within the limit.

Triton's HTTP client compresses requests with ``request_compression_algorithm="gzip"`` or
``"deflate"``; other clients gzip large JSON bodies. The body limit applies to the *decoded*
size: decompression stops one byte past the limit, so a small compressed body cannot make the
server allocate more than the limit (no zip bombs). Any other coding is refused with 415 naming
the ones supported.
"""

from __future__ import annotations

import zlib

from serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

SUPPORTED = ("gzip", "deflate", "identity")
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer
_ZLIB_WBITS = zlib.MAX_WBITS  # RFC 9110 "deflate": the zlib format
_RAW_WBITS = -zlib.MAX_WBITS  # raw DEFLATE, which some clients send as "deflate"
_CHUNK = 64 * 1024


def codings(header: str | None) -> list[str]:
    """The codings of a ``Content-Encoding`` value, in the order they were applied."""
    if header is None:
        return []
    return [c.strip().lower() for c in header.split(",") if c.strip()]


def decode(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` with its content codings undone; 413 past ``limit`` decoded bytes, 415 for a
    coding other than gzip/deflate/identity, 400 for data that is not what the header says."""
    applied = codings(content_encoding)
    for coding in applied:
        if coding not in SUPPORTED:
            raise UnsupportedMediaType(
                f"Content-Encoding {coding!r} is not supported; use {', '.join(SUPPORTED)}"
            )
    for coding in reversed(applied):  # the last coding applied is undone first
        if coding == "gzip":
            body = _inflate(body, _GZIP_WBITS, coding, limit)
        elif coding == "deflate":
            wbits = _ZLIB_WBITS if _looks_like_zlib(body) else _RAW_WBITS
            body = _inflate(body, wbits, coding, limit)
    return body


def _looks_like_zlib(data: bytes) -> bool:
    """A zlib stream starts with a CMF/FLG pair whose 16-bit value is a multiple of 31."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _inflate(data: bytes, wbits: int, coding: str, limit: int) -> bytes:
    """Decompress every member of ``data``, never holding more than ``limit + 1`` bytes."""
    parts: list[bytes] = []
    size = 0
    remaining = data
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            while not inflater.eof:
                # at most one byte past the limit; zlib keeps the rest of the input for later
                chunk = inflater.decompress(remaining, min(_CHUNK, limit + 1 - size))
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"{coding}-decoded body is over the limit of {limit} bytes"
                    )
                parts.append(chunk)
                remaining = inflater.unconsumed_tail
                if not chunk and not remaining:
                    break  # no input left and nothing more comes out: truncated
        except zlib.error as exc:
            raise BadRequest(f"body is not valid {coding} data: {exc}") from None
        if not inflater.eof:
            raise BadRequest(f"body is not valid {coding} data: the stream is truncated")
        remaining = inflater.unused_data
        if not remaining or coding != "gzip":  # gzip allows several members back to back
            break
    return b"".join(parts)
