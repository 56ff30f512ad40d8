"""Response compression as plain ASGI: zstd, br, gzip or deflate, negotiated and streamed.

Where Flask-Compress and Starlette's ``GZipMiddleware`` fall short, this:

* negotiates with q-values, ``*``, ``identity`` and ``q=0`` (RFC 9110
  §12.5.3, in :mod:`shipshape.compression.negotiation`), preferring zstd, br, gzip, deflate;
  when the client forbids every coding *and* identity, it answers 406 before
  the app runs, so nothing is processed for a response nobody can read;
* compresses only worthwhile types (HTML, CSS, JS, JSON, XML, SVG, text,
  server-sent events) above ``minimum_size`` bytes (any size when the client
  forbids identity), and never 204, 206 or 304
  responses, bodies that already have a ``Content-Encoding``, or responses
  marked ``Cache-Control: no-transform``;
* sets ``Vary: Accept-Encoding`` (merged with the app's), weakens a strong
  ETag (the bytes differ from the identity ones), and drops
  ``Accept-Ranges`` and, when streaming, ``Content-Length``;
* a response that declares its length (up to ``buffer_limit``) is compressed
  in one shot with an exact ``Content-Length``; any other is compressed chunk
  by chunk with a flush after each, so server-sent events stay live;
* work on more than ``thread_threshold`` bytes runs in a worker thread, so
  the event loop never stalls on a large body;
* HEAD responses carry the headers a GET would, with no body.

Levels are tuned for dynamic content (see ``bench/``); the static build
precompresses at the maximum levels instead::

    app.asgi_app = CompressionMiddleware(app.asgi_app, minimum_size=500)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from shipshape.compression.codings import (
    DYNAMIC_LEVELS,
    PREFERENCE,
    StreamEncoder,
    checked_levels,
    compress,
    encoder,
)
from shipshape.compression.negotiation import IDENTITY, accept_encoding, choose, identity_refused
from shipshape.responses import error
from shipshape.typing import ASGIApp, Message, Receive, Scope, Send

COMPRESSIBLE_TYPES = (
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "text/xml",
    "text/csv",
    "text/event-stream",
    "application/javascript",
    "application/json",
    "application/problem+json",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/manifest+json",
    "image/svg+xml",
)
MINIMUM_SIZE = 500  # bytes: below this, headers and framing outweigh the saving
THREAD_THRESHOLD = 1024 * 1024  # bytes compressed at once before moving off the loop
BUFFER_LIMIT = 4 * 1024 * 1024  # declared lengths up to this are compressed in one shot
_NO_BODY_STATUSES = frozenset({204, 206, 304})


class CompressionMiddleware:
    """Compresses eligible responses; see the module docstring.

    Arguments:
        app: the ASGI app to wrap.
        minimum_size: bodies with fewer bytes are sent as they are.
        levels: the level of each coding, merged over :data:`DYNAMIC_LEVELS`;
            ValueError for an unknown coding or a level out of its range.
        types: media types worth compressing.
        thread_threshold: compress more bytes than this in a worker thread.
        buffer_limit: largest declared ``Content-Length`` compressed in one shot.
        codings: the codings offered, in order of preference.
        api_prefix: paths whose errors (a 406) are JSON whatever the client accepts.
        hsts: the ``Strict-Transport-Security`` value for a 406 over HTTPS, which
            never reaches the security headers inside.
        refusal_headers: the 406's profile (the security headers' API one), for the
            same reason.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = MINIMUM_SIZE,
        levels: Mapping[str, int] = DYNAMIC_LEVELS,
        types: Iterable[str] = COMPRESSIBLE_TYPES,
        thread_threshold: int = THREAD_THRESHOLD,
        buffer_limit: int = BUFFER_LIMIT,
        codings: Iterable[str] = PREFERENCE,
        api_prefix: str = "/api/",
        hsts: bytes | None = None,
        refusal_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.refusal_headers = list(refusal_headers)
        self.minimum_size = minimum_size
        self.levels = checked_levels(levels)
        self.types = frozenset(types)
        self.thread_threshold = thread_threshold
        self.buffer_limit = buffer_limit
        self.codings = tuple(codings)
        self.api_prefix = api_prefix
        unknown = set(self.codings) - set(DYNAMIC_LEVELS)
        if unknown:
            raise ValueError(f"unknown codings {sorted(unknown)}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = accept_encoding(scope)
        coding = choose(header, self.codings)
        if coding is None:
            await error(
                scope,
                send,
                406,
                "not_acceptable",
                "Accept-Encoding forbids every coding this server can send, identity included.",
                api_prefix=self.api_prefix,
                headers=[*self.refusal_headers, (b"vary", b"Accept-Encoding")],
                hsts=self.hsts,
            )
            return
        responder = _Responder(
            self,
            coding,
            head=scope.get("method") == "HEAD",
            send=send,
            # A small body sent as it is would be one the client refused.
            minimum_size=0 if identity_refused(header) else self.minimum_size,
        )
        await self.app(scope, receive, responder.send)


class _Responder:
    """Per-response state: what was started, what is buffered, which encoder runs."""

    def __init__(
        self,
        middleware: CompressionMiddleware,
        coding: str,
        *,
        head: bool,
        send: Send,
        minimum_size: int,
    ) -> None:
        self.mw = middleware
        self.coding = coding
        self.head = head
        self.downstream = send
        self.start: Message = {}
        self.mode = "pass"  # pass | buffer | stream | head
        self.buffer: list[bytes] = []
        self.encoder: StreamEncoder | None = None  # set when a stream starts
        self.headers_sent = False
        #: Bodies with fewer bytes go as they are.
        self.minimum_size = minimum_size

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._on_start(message)
            if self.mode in ("pass", "head"):
                await self.downstream(message)
            return
        if kind != "http.response.body" or self.mode == "pass":
            await self.downstream(message)
            return
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if self.mode == "head":
            if not more:
                await self.downstream({"type": "http.response.body", "body": b""})
            return
        if self.mode == "buffer":
            self.buffer.append(body)
            if not more:
                await self._send_buffered()
            return
        await self._send_streamed(body, more)

    def _on_start(self, message: Message) -> None:
        headers = {k.lower(): v for k, v in message.get("headers", ())}
        media = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1")
        eligible = (
            message["status"] >= 200
            and message["status"] not in _NO_BODY_STATUSES
            and media.lower() in self.mw.types
            and b"content-encoding" not in headers
            and b"no-transform" not in headers.get(b"cache-control", b"").lower()
        )
        if not eligible:
            return
        self.start = message
        if self.coding == IDENTITY:
            _merge_vary(message)  # the answer would differ for another Accept-Encoding
            return
        declared = headers.get(b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if length is not None and length < self.minimum_size:
            _merge_vary(message)
            return
        if self.head:
            # A GET's headers, and no body: the app's would be the identity bytes.
            self._encoded_headers(message, length=None)
            self.mode = "head"
            return
        if length is not None and length <= self.mw.buffer_limit:
            self.mode = "buffer"
        else:
            self.mode = "stream"
            self.encoder = encoder(self.coding, self.mw.levels[self.coding])

    def _encoded_headers(self, message: Message, *, length: int | None) -> None:
        headers = [
            (k, v)
            for k, v in message.get("headers", ())
            if k.lower() not in (b"content-length", b"accept-ranges")
        ]
        for index, (name, value) in enumerate(headers):
            if name.lower() == b"etag" and not value.startswith(b"W/"):
                headers[index] = (name, b"W/" + value)  # RFC 9110 §8.8.3: not byte-identical
        headers.append((b"content-encoding", self.coding.encode()))
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        message["headers"] = headers
        _merge_vary(message)

    async def _send_buffered(self) -> None:
        body = b"".join(self.buffer)
        self.buffer.clear()
        if len(body) < self.minimum_size:
            _merge_vary(self.start)
            await self.downstream(self.start)
            await self.downstream({"type": "http.response.body", "body": body})
            return
        level = self.mw.levels[self.coding]
        if len(body) > self.mw.thread_threshold:
            compressed = await asyncio.to_thread(compress, body, self.coding, level)
        else:
            compressed = compress(body, self.coding, level)
        self._encoded_headers(self.start, length=len(compressed))
        await self.downstream(self.start)
        await self.downstream({"type": "http.response.body", "body": compressed})

    async def _send_streamed(self, body: bytes, more: bool) -> None:
        if not self.headers_sent:
            self.headers_sent = True
            self._encoded_headers(self.start, length=None)
            await self.downstream(self.start)
        if len(body) > self.mw.thread_threshold:
            chunk = await asyncio.to_thread(self._encode, body, more)
        else:
            chunk = self._encode(body, more)
        await self.downstream({"type": "http.response.body", "body": chunk, "more_body": more})

    def _encode(self, body: bytes, more: bool) -> bytes:
        if self.encoder is None:  # pragma: no cover - _on_start sets it for every stream
            raise RuntimeError("no stream was started")
        data = self.encoder.feed(body) if body else b""
        # A flush per chunk keeps a stream live; the last one closes it.
        return data + (self.encoder.flush() if more else self.encoder.finish())


def _merge_vary(message: Message) -> None:
    headers = list(message.get("headers", ()))
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"accept-encoding" not in tokens and b"*" not in tokens:
                headers[index] = (name, value + b", Accept-Encoding")
            break
    else:
        headers.append((b"vary", b"Accept-Encoding"))
    message["headers"] = headers
