"""A bare ASGI app that returns a constant: the HTTP limit of the stack our server runs on."""

from __future__ import annotations

from typing import Any

BODY = b'{"prediction":0,"confidence":0.99}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":  # read the body like a real server would
        message = await receive()
        while message.get("more_body"):
            message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
