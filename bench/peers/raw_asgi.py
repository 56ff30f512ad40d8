"""The ceiling: a raw ASGI app that sends bytes compressed once, at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.peers.common import home_body, static_dir
from shipshape.compression import compress

RawApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def create_app() -> RawApp:
    page = home_body()
    pages = {
        "br": compress(page, "br", 4),
        "gzip": compress(page, "gzip", 6),
        "identity": page,
    }
    files = {
        f"/static/{path.name[:-3]}": path.read_bytes() for path in static_dir().glob("*.css.br")
    }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        accept = dict(scope["headers"]).get(b"accept-encoding", b"")
        path = scope["path"]
        if path in files and b"br" in accept:
            body, ctype, coding = files[path], b"text/css; charset=utf-8", b"br"
        else:
            coding = b"br" if b"br" in accept else (b"gzip" if b"gzip" in accept else b"identity")
            body, ctype = pages[coding.decode()], b"text/html; charset=utf-8"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
        if coding != b"identity":
            headers.append((b"content-encoding", coding))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
