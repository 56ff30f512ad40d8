"""Static files from a table built once at start-up (WhiteNoise's design, in ASGI).

At start-up the static root is scanned once: every regular file inside it
(symlinks that leave it are skipped) becomes an entry with its headers,
strong ETag and precompressed siblings (``.zst``, ``.br``, ``.gz``) worked
out ahead. A request is then a dict lookup:

* a path not in the table passes on to the app (its 404 page), so ``..``,
  ``%2e%2e``, backslashes, NUL bytes and absolute paths can never name a
  file outside the root: only names found by the scan exist;
* names with a content hash (``app-0123456789abcdef.min.css``) are sent with
  ``Cache-Control: public, max-age=31536000, immutable``; others with
  ``no-cache`` and a strong ETag, so browsers revalidate;
* the best sibling is chosen from ``Accept-Encoding`` q-values
  (:mod:`shipshape.compression.negotiation`), with ``Content-Encoding`` and
  ``Vary: Accept-Encoding``;
* ``If-None-Match`` gets 304 (read by :mod:`shipshape.etags`), one ``Range``
  gets 206 (over the identity bytes), an unsatisfiable one 416; HEAD sends
  the headers only.

Files up to ``memory_limit`` bytes are held in memory; larger ones are read
from disk in chunks off the event loop::

    app.asgi_app = StaticFiles(app.asgi_app, root=Path("static/dist"), prefix="/static/")
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from shipshape import etags
from shipshape.compression import IDENTITY, PREFERENCE, SUFFIXES, choose
from shipshape.responses import error, respond
from shipshape.scope import headers as request_headers
from shipshape.typing import ASGIApp, RawHeaders, Receive, Scope, Send

IMMUTABLE = b"public, max-age=31536000, immutable"  # one year, RFC 8246
REVALIDATE = b"no-cache"
HASHED_RE = re.compile(r"-[0-9a-f]{12,64}(\.min)?\.[A-Za-z0-9]+$")
TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
CHUNK = 64 * 1024
_CODING_ORDER = tuple(c for c in PREFERENCE if c in SUFFIXES)  # as negotiation prefers
# 18 digits cover any file size; a longer number is ignored, never parsed into a huge int.
_RANGE_RE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


@dataclass
class Variant:
    path: Path
    size: int
    etag: bytes
    data: bytes | None  # held in memory, or None to stream from disk


@dataclass
class StaticFile:
    content_type: bytes
    cache_control: bytes
    variants: dict[str, Variant] = field(default_factory=dict)  # coding -> variant
    #: A Content-Security-Policy of its own, in place of the profile's (a service
    #: worker's: its own response's policy governs every request it makes).
    csp: bytes | None = None

    @cached_property
    def codings(self) -> tuple[str, ...]:
        """The precompressed codings, smallest first (the server's order between equals);
        read once the scan is done. A client that accepts several equally gets the
        fewest bytes: Chromium's ``gzip, deflate, br, zstd`` got the zstd sibling of
        the SPA's CSS, 14% larger than the brotli one."""
        found = [c for c in _CODING_ORDER if c in self.variants]
        return tuple(sorted(found, key=lambda c: self.variants[c].size))


def content_type(name: str) -> bytes:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if name.endswith(".js"):
        guessed = "text/javascript"  # RFC 9239
    if guessed.startswith(TEXT_TYPES):
        guessed += "; charset=utf-8"
    return guessed.encode()


def scan(root: Path, *, memory_limit: int) -> dict[str, StaticFile]:
    """Every servable file below ``root``, keyed by its URL path relative to it."""
    root = root.resolve()
    table: dict[str, StaticFile] = {}
    if not root.is_dir():
        return table
    sibling_suffixes = tuple(SUFFIXES.values())
    for folder, _dirs, names in os.walk(root):
        for name in sorted(names):
            path = Path(folder, name)
            real = path.resolve()
            if not real.is_relative_to(root) or not real.is_file():
                continue  # a symlink that leaves the root, or a dangling one
            if name.endswith(sibling_suffixes) and Path(folder, name).with_suffix("").is_file():
                continue  # a precompressed sibling of a file listed on its own
            key = path.relative_to(root).as_posix()
            entry = StaticFile(
                content_type=content_type(name),
                cache_control=IMMUTABLE if HASHED_RE.search(name) else REVALIDATE,
            )
            entry.variants[IDENTITY] = _variant(real, IDENTITY, memory_limit)
            for coding, suffix in SUFFIXES.items():
                sibling = Path(str(path) + suffix)
                if sibling.is_file() and sibling.resolve().is_relative_to(root):
                    entry.variants[coding] = _variant(sibling.resolve(), coding, memory_limit)
            table[key] = entry
    return table


def _variant(path: Path, coding: str, memory_limit: int) -> Variant:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:24]
    suffix = "" if coding == IDENTITY else f"-{coding}"
    return Variant(
        path=path,
        size=len(data),
        etag=f'"{digest}{suffix}"'.encode(),
        data=data if len(data) <= memory_limit else None,
    )


def parse_range(value: str, size: int) -> tuple[int, int] | None | bool:
    """``(start, end)`` inclusive; ``None`` to ignore the header; ``False`` for 416."""
    match = _RANGE_RE.match(value.strip())
    if match is None:
        return None  # several ranges or another unit: send the whole file (RFC 9110 §14.2)
    first, last = match[1], match[2]
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return False
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


@dataclass(frozen=True)
class _Prepared:
    """A variant's response headers, worked out at start-up; never changed, only copied."""

    variant: Variant  # the one they were made for
    plain: RawHeaders
    secure: RawHeaders  # with HSTS, for HTTPS
    length: tuple[bytes, bytes]  # the whole file's Content-Length


_CSP_HEADERS = frozenset({b"content-security-policy", b"content-security-policy-report-only"})

#: The file's headers that a 416 (no part of the file) does not carry.
_NOT_FOR_416 = frozenset((b"content-type", b"cache-control", b"etag"))


class StaticFiles:
    """Serves ``prefix``-ed paths from the table; everything else goes to ``app``.

    Arguments:
        app: the ASGI app to wrap.
        root: the folder to serve (scanned once, now).
        prefix: the URL prefix, such as ``/static/``.
        headers: extra headers for every file (the static security profile).
        hsts: the ``Strict-Transport-Security`` value for HTTPS requests.
        memory_limit: files up to this many bytes are held in memory.
        files: a table :func:`scan` made already (the single-page build's), instead of
            scanning ``root``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        root: Path,
        prefix: str = "/static/",
        headers: Iterable[tuple[str, str]] = (),
        hsts: str | None = None,
        memory_limit: int = 1024 * 1024,
        files: dict[str, StaticFile] | None = None,
    ) -> None:
        self.app = app
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.files = files if files is not None else scan(root, memory_limit=memory_limit)
        self.extra: RawHeaders = [(k.lower().encode(), v.encode()) for k, v in headers]
        self.hsts = hsts.encode() if hsts else None
        # Each variant's headers, worked out once, without and with HSTS.
        self.prepared: dict[int, _Prepared] = {
            id(variant): _Prepared(
                variant,
                self._headers(entry, coding, hsts=False),
                self._headers(entry, coding, hsts=True),
                (b"content-length", str(variant.size).encode()),
            )
            for entry in self.files.values()
            for coding, variant in entry.variants.items()
        }

    def _headers(self, entry: StaticFile, coding: str, *, hsts: bool) -> RawHeaders:
        headers = [*self.extra]
        if entry.csp is not None:
            headers = [(k, entry.csp if k in _CSP_HEADERS else v) for k, v in headers]
        if hsts and self.hsts:
            headers.append((b"strict-transport-security", self.hsts))
        headers += [
            (b"content-type", entry.content_type),
            (b"cache-control", entry.cache_control),
            (b"etag", entry.variants[coding].etag),
            (b"accept-ranges", b"bytes"),
        ]
        if entry.codings:
            headers.append((b"vary", b"Accept-Encoding"))
        if coding != IDENTITY:
            headers.append((b"content-encoding", coding.encode()))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        entry = self.files.get(path[len(self.prefix) :]) if path.startswith(self.prefix) else None
        if entry is None:
            await self.app(scope, receive, send)
            return
        await self.serve(scope, entry, send)

    async def serve(self, scope: Scope, entry: StaticFile, send: Send) -> None:
        method = scope.get("method", "GET")
        secure = self.hsts is not None and scope.get("scheme") == "https"
        if method not in ("GET", "HEAD"):  # a page or JSON that says so, like Quart's 405
            headers = [*self.extra, (b"allow", b"GET, HEAD")]
            await error(scope, send, 405, "method_not_allowed", headers=headers, hsts=self.hsts)
            return

        request = request_headers(scope)
        byte_range = request.get(b"range")
        coding = IDENTITY
        if entry.codings and byte_range is None:
            chosen = choose(request.get(b"accept-encoding"), entry.codings)
            # Nothing acceptable: identity all the same, as for any static server.
            coding = chosen or IDENTITY
        variant = entry.variants[coding]
        prepared = self.prepared.get(id(variant))
        if prepared is not None and prepared.variant is not variant:
            prepared = None  # the table's variant was replaced after start-up
        if prepared is not None:
            base = prepared.secure if secure else prepared.plain
        else:  # an entry added to the table after start-up
            base = self._headers(entry, coding, hsts=secure)

        none_match = request.get(b"if-none-match")
        # Only a conditional request reads the tags: one without the header pays nothing.
        if none_match is not None and etags.weak_match(
            etags.parse(none_match), variant.etag.decode("latin-1")
        ):
            await respond(send, 304, list(base), b"")
            return

        if byte_range is None and variant.data is not None and prepared is not None:
            # The whole file from memory, the common case: every header worked out.
            headers = [*base, prepared.length]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            body = b"" if method == "HEAD" else variant.data
            await send({"type": "http.response.body", "body": body})
            return

        headers = list(base)
        start, end, status = 0, variant.size - 1, 200
        if byte_range is not None:
            if_range = request.get(b"if-range")
            parsed = (
                parse_range(byte_range, variant.size)
                if if_range is None or if_range.strip().encode("latin-1") == variant.etag
                else None
            )
            if parsed is False:
                # No file in this answer, and none for a cache to keep: a 416 stored a
                # year as the file's URL would break the file for everyone.
                headers = [h for h in headers if h[0] not in _NOT_FOR_416]
                headers += [
                    (b"cache-control", b"no-store"),
                    (b"content-range", f"bytes */{variant.size}".encode()),
                    (b"content-length", b"0"),
                ]
                await respond(send, 416, headers, b"")
                return
            if isinstance(parsed, tuple):
                start, end, status = parsed[0], parsed[1], 206
                headers.append((b"content-range", f"bytes {start}-{end}/{variant.size}".encode()))
        length = max(end - start + 1, 0)
        headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if method == "HEAD" or length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        if variant.data is not None:
            await send({"type": "http.response.body", "body": variant.data[start : end + 1]})
            return
        await _stream(send, variant.path, start, length)


async def _stream(send: Send, path: Path, start: int, length: int) -> None:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK, remaining))
            if not chunk:  # the file shrank under us: end the body short
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:
            await send({"type": "http.response.body", "body": b""})
