"""The ceiling: a raw ASGI app that sends bytes compressed once, at start-up."""

from __future__ import annotations

from typing import Any

from bench.peers.common import STATIC_DIR, home_body
from shipshape.codecs import compress

BODY = home_body()
PAGES = {
    "br": compress(BODY, "br", 4),
    "gzip": compress(BODY, "gzip", 6),
    "identity": BODY,
}
FILES = {f"/static/{path.name[:-3]}": path.read_bytes() for path in STATIC_DIR.glob("*.css.br")}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    accept = dict(scope["headers"]).get(b"accept-encoding", b"")
    path = scope["path"]
    if path in FILES and b"br" in accept:
        body, ctype, coding = FILES[path], b"text/css; charset=utf-8", b"br"
    else:
        coding = b"br" if b"br" in accept else (b"gzip" if b"gzip" in accept else b"identity")
        body, ctype = PAGES[coding.decode()], b"text/html; charset=utf-8"
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    if coding != b"identity":
        headers.append((b"content-encoding", coding))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
