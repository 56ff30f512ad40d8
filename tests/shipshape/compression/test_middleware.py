from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Sequence
from typing import Any

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from shipshape.compression import CompressionMiddleware, decompress
from shipshape.typing import ASGIApp, Message, Receive, Scope, Send

HTML = b"".join(b"<p>Row %d of the catalogue, with some text.</p>\n" % i for i in range(300))


def app_sending(
    chunks: Sequence[bytes],
    *,
    content_type: bytes = b"text/html; charset=utf-8",
    status: int = 200,
    length: bool = True,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", content_type), *extra]
        if length:
            headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


async def call(
    app: ASGIApp,
    accept: str | None,
    *,
    method: str = "GET",
    path: str = "/",
    scheme: str = "http",
    extra: Sequence[tuple[bytes, bytes]] = (),
    **options: Any,
) -> tuple[int, dict[str, str], bytes, list[Message]]:
    middleware = CompressionMiddleware(app, **options)
    headers = [(b"accept-encoding", accept.encode())] if accept is not None else []
    headers += extra
    scope: Scope = {
        "type": "http", "method": method, "path": path, "scheme": scheme, "headers": headers
    }  # fmt: skip
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await middleware(scope, receive, send)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return (
        start["status"],
        {k.decode().lower(): v.decode() for k, v in start["headers"]},
        body,
        messages,
    )


def decode(body: bytes, coding: str | None) -> bytes:
    return body if coding is None else decompress(body, coding)


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip", "deflate"])
@pytest.mark.parametrize("size", [0, 499, 500, 20_000, 3 * 1024 * 1024])
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    "content_type", [b"text/html; charset=utf-8", b"application/json", b"image/png"]
)
async def test_round_trip(coding: str, size: int, chunked: bool, content_type: bytes) -> None:
    data = (HTML * (size // len(HTML) + 1))[:size]
    chunks = [data[i : i + 7000] for i in range(0, len(data), 7000)] if chunked else [data]
    app = app_sending(chunks or [b""], content_type=content_type, length=not chunked)
    status, headers, body, _ = await call(app, coding, thread_threshold=1024 * 1024)
    compressible = content_type != b"image/png"
    # A stream's size is unknown up front, so any compressible stream is compressed.
    expected = coding if compressible and (chunked or size >= 500) else None
    assert status == 200
    assert headers.get("content-encoding") == expected
    assert decode(body, expected) == data
    if expected and not chunked:
        assert int(headers["content-length"]) == len(body) < len(data)
    if expected and chunked:
        assert "content-length" not in headers
    if compressible:
        assert headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, deflate, br", "br"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("deflate", "deflate"),
        ("br;q=0, gzip", "gzip"),
        (None, None),
        ("", None),
        ("identity", None),
        ("compress", None),
        ("br;q=abc", None),
        ("gzip;q=2", None),
        ("br, br;q=0", "br"),
        ("x" * 10_000, None),
    ],
)
async def test_negotiation(accept: str | None, coding: str | None) -> None:
    status, headers, body, _ = await call(app_sending([HTML]), accept)
    assert status == 200
    assert headers.get("content-encoding") == coding
    assert decode(body, coding) == HTML


@pytest.mark.parametrize("accept", ["identity;q=0", "*;q=0", "gzip;q=0, identity;q=0"])
async def test_nothing_acceptable_is_406_before_the_app_runs(accept: str) -> None:
    ran = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ran.append(scope)

    status, headers, body, _ = await call(app, accept, path="/api/things")
    assert status == 406 and not ran
    assert headers["content-type"] == "application/json"
    assert headers["vary"] == "Accept-Encoding"
    assert b'"not_acceptable"' in body


@pytest.mark.parametrize(
    ("path", "accept", "content_type"),
    [
        ("/page", "text/html,*/*;q=0.8", "text/html; charset=utf-8"),
        ("/page", None, "text/html; charset=utf-8"),
        ("/page", "application/json", "application/json"),
        ("/api/x", "text/html", "application/json"),
    ],
)
async def test_406_is_html_or_json_as_the_app_errors_are(
    path: str, accept: str | None, content_type: str
) -> None:
    extra = [(b"accept", accept.encode())] if accept is not None else []
    status, headers, body, _ = await call(
        app_sending([b"x" * 1000]), "identity;q=0", path=path, extra=extra
    )
    assert status == 406
    assert headers["content-type"] == content_type
    if content_type.startswith("text/html"):
        assert b"<h1>Not acceptable</h1>" in body
    # Regression (found by tests/app/test_fuzz.py): JSON errors made before Quart had no CSP.
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("scheme", "hsts"), [("https", "max-age=60"), ("http", None)])
async def test_406_over_https_carries_hsts(scheme: str, hsts: str | None) -> None:
    """Regression (found by tests/app/test_fuzz.py): a 406 over HTTPS had no HSTS, since it
    is answered outside the layer that adds it."""
    status, headers, _, _ = await call(
        app_sending([b"x" * 1000]), "identity;q=0, *;q=0", scheme=scheme, hsts=b"max-age=60"
    )
    assert status == 406
    assert headers.get("strict-transport-security") == hsts


@pytest.mark.parametrize(
    ("lines", "coding"),
    [
        ([b"identity;q=0", b"br"], "br"),
        ([b"gzip", b"br;q=0.5"], "gzip"),
        ([b"br;q=0", b"zstd;q=0", b"gzip"], "gzip"),
    ],
)
async def test_repeated_accept_encoding_lines_read_as_one_header(
    lines: list[bytes], coding: str
) -> None:
    """Regression: a second line was joined as ``b'br'`` (bytes in a str) and read as junk."""
    extra = [(b"accept-encoding", line) for line in lines]
    status, headers, body, _ = await call(app_sending([HTML]), None, extra=extra)
    assert status == 200
    assert headers["content-encoding"] == coding
    assert decode(body, coding) == HTML


@pytest.mark.parametrize(
    ("status", "extra", "content_type"),
    [
        (204, [], b"text/html"),
        (206, [(b"content-range", b"bytes 0-99/1000")], b"text/html"),
        (304, [], b"text/html"),
        (200, [(b"content-encoding", b"br")], b"text/html"),
        (200, [(b"cache-control", b"public, No-Transform")], b"text/html"),
        (200, [], b"application/octet-stream"),
        (200, [], b""),
    ],
)
async def test_left_untouched(
    status: int, extra: list[tuple[bytes, bytes]], content_type: bytes
) -> None:
    app = app_sending([HTML], status=status, extra=extra, content_type=content_type)
    got_status, headers, body, _ = await call(app, "br")
    assert got_status == status
    assert body == HTML
    assert headers.get("content-encoding") == dict(extra).get(
        b"content-encoding", b""
    ).decode() or ("content-encoding" not in headers)
    assert "vary" not in headers


async def test_head_gets_get_headers_and_no_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/html"), (b"content-length", b"15000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    status, headers, body, _ = await call(app, "gzip", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert "content-length" not in headers


@pytest.mark.parametrize("chunks", [[HTML], [HTML[:700], HTML[700:]]])
async def test_head_drops_an_app_body_it_would_label_encoded(chunks: list[bytes]) -> None:
    """Regression (review): an app (Quart) that sends a HEAD's body had its identity
    bytes passed on under ``Content-Encoding: gzip``."""
    status, headers, body, messages = await call(app_sending(chunks), "gzip", method="HEAD")
    assert (status, headers["content-encoding"], body) == (200, "gzip", b"")
    assert messages[-1] == {"type": "http.response.body", "body": b""}
    assert len(messages) == 2


@pytest.mark.parametrize(("etag", "expected"), [(b'"abc"', 'W/"abc"'), (b'W/"abc"', 'W/"abc"')])
async def test_etag_is_weakened(etag: bytes, expected: str) -> None:
    extra = [(b"etag", etag), (b"accept-ranges", b"bytes"), (b"vary", b"Cookie")]
    _, headers, _, _ = await call(app_sending([HTML], extra=extra), "br")
    assert headers["etag"] == expected
    assert headers["vary"] == "Cookie, Accept-Encoding"
    assert "accept-ranges" not in headers


@pytest.mark.parametrize(
    ("vary", "expected"), [(b"*", "*"), (b"accept-encoding", "accept-encoding")]
)
async def test_vary_is_not_repeated(vary: bytes, expected: str) -> None:
    _, headers, _, _ = await call(app_sending([HTML], extra=[(b"vary", vary)]), "br")
    assert headers["vary"] == expected


async def test_small_declared_body_is_sent_as_is_with_vary() -> None:
    _, headers, body, _ = await call(app_sending([b"tiny"]), "br")
    assert body == b"tiny" and "content-encoding" not in headers
    assert headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize("header", ["br, identity;q=0", "br, *;q=0", "*;q=0, br;q=0.5"])
@pytest.mark.parametrize("length", [True, False])
async def test_a_small_body_is_encoded_when_identity_is_refused(header: str, length: bool) -> None:
    """The client said it cannot read identity: the minimum size does not apply."""
    _, headers, body, _ = await call(app_sending([b"tiny", b""], length=length), header)
    assert headers["content-encoding"] == "br"
    assert decompress(body, "br") == b"tiny"


async def test_declared_length_that_lies_small_is_still_correct() -> None:
    # Quart sends its body as a chunk plus an empty final message.
    app = app_sending([b"x" * 100, b""], length=True)
    _, headers, body, _ = await call(app, "br")
    assert body == b"x" * 100 and "content-encoding" not in headers


async def test_server_sent_events_arrive_before_the_stream_ends() -> None:
    release = asyncio.Event()
    first_seen = asyncio.Event()
    received: list[bytes] = []
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": False})

    middleware = CompressionMiddleware(app)
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"accept-encoding", b"gzip")],
    }

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            received.append(decoder.decompress(message["body"]))
            first_seen.set()

    task = asyncio.create_task(middleware(scope, receive, send))
    await asyncio.wait_for(first_seen.wait(), 2)
    assert b"".join(received) == b"data: one\n\n", "the first event is readable at once"
    assert not task.done()
    release.set()
    await task
    assert b"".join(received) == b"data: one\n\ndata: two\n\n"


async def test_large_bodies_are_compressed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = asyncio.to_thread

    async def spy(func: object, *args: object) -> object:
        calls.append(getattr(func, "__name__", "?"))
        return await real(func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "to_thread", spy)
    big = HTML * 100
    _, _, body, _ = await call(app_sending([big]), "br", thread_threshold=10_000)
    assert brotli.decompress(body) == big
    _, _, body, _ = await call(app_sending([big], length=False), "zstd", thread_threshold=10_000)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(body) == big
    assert calls == ["compress", "_encode"]


def test_unknown_codings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown codings"):
        CompressionMiddleware(app_sending([b""]), codings=["lzma"])


async def test_non_http_scopes_pass_through() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    await CompressionMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == [{"type": "lifespan"}]


async def test_gzip_output_is_standard() -> None:
    _, _, body, _ = await call(app_sending([HTML]), "gzip")
    assert gzip.decompress(body) == HTML


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
async def test_any_accept_encoding_gets_a_sane_answer(accept: str) -> None:
    status, headers, body, _ = await call(app_sending([HTML]), accept)
    assert status in (200, 406)
    if status == 200:
        assert decode(body, headers.get("content-encoding")) == HTML


async def test_a_body_shorter_than_declared_is_sent_as_is() -> None:
    # The app declared 2,000 bytes but sent 10: too small to compress, passed on whole.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/html"), (b"content-length", b"2000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"0123456789"})

    _, headers, body, _ = await call(app, "br")
    assert body == b"0123456789" and "content-encoding" not in headers


@pytest.mark.parametrize(
    ("levels", "coding", "expected"),
    [
        ({}, "br", brotli.compress(HTML, quality=3)),  # the default for dynamic bodies
        ({"br": 4}, "br", brotli.compress(HTML, quality=4)),
        ({"br": 11}, "br", brotli.compress(HTML, quality=11)),
        ({}, "zstd", zstandard.ZstdCompressor(level=3).compress(HTML)),
        ({"zstd": 19}, "zstd", zstandard.ZstdCompressor(level=19).compress(HTML)),
        ({"gzip": 1, "br": 11}, "deflate", zlib.compress(HTML, 6)),  # others keep defaults
    ],
)
async def test_levels_are_the_ones_configured(
    levels: dict[str, int], coding: str, expected: bytes
) -> None:
    _, headers, body, _ = await call(app_sending([HTML]), coding, levels=levels)
    assert headers["content-encoding"] == coding
    assert body == expected
