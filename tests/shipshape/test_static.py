from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from shipshape.compression import compress, decompress
from shipshape.static import StaticFiles, content_type, parse_range, scan
from tests.shipshape.conftest import Exchange, MakeApp, asgi_call, recorder

BODY = b"".join(b".rule-%d{color:red}\n" % i for i in range(400))
HASHED = "site-0123456789abcdef.min.css"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A static folder with real precompressed siblings, a plain file and traps."""
    folder = tmp_path / "static"
    (folder / "img").mkdir(parents=True)
    (folder / HASHED).write_bytes(BODY)
    for coding, suffix in (("br", ".br"), ("gzip", ".gz"), ("zstd", ".zst")):
        (folder / (HASHED + suffix)).write_bytes(compress(BODY, coding, 9))
    (folder / "robots.txt").write_bytes(b"User-agent: *\n")
    (folder / "img" / "logo.svg").write_bytes(b"<svg/>")
    (folder / "archive.gz").write_bytes(b"\x1f\x8b not a sibling")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret")
    os.symlink(secret, folder / "leak.txt")
    os.symlink(folder / "robots.txt", folder / "robots-link.txt")
    return folder


async def get(
    root: Path,
    path: str,
    *,
    method: str = "GET",
    memory_limit: int = 1024 * 1024,
    **headers: str,
) -> Exchange:
    inner, seen = recorder()
    app = StaticFiles(
        inner,
        root=root,
        prefix="/static/",
        headers=[("X-Content-Type-Options", "nosniff")],
        hsts="max-age=63072000",
        memory_limit=memory_limit,
    )
    pairs = [(k.replace("_", "-"), v) for k, v in headers.items()]
    return await asgi_call(app, seen, path=path, method=method, headers=pairs)


def test_scan_lists_files_not_siblings_or_escapes(root: Path) -> None:
    table = scan(root, memory_limit=0)
    assert sorted(table) == [
        "archive.gz",
        "img/logo.svg",
        "robots-link.txt",
        "robots.txt",
        HASHED,
    ]
    assert table[HASHED].codings == ("zstd", "br", "gzip")
    assert scan(root / "missing", memory_limit=0) == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.css", b"text/css; charset=utf-8"),
        ("a.js", b"text/javascript; charset=utf-8"),
        ("a.svg", b"image/svg+xml; charset=utf-8"),
        ("a.json", b"application/json; charset=utf-8"),
        ("a.woff2", b"font/woff2"),
        ("a.unknownext", b"application/octet-stream"),
    ],
)
def test_content_types(name: str, expected: bytes) -> None:
    assert content_type(name) == expected


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        (None, None),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip", "gzip"),
        ("br;q=0, zstd;q=0, gzip", "gzip"),
        ("identity", None),
        ("*;q=0", None),  # nothing acceptable: a static file is still sent as it is
        ("deflate", None),
    ],
)
async def test_negotiation(root: Path, accept: str | None, coding: str | None) -> None:
    path = f"/static/{HASHED}"
    result = await (
        get(root, path, Accept_Encoding=accept) if accept is not None else get(root, path)
    )
    assert result.status == 200
    assert result.headers.get("content-encoding") == coding
    assert result.headers["vary"] == "Accept-Encoding"
    body = decompress(result.body, coding) if coding else result.body
    assert body == BODY
    assert int(result.headers["content-length"]) == len(result.body)
    assert result.seen is None, "served before the app"


async def test_hashed_files_are_immutable_and_others_revalidate(root: Path) -> None:
    hashed = await get(root, f"/static/{HASHED}")
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    plain = await get(root, "/static/robots.txt")
    assert plain.headers["cache-control"] == "no-cache"
    assert plain.headers["etag"].startswith('"') and "vary" not in plain.headers
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in plain.headers


async def test_variants_have_their_own_etags_and_304(root: Path) -> None:
    br = await get(root, f"/static/{HASHED}", Accept_Encoding="br")
    plain = await get(root, f"/static/{HASHED}")
    assert br.headers["etag"] != plain.headers["etag"]
    for etag, accept in ((br.headers["etag"], "br"), (plain.headers["etag"], "identity")):
        again = await get(root, f"/static/{HASHED}", If_None_Match=etag, Accept_Encoding=accept)
        assert again.status == 304 and again.body == b""
        assert again.headers["etag"] == etag
    weak = await get(root, f"/static/{HASHED}", If_None_Match=f"W/{plain.headers['etag']}, x")
    assert weak.status == 304
    other = await get(root, f"/static/{HASHED}", If_None_Match='"nope"')
    assert other.status == 200


@pytest.mark.parametrize(
    ("header", "status", "expected", "content_range"),
    [
        ("bytes=0-9", 206, BODY[:10], f"bytes 0-9/{len(BODY)}"),
        ("bytes=10-", 206, BODY[10:], f"bytes 10-{len(BODY) - 1}/{len(BODY)}"),
        ("bytes=-5", 206, BODY[-5:], f"bytes {len(BODY) - 5}-{len(BODY) - 1}/{len(BODY)}"),
        ("bytes=5-999999", 206, BODY[5:], f"bytes 5-{len(BODY) - 1}/{len(BODY)}"),
        (f"bytes={len(BODY)}-", 416, b"", f"bytes */{len(BODY)}"),
        ("bytes=9-3", 416, b"", f"bytes */{len(BODY)}"),
        ("bytes=-0", 416, b"", f"bytes */{len(BODY)}"),
        ("bytes=0-1,5-6", 200, BODY, None),  # several ranges: the whole file
        ("items=0-1", 200, BODY, None),
        ("bytes=-", 200, BODY, None),
    ],
)
async def test_ranges(
    root: Path, header: str, status: int, expected: bytes, content_range: str | None
) -> None:
    result = await get(root, f"/static/{HASHED}", Range=header, Accept_Encoding="br")
    assert result.status == status
    assert result.body == expected
    assert result.headers.get("content-range") == content_range
    assert "content-encoding" not in result.headers, "ranges are over the identity bytes"
    if status == 416:  # no file here, and nothing for a cache to keep for a year
        assert result.headers["cache-control"] == "no-store"
        assert "content-type" not in result.headers and "etag" not in result.headers


async def test_if_range(root: Path) -> None:
    etag = (await get(root, f"/static/{HASHED}")).headers["etag"]
    fresh = await get(root, f"/static/{HASHED}", Range="bytes=0-3", If_Range=etag)
    stale = await get(root, f"/static/{HASHED}", Range="bytes=0-3", If_Range='"old"')
    assert (fresh.status, stale.status) == (206, 200)


async def test_head_and_other_methods(root: Path) -> None:
    head = await get(root, f"/static/{HASHED}", method="HEAD", Accept_Encoding="br")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) == len(compress(BODY, "br", 9))
    post = await get(root, f"/static/{HASHED}", method="POST")
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"
    # Regression (hostile-input probe): an empty 405 with no type, unlike Quart's and the SPA's.
    assert post.headers["content-type"] == "text/html; charset=utf-8"
    assert b"This address does not accept that method." in post.body
    as_json = await get(root, f"/static/{HASHED}", method="DELETE", Accept="application/json")
    assert as_json.headers["content-type"] == "application/json"
    assert b'"code":"method_not_allowed"' in as_json.body


async def test_large_files_stream_from_disk(root: Path) -> None:
    big = await get(root, f"/static/{HASHED}", memory_limit=10)
    assert big.body == BODY
    part = await get(root, f"/static/{HASHED}", memory_limit=10, Range="bytes=100-199")
    assert part.body == BODY[100:200]


async def test_hsts_only_over_https(root: Path) -> None:
    inner, seen = recorder()
    app = StaticFiles(inner, root=root, hsts="max-age=1")
    https = await asgi_call(app, seen, path="/static/robots.txt", scheme="https")
    assert https.headers["strict-transport-security"] == "max-age=1"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/img/../../secret.txt",
        "/static/..\\secret.txt",
        "/static/robots.txt\x00.png",
        "/static//etc/passwd",
        "/static/leak.txt",
        f"/static/{HASHED}.br",
        "/static/img",
        "/static/",
        "/static",
        "/staticx/robots.txt",
        "/static/ROBOTS.TXT",
    ],
)
async def test_nothing_escapes_the_root(root: Path, path: str) -> None:
    result = await get(root, path)
    assert result.seen is not None, "not a static file: the app answers (its 404)"
    assert result.body == b"ok"


async def test_symlink_inside_the_root_is_served(root: Path) -> None:
    assert (await get(root, "/static/robots-link.txt")).body == b"User-agent: *\n"


async def test_non_http_scopes_pass_through(root: Path) -> None:
    inner, seen = recorder()
    await asgi_call(StaticFiles(inner, root=root), seen, scope_type="lifespan")
    assert seen[-1]["type"] == "lifespan"


def test_parse_range_edge_cases() -> None:
    assert parse_range("bytes=0-0", 0) is False
    assert parse_range("bytes=-5", 0) is False
    assert parse_range("bytes=-500", 10) == (0, 9)


async def test_through_the_whole_stack_static_files_skip_dynamic_compression(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: static files sat inside the compression middleware.

    A file with no precompressed sibling was recompressed on every request and
    its strong ETag came back weakened; ``identity;q=0`` got the compression
    middleware's 406 before the static fallback could run.
    """
    (tmp_path / "manifest.json").write_text("{}")
    plain = b"body { color: red; }\n" * 100  # compressible, no sibling
    (tmp_path / "plain.css").write_bytes(plain)
    hashed = "app-0123456789abcdef.min.js"
    script = b"console.log('shipshape');\n" * 100
    (tmp_path / hashed).write_bytes(script)
    (tmp_path / (hashed + ".br")).write_bytes(compress(script, "br", 11))

    def no_compression_per_request(*args: object) -> bytes:
        raise AssertionError("a static file was compressed per request")

    monkeypatch.setattr("shipshape.compression.middleware.compress", no_compression_per_request)
    monkeypatch.setattr("shipshape.compression.middleware.encoder", no_compression_per_request)
    app = make_app()
    async with app.test_app():
        client = app.test_client()
        response = await client.get("/static/plain.css", headers={"Accept-Encoding": "br, gzip"})
        assert response.status_code == 200
        assert "Content-Encoding" not in response.headers
        assert await response.get_data() == plain
        etag = response.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/"), "the strong ETag is kept"
        again = await client.get("/static/plain.css", headers={"If-None-Match": etag})
        assert again.status_code == 304

        forbidden = await client.get(
            f"/static/{hashed}", headers={"Accept-Encoding": "identity;q=0"}
        )
        assert forbidden.status_code == 200, "the static fallback answers, not a 406"
        assert await forbidden.get_data() == script

        br = await client.get(f"/static/{hashed}", headers={"Accept-Encoding": "br"})
        assert br.headers["Content-Encoding"] == "br"
        assert decompress(await br.get_data(as_text=False), "br") == script


async def test_head_over_https_gets_the_get_headers_with_hsts(root: Path) -> None:
    inner, seen = recorder()
    app = StaticFiles(inner, root=root, prefix="/static/", hsts="max-age=63072000")
    brotli = [("Accept-Encoding", "br")]
    path = f"/static/{HASHED}"
    full = await asgi_call(app, seen, path=path, scheme="https", headers=brotli)
    head = await asgi_call(app, seen, path=path, method="HEAD", scheme="https", headers=brotli)
    assert head.body == b"" and full.body == compress(BODY, "br", 9)
    assert head.raw_headers == full.raw_headers
    assert head.headers["strict-transport-security"] == "max-age=63072000"
    assert head.headers["content-length"] == str(len(full.body))


async def test_the_headers_worked_out_at_start_up_are_never_changed(root: Path) -> None:
    """Each response gets its own copy: a layer outside that edits one changes no other."""
    inner, seen = recorder()
    app = StaticFiles(inner, root=root, prefix="/static/")
    first = await asgi_call(app, seen, path="/static/robots.txt")
    first.raw_headers.append((b"x-added", b"by a layer outside"))
    second = await asgi_call(app, seen, path="/static/robots.txt")
    assert (b"x-added", b"by a layer outside") not in second.raw_headers
    assert second.headers["content-length"] == "14"


async def test_a_variant_replaced_after_start_up_gets_its_own_headers(root: Path) -> None:
    inner, seen = recorder()
    app = StaticFiles(inner, root=root, prefix="/static/")
    entry = app.files["robots.txt"]
    old = entry.variants["identity"]
    entry.variants["identity"] = replace(old, size=5, etag=b'"new"', data=b"hello")
    response = await asgi_call(app, seen, path="/static/robots.txt")
    assert response.body == b"hello"
    assert response.headers["etag"] == '"new"' and response.headers["content-length"] == "5"
