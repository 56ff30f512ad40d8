"""Small ASGI helpers shared by the middleware."""

from __future__ import annotations

import json

from shipshape.typing import Send

Headers = list[tuple[bytes, bytes]]


async def respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a whole response: the start message, then the body in one piece."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def error(
    send: Send, status: int, code: str, message: str, headers: Headers | None = None
) -> None:
    """An error answered before the app runs, in the app's JSON error shape."""
    body = json.dumps({"error": status, "code": code, "message": message}).encode()
    await respond(
        send,
        status,
        [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
            *(headers or []),
        ],
        body,
    )
