"""The serving blueprint against a small fixture build (tests/shipshape/conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quart import Quart, request
from quart.sessions import SessionInterface

from shipshape.compression import decompress
from shipshape.config import ConfigError
from shipshape.csrf import SESSION_KEY, unmask
from shipshape.sessions import CookieSessions
from shipshape.spa import SPAError, accepts_html, is_odd_path, main, prepare_index
from shipshape.typing import Message
from tests.conftest import client_of
from tests.shipshape.conftest import (
    SPA_CHUNK,
    SPA_SCRIPT,
    SPA_SCRIPT_BODY,
    SPA_STYLE,
    MakeApp,
    asgi_call,
    asgi_of,
    http_scope,
    recorder,
    write_spa_build,
)

NAVIGATE = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
NONCE_RE = re.compile(r"'nonce-([^']+)'")
HTTPS = {"Host": "app.example"}
META_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@pytest.fixture(autouse=True)
def asset_manifest(tmp_path: Path) -> None:
    """make_app serves tmp_path as its asset folder, whose manifest start-up checks."""
    (tmp_path / "manifest.json").write_text("{}")


@pytest.fixture
def spa_app(make_app: MakeApp, spa_build: Path) -> Quart:
    """An app with server-rendered routes beside the frontend mounted at /app."""
    app = make_app(SHIPSHAPE_SPA_DIR=str(spa_build), SHIPSHAPE_SPA_MOUNT="/app")
    add_routes(app)
    return app


def add_routes(app: Quart) -> None:
    @app.get("/")
    async def home() -> str:
        return "<!doctype html><title>home</title><p>server-rendered"

    @app.post("/form")
    async def form() -> dict[str, Any]:
        return {"saved": True}

    @app.get("/api/things")
    async def things() -> dict[str, Any]:
        return {"items": []}


async def get(app: Quart, path: str, *, method: str = "GET", **headers: str) -> Any:
    """One request through the whole stack; ``Accept_Encoding=`` names ``Accept-Encoding``."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    async with app.test_app():
        return await client_of(app).open(path, method=method, headers=named)


def nonces_in(html: str, tag: str) -> list[str | None]:
    found = []
    for match in re.finditer(rf"<{tag}\b([^>]*)>", html):
        nonce = re.search(r'nonce="([^"]*)"', match[1])
        found.append(nonce[1] if nonce else None)
    return found


@pytest.mark.parametrize(
    "path", ["/app", "/app/", "/app/things/new", "/app/things/0d5c/edit", "/app/things/"]
)
async def test_deep_links_get_the_index_with_a_fresh_nonce_everywhere(
    spa_app: Quart, path: str
) -> None:
    async with spa_app.test_app():
        client = spa_app.test_client()
        first = await client.get(path, headers=NAVIGATE)
        second = await client.get(path, headers=NAVIGATE)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "text/html; charset=utf-8"
    html = await first.get_data(as_text=True)
    nonce = NONCE_RE.search(first.headers["Content-Security-Policy"])
    assert nonce is not None
    scripts, styles = nonces_in(html, "script"), nonces_in(html, "style")
    assert scripts and styles and set(scripts) | set(styles) == {nonce[1]}
    links = {
        re.search(r'rel="(\w+)"', tag)[1]: re.search(r'nonce="([^"]*)"', tag)  # type: ignore[index]
        for tag in re.findall(r"<link\b[^>]*>", html)
    }
    assert links["stylesheet"] and links["stylesheet"][1] == nonce[1]
    assert links["modulepreload"] and links["modulepreload"][1] == nonce[1]
    assert links["icon"] is None, "an icon needs no nonce"
    assert f'<meta property="csp-nonce" nonce="{nonce[1]}" />' in html, "Vite's placeholder"
    assert "PLACEHOLDER" not in html
    other = NONCE_RE.search(second.headers["Content-Security-Policy"])
    assert other is not None and other[1] != nonce[1]
    assert other[1] in await second.get_data(as_text=True)


async def test_the_index_carries_the_page_profile_and_no_cache(spa_app: Quart) -> None:
    response = await get(spa_app, "/app/things", **NAVIGATE)
    headers = response.headers
    assert headers["Cache-Control"] == "no-cache, private"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Permissions-Policy"].startswith("accelerometer=()")
    csp = headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; script-src 'self' 'nonce-")
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "report-to csp" in csp and headers["Reporting-Endpoints"] == 'csp="/csp-report"'
    assert len(headers["X-Request-ID"]) == 32, "the request log wraps the index too"
    assert "Strict-Transport-Security" not in headers, "not over plain HTTP"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-Fetch-Dest": "document", "Accept": "*/*"}, 200),
        ({"Sec-Fetch-Dest": "iframe"}, 200),
        ({"Sec-Fetch-Dest": "empty", "Accept": "text/html"}, 404),  # fetch() of the page
        ({"Sec-Fetch-Dest": "script"}, 404),
        ({"Sec-Fetch-Dest": "image", "Accept": "text/html,image/*"}, 404),
        ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, 200),  # no fetch metadata
        ({"Accept": "text/html;q=0.5"}, 200),
        ({"Accept": "text/html;q=0, */*"}, 404),
        ({"Accept": "text/html;q=x"}, 404),
        ({"Accept": "application/json"}, 404),
        ({"Accept": "*/*"}, 404),
        ({}, 404),
    ],
)
async def test_only_a_navigation_gets_the_index(
    spa_app: Quart, headers: dict[str, str], status: int
) -> None:
    response = await get(spa_app, "/app/things/new", **headers)
    assert response.status_code == status
    body = await response.get_data(as_text=True)
    assert ('<div id="app">' in body) is (status == 200)
    if status == 404:
        assert "Sec-Fetch-Dest" not in response.headers.get("Vary", "")
        assert response.headers["Cache-Control"] == "no-store"


async def test_a_json_client_gets_a_json_404(spa_app: Quart) -> None:
    response = await get(spa_app, "/app/things/1", Accept="application/json")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    body = json.loads(await response.get_data())
    # A JSON client has no home page to start again from: the app's own JSON 404's words.
    assert body == {
        "error": 404, "code": "not_found", "message": "There is nothing at this address."
    }  # fmt: skip
    outside = await get(spa_app, "/nowhere", Accept="application/json")
    assert outside.status_code == 404
    assert json.loads(await outside.get_data()) == body
    assert response.headers["X-Frame-Options"] == outside.headers["X-Frame-Options"] == "DENY"


async def test_an_html_404_keeps_the_way_home_and_is_not_framed(spa_app: Quart) -> None:
    response = await get(spa_app, "/app/missing.js", Accept="text/html")
    assert response.status_code == 404
    assert "start again from the home page" in await response.get_data(as_text=True)
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]
    # The static profile's own CSP and nosniff give way to the error's, never doubled.
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    csp = response.headers.getlist("Content-Security-Policy")
    assert csp == ["default-src 'none'; frame-ancestors 'none'"]
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin", "plain headers"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize(
    "path",
    [
        "/app/assets/index-OLDHASH1.js",  # a chunk of the previous deploy
        "/app/assets/things",
        "/app/assets",
        "/app/assets/",
        "/app/missing.js",
        "/app/missing.js/",  # SPA probe: the trailing slash got the index
        "/app/things/photo.png",
        "/app/index.htm",
    ],
)
async def test_a_missing_file_is_a_404_even_for_a_navigation(spa_app: Quart, path: str) -> None:
    response = await get(spa_app, path, **NAVIGATE)
    assert response.status_code == 404
    assert '<div id="app">' not in await response.get_data(as_text=True)


async def test_index_html_itself_is_the_rendered_index(spa_app: Quart) -> None:
    response = await get(spa_app, "/app/index.html", **NAVIGATE)
    assert response.status_code == 200
    assert "PLACEHOLDER" not in await response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/app/../secret.txt",
        "/app/%2e%2e/secret.txt",
        "/app/..%2fsecret.txt",
        "/app/assets/../../secret.txt",
        "/app/..\\secret.txt",
        "/app/..",
        "/app/things/../..",
        "/app/./things",
        "/app/robots.txt\x00.png",
        "/app/things\x00",
        "/app//etc/passwd",
        "/app/leak.txt",  # a symlink out of the build
        f"/app/{SPA_SCRIPT}.br",  # a sibling is never named directly
        "/app/.vite/manifest.json",  # hidden files are not part of the site
        "/app/ROBOTS.TXT",
        "/app/things\\new",
    ],
)
async def test_nothing_escapes_the_build(spa_app: Quart, path: str) -> None:
    inner, seen = recorder()
    headers = [("Host", "localhost"), *NAVIGATE.items()]
    response = await asgi_call(asgi_of(spa_app), seen, path=path, headers=headers)
    assert response.status == 404
    assert b"top secret" not in response.body and b'<div id="app">' not in response.body


@pytest.mark.parametrize(
    ("name", "content_type", "cache"),
    [
        ("favicon.svg", "image/svg+xml; charset=utf-8", "no-cache"),
        ("manifest.webmanifest", "application/manifest+json", "no-cache"),
        ("robots.txt", "text/plain; charset=utf-8", "no-cache"),
        ("service-worker.js", "text/javascript; charset=utf-8", "no-cache"),
        ("logo-0123456789abcdef.png", "image/png", "public, max-age=31536000, immutable"),
        (SPA_SCRIPT, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
        (SPA_STYLE, "text/css; charset=utf-8", "public, max-age=31536000, immutable"),
    ],
)
async def test_build_files_and_root_resources(
    spa_app: Quart, spa_build: Path, name: str, content_type: str, cache: str
) -> None:
    # A file is a file for any request: scripts fetch chunks, browsers fetch icons.
    response = await get(spa_app, f"/app/{name}", Accept="*/*", Sec_Fetch_Dest="script")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == cache
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert await response.get_data() == (spa_build / name).read_bytes()
    # Regression (SPA probe): a service worker obeys its own response's CSP, and the
    # static profile's default-src 'none' refused every request it made.
    csp = response.headers["Content-Security-Policy"]
    if name == "service-worker.js":
        assert csp == "default-src 'none'; connect-src 'self'; script-src 'self'"
    else:
        assert csp.startswith("default-src 'none'") and "connect-src" not in csp


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        # Regression (SPA probe): Chromium got zstd where brotli was smaller.
        ("gzip, deflate, br, zstd", "smallest"),
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip", "gzip"),
        ("identity", None),
        ("identity;q=0", None),  # nothing acceptable: the file as it is, not a 406
    ],
)
async def test_build_files_are_precompressed(
    spa_app: Quart, spa_build: Path, accept: str, coding: str | None
) -> None:
    if coding == "smallest":  # of the siblings the client accepts equally
        sizes = {c: (spa_build / f"{SPA_SCRIPT}{x}").stat().st_size
                 for c, x in (("br", ".br"), ("gzip", ".gz"), ("zstd", ".zst"))}  # fmt: skip
        coding = min(sizes, key=sizes.__getitem__)
        assert sizes[coding] < sizes["zstd"], "the fixture tells the two orders apart"
    async with spa_app.test_app():
        client = spa_app.test_client()
        response = await client.get(f"/app/{SPA_SCRIPT}", headers={"Accept-Encoding": accept})
        assert response.status_code == 200
        assert response.headers.get("Content-Encoding") == coding
        assert response.headers["Vary"] == "Accept-Encoding"
        body = await response.get_data(as_text=False)
        assert (decompress(body, coding) if coding else body) == SPA_SCRIPT_BODY
        etag = response.headers["ETag"]
        assert not etag.startswith("W/"), "dynamic compression never touched it"
        again = await client.get(
            f"/app/{SPA_SCRIPT}", headers={"Accept-Encoding": accept, "If-None-Match": etag}
        )
        assert again.status_code == 304
        part = await client.get(f"/app/{SPA_SCRIPT}", headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and await part.get_data() == SPA_SCRIPT_BODY[:10]


async def test_the_index_is_compressed_like_a_page(spa_app: Quart) -> None:
    response = await get(spa_app, "/app/things", Accept_Encoding="br", **NAVIGATE)
    assert response.headers["Content-Encoding"] == "br"
    html = decompress(await response.get_data(), "br").decode()
    nonce = NONCE_RE.search(response.headers["Content-Security-Policy"])
    assert nonce is not None and f'nonce="{nonce[1]}"' in html
    assert "Accept-Encoding" in response.headers["Vary"] and "Cookie" in response.headers["Vary"]


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip", "deflate"])
async def test_the_index_is_compressed_once_not_per_response(
    spa_app: Quart, coding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each response splices its nonce and token into the index compressed at start-up,
    with the headers the compression layer would have sent."""

    def refuse(*args: object) -> bytes:
        raise AssertionError("the index was compressed per response")

    monkeypatch.setattr("shipshape.compression.middleware.compress", refuse)
    async with spa_app.test_app():  # a new client each time: each response sets a session
        plain = await spa_app.test_client().get(
            "/app/things", headers={**NAVIGATE, "Accept-Encoding": "identity"}
        )
        responses = [
            await spa_app.test_client().get(
                "/app/things", headers={**NAVIGATE, "Accept-Encoding": coding}
            )
            for _ in range(2)
        ]
    pages = []
    for response in responses:
        assert response.status_code == 200 and response.headers["Content-Encoding"] == coding
        body = await response.get_data(as_text=False)
        assert int(response.headers["Content-Length"]) == len(body)
        html = decompress(body, coding).decode()
        nonce = NONCE_RE.search(response.headers["Content-Security-Policy"])
        assert nonce is not None
        assert set(nonces_in(html, "script")) | set(nonces_in(html, "style")) == {nonce[1]}
        token = META_RE.search(html)
        assert token is not None and unmask(token[1]) is not None
        pages.append(html.replace(nonce[1], "NONCE").replace(token[1], "TOKEN"))
        names = [n.lower() for n, _ in response.headers.items() if n.lower() != "x-request-id"]
        assert names == [
            *(
                n.lower()
                for n, _ in plain.headers.items()
                if n.lower() not in ("content-length", "x-request-id")
            ),
            "content-encoding",
            "content-length",
        ]
        per_response = ("content-security-policy", "set-cookie", "content-length", "x-request-id")
        for name, value in plain.headers.items():
            if name.lower() not in per_response:
                assert response.headers[name] == value, name
    assert pages[0] == pages[1], "only the nonce and the token differ"
    plain_html = await plain.get_data(as_text=True)
    plain_nonce = NONCE_RE.search(plain.headers["Content-Security-Policy"])
    plain_token = META_RE.search(plain_html)
    assert plain_nonce is not None and plain_token is not None
    assert pages[0] == plain_html.replace(plain_nonce[1], "NONCE").replace(plain_token[1], "TOKEN")


async def test_of_equally_accepted_codings_the_index_takes_its_smallest(spa_app: Quart) -> None:
    browser = "gzip, deflate, br, zstd"
    index = await get(spa_app, "/app/things", Accept_Encoding=browser, **NAVIGATE)
    sizes = {}
    for coding in ("zstd", "br", "gzip", "deflate"):
        one = await get(spa_app, "/app/things", Accept_Encoding=coding, **NAVIGATE)
        sizes[coding] = int(one.headers["Content-Length"])
    assert index.headers["Content-Encoding"] == min(sizes, key=lambda c: sizes[c]) == "br"
    assert int(index.headers["Content-Length"]) == sizes["br"]
    weighted = await get(spa_app, "/app/things", Accept_Encoding="br;q=0.5, zstd", **NAVIGATE)
    assert weighted.headers["Content-Encoding"] == "zstd", "the client's q-values come first"


async def test_head_gets_the_headers_a_get_would(spa_app: Quart) -> None:
    inner, seen = recorder()
    browser = [("Host", "localhost"), *NAVIGATE.items(), ("Accept-Encoding", "gzip, br, zstd")]
    get_ = await asgi_call(asgi_of(spa_app), seen, path="/app/things", headers=browser)
    head = await asgi_call(
        asgi_of(spa_app), seen, path="/app/things", method="HEAD", headers=browser
    )
    assert head.status == get_.status == 200
    assert head.body == b"" and len(get_.body) == int(get_.headers["content-length"])
    for name in ("content-encoding", "content-length", "content-type", "vary", "cache-control"):
        assert head.headers[name] == get_.headers[name], name
    assert "set-cookie" in head.headers and "'nonce-" in head.headers["content-security-policy"]


async def test_a_coding_that_fails_its_start_up_check_is_compressed_per_response(
    make_app: MakeApp, spa_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shipshape.compression.slots._checks", lambda *args: False)
    app = make_app(SHIPSHAPE_SPA_DIR=str(spa_build), SHIPSHAPE_SPA_MOUNT="/app")
    response = await get(app, "/app/things", Accept_Encoding="br", **NAVIGATE)
    assert response.headers["Content-Encoding"] == "br"
    nonce = NONCE_RE.search(response.headers["Content-Security-Policy"])
    assert nonce is not None
    assert f'nonce="{nonce[1]}"' in decompress(await response.get_data(), "br").decode()


async def test_head_gets_the_headers_only(spa_app: Quart) -> None:
    inner, seen = recorder()
    headers = [("Host", "localhost"), *NAVIGATE.items()]
    response = await asgi_call(
        asgi_of(spa_app), seen, path="/app/x", method="HEAD", headers=headers
    )
    assert response.status == 200 and response.body == b""
    assert int(response.headers["content-length"]) > 500


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
async def test_other_methods_get_405(spa_app: Quart, method: str) -> None:
    for path in ("/app/things/new", "/app/", "/app/assets/missing.js"):
        response = await get(spa_app, path, method=method, **NAVIGATE)
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET, HEAD"
    build_file = await get(spa_app, f"/app/{SPA_SCRIPT}", method=method)
    assert build_file.status_code == 405


async def test_the_csrf_token_is_bound_to_the_session_cookie(spa_app: Quart) -> None:
    async with spa_app.test_app():
        client = spa_app.test_client()
        first = await client.get("/app/things/new", headers=NAVIGATE)
        cookie = first.headers["Set-Cookie"]
        assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        token = META_RE.search(await first.get_data(as_text=True))
        assert token is not None
        second = await client.get("/app/", headers=NAVIGATE)
        assert "Set-Cookie" not in second.headers, "the session already has its secret"
        again = META_RE.search(await second.get_data(as_text=True))
        assert again is not None and again[1] != token[1], "masked afresh (BREACH)"
        assert unmask(again[1]) == unmask(token[1])

        for value in (token[1], again[1]):
            saved = await client.post("/form", headers={"X-CSRF-Token": value})
            assert saved.status_code == 200
        first_other = "y" if token[1].startswith("x") else "x"  # tampered, never the same
        refused = await client.post("/form", headers={"X-CSRF-Token": first_other + token[1][1:]})
        assert refused.status_code == 400
    stranger = spa_app.test_client()  # no session cookie: the token is worthless
    async with spa_app.test_app():
        assert (await stranger.post("/form", headers={"X-CSRF-Token": token[1]})).status_code == 400


async def test_a_tampered_session_cookie_gets_a_new_session(spa_app: Quart) -> None:
    async with spa_app.test_app():
        client = spa_app.test_client()
        response = await client.get(
            "/app/", headers={**NAVIGATE, "Cookie": "session=forged.value.sig; other=1"}
        )
        assert response.headers["Set-Cookie"].startswith("session=")
        sessions = CookieSessions(spa_app)
        value = response.headers["Set-Cookie"].split(";")[0]
        assert SESSION_KEY in sessions.load(value)
        assert sessions.load("other=1") == {} and sessions.load(None) == {}


async def test_a_session_without_a_secret_keeps_its_data_and_gets_one(spa_app: Quart) -> None:
    """A new session is made ahead (shipshape.spa.fresh) only for a client with none: a
    session of the app's that holds no secret yet gets one added, its data kept."""
    sessions = CookieSessions(spa_app)
    async with spa_app.test_app():
        cookie = sessions.set_cookie({"theme": "dark"}).split(b";")[0].decode()
        client = spa_app.test_client()
        response = await client.get("/app/", headers={**NAVIGATE, "Cookie": cookie})
        token = META_RE.search(await response.get_data(as_text=True))
    data = sessions.load(response.headers["Set-Cookie"].split(";")[0])
    assert data["theme"] == "dark"
    assert token is not None and unmask(token[1]) == bytes.fromhex(data[SESSION_KEY])


async def test_without_csrf_the_index_has_no_token_and_sets_no_cookie(
    make_app: MakeApp, spa_build: Path
) -> None:
    app = make_app(SHIPSHAPE_SPA_DIR=spa_build, SHIPSHAPE_SPA_MOUNT="/app/", SHIPSHAPE_CSRF=False)
    response = await get(app, "/app/x", **NAVIGATE)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "csrf-token" not in await response.get_data(as_text=True)


async def test_mounted_at_the_root_beside_server_rendered_pages(
    make_app: MakeApp, tmp_path: Path
) -> None:
    build = write_spa_build(tmp_path / "root-build", base="/")
    app = make_app(SHIPSHAPE_SPA_DIR=build, SHIPSHAPE_SPA_MOUNT="/", SHIPSHAPE_HEALTH=True)
    add_routes(app)
    async with app.test_app():
        client = app.test_client()
        home = await client.get("/", headers=NAVIGATE)
        assert "server-rendered" in await home.get_data(as_text=True), "the app's route wins"
        deep = await client.get("/things/new", headers=NAVIGATE)
        assert deep.status_code == 200 and '<div id="app">' in await deep.get_data(as_text=True)
        api = await client.get("/api/things", headers={"Accept": "application/json"})
        assert await api.get_json() == {"items": []}
        missing_api = await client.get("/api/nothing", headers=NAVIGATE)
        assert missing_api.status_code == 404, "the API prefix never gets the index"
        assert missing_api.headers["Content-Type"] == "application/json"
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.post("/form", headers=NAVIGATE)).status_code == 400, "Quart's CSRF"
        wrong_method = await client.post("/things/new")
        assert wrong_method.status_code == 405
        script = await client.get(f"/{SPA_SCRIPT}")
        assert await script.get_data() == SPA_SCRIPT_BODY
        assert (await client.get("/robots.txt")).status_code == 200
        assert (await client.get("/favicon.ico", headers=NAVIGATE)).status_code == 404


async def test_mounted_under_a_path_the_rest_of_the_site_is_untouched(spa_app: Quart) -> None:
    async with spa_app.test_app():
        client = spa_app.test_client()
        assert (await client.get("/", headers=NAVIGATE)).status_code == 200
        outside = await client.get("/things/new", headers=NAVIGATE)
        assert outside.status_code == 404 and "Content-Security-Policy" in outside.headers
        assert (await client.get("/application", headers=NAVIGATE)).status_code == 404
        assert (await client.get(f"/{SPA_SCRIPT}")).status_code == 404


async def test_a_route_of_the_app_under_the_mount_wins(make_app: MakeApp, spa_build: Path) -> None:
    app = make_app(SHIPSHAPE_SPA_DIR=spa_build, SHIPSHAPE_SPA_MOUNT="/app")

    @app.get("/app/config")
    async def config() -> dict[str, str]:
        return {"api": "/api/"}

    async with app.test_app():
        client = app.test_client()
        assert await (await client.get("/app/config", headers=NAVIGATE)).get_json() == {
            "api": "/api/"
        }
        assert (await client.post("/app/config")).status_code == 405
        assert (await client.get("/app/other", headers=NAVIGATE)).status_code == 200


async def test_ten_quick_loads_are_never_rate_limited(make_app: MakeApp, spa_build: Path) -> None:
    """With the example app's real default (2/second), a page load's burst all gets through."""
    app = make_app(
        SHIPSHAPE_SPA_DIR=spa_build, SHIPSHAPE_SPA_MOUNT="/app", RATELIMIT_DEFAULT="2/second"
    )
    add_routes(app)
    async with app.test_app():
        client = app.test_client()
        statuses = []
        for _ in range(10):
            statuses.append((await client.get("/app/things/new", headers=NAVIGATE)).status_code)
            statuses.append((await client.get(f"/app/{SPA_SCRIPT}")).status_code)
            statuses.append((await client.get(f"/app/{SPA_CHUNK}")).status_code)
            statuses.append((await client.get("/app/gone.js")).status_code)
        assert statuses == [200, 200, 200, 404] * 10
        limited = [(await client.get("/", headers=NAVIGATE)).status_code for _ in range(3)]
        assert limited == [200, 200, 429], "the default limit is in force for the app's routes"


async def test_production_index_over_https_and_redirects(
    make_app: MakeApp, spa_build: Path
) -> None:
    app = make_app(
        APP_ENV="production",
        SECRET_KEY="k" * 40,
        ALLOWED_HOSTS="app.example",
        SHIPSHAPE_SPA_DIR=spa_build,
        SHIPSHAPE_SPA_MOUNT="/app",
    )
    async with app.test_app():
        client = app.test_client()
        plain = await client.get("/app/things", headers={**NAVIGATE, "Host": "app.example"})
        assert plain.status_code == 301
        assert plain.headers["Location"] == "https://app.example/app/things"
        page = await client.get("/app/things", headers={**HTTPS, **NAVIGATE}, scheme="https")
        assert page.status_code == 200
        assert page.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
        assert "upgrade-insecure-requests" in page.headers["Content-Security-Policy"]
        cookie = page.headers["Set-Cookie"]
        assert cookie.startswith("__Host-session=") and "Secure" in cookie and "Path=/" in cookie
        file = await client.get(f"/app/{SPA_SCRIPT}", headers=HTTPS, scheme="https")
        assert file.headers["Strict-Transport-Security"].startswith("max-age=63072000")
        missing = await client.get("/app/x.js", headers=HTTPS, scheme="https")
        assert missing.status_code == 404 and "Strict-Transport-Security" in missing.headers
        forged = await client.get(
            "/app/things", headers={**NAVIGATE, "Host": "evil.example"}, scheme="https"
        )
        assert forged.status_code == 400, "the host check comes first"


async def test_without_security_headers_or_compression_it_still_serves(
    make_app: MakeApp, spa_build: Path
) -> None:
    app = make_app(
        SHIPSHAPE_SPA_DIR=spa_build,
        SHIPSHAPE_SPA_MOUNT="/app",
        SHIPSHAPE_HEADERS=False,
        SHIPSHAPE_COMPRESSION=False,
    )
    response = await get(app, "/app/", Accept_Encoding="br", **NAVIGATE)
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response.headers
    assert "Content-Encoding" not in response.headers
    assert 'nonce="' in await response.get_data(as_text=True)


async def test_other_scopes_pass_through(spa_app: Quart) -> None:
    inner, seen = recorder()
    from shipshape.spa import SPAMiddleware

    layer = asgi_of(spa_app)
    while not isinstance(layer, SPAMiddleware):
        layer = layer.app  # type: ignore[attr-defined]
    layer.app = inner
    result = await asgi_call(layer, seen, path="/app/things", scope_type="websocket")
    assert result.seen is not None and result.seen["type"] == "websocket"


# Start-up: a missing or broken build stops it with one line naming the build command.


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing", r"frontend build .*index\.html is missing: run `make frontend`$"),
        ("unreadable", r"frontend build .*index\.html is unreadable .*: run `make frontend`$"),
        (
            "chunk",
            rf"links /app/{SPA_SCRIPT}, which is not in the build: "
            r"run `make frontend`, with base /app/$",
        ),
        ("base", r"links /assets/x\.js, outside the mount /app/: build it with base /app/"),
        ("relative", r"links \./assets/x\.js, outside the mount /app/"),
        ("head", r"index\.html has no </head>: run `make frontend`$"),
    ],
)
def test_a_missing_or_broken_build_stops_start_up(
    make_app: MakeApp, spa_build: Path, breakage: str, message: str
) -> None:
    index = spa_build / "index.html"
    html = index.read_text()
    if breakage == "missing":
        index.unlink()
    elif breakage == "unreadable":
        index.write_bytes(b"\xff\xfe<html>")
    elif breakage == "chunk":
        (spa_build / SPA_SCRIPT).unlink()
    elif breakage == "base":
        index.write_text(html.replace("</HEAD>", '<script src="/assets/x.js"></script></HEAD>'))
    elif breakage == "relative":
        index.write_text(html.replace("</HEAD>", '<script src="./assets/x.js"></script></HEAD>'))
    else:
        index.write_text(html.replace("</HEAD>", ""))
    with pytest.raises(SPAError, match=message) as caught:
        make_app(
            SHIPSHAPE_SPA_DIR=spa_build,
            SHIPSHAPE_SPA_MOUNT="/app",
            SHIPSHAPE_SPA_BUILD_COMMAND="make frontend",
        )
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            {"index.html": {"file": SPA_SCRIPT}, "src/view.ts": {"file": "assets/view-A.js"}},
            r"lacks assets/view-A\.js, which \.vite/manifest\.json lists: run `make frontend`$",
        ),
        (
            {"src/view.ts": {"file": SPA_SCRIPT, "css": ["assets/view-B.css"]}},
            r"lacks assets/view-B\.css, which",
        ),
        ({"src/view.ts": {"file": SPA_SCRIPT, "assets": [7]}}, r"is not Vite's manifest"),
        (["assets/x.js"], r"manifest\.json is not Vite's manifest: run `make frontend`$"),
        ("{", r"manifest\.json is unreadable .*: run `make frontend`$"),
    ],
)
def test_a_chunk_vites_manifest_lists_must_be_in_the_build(
    make_app: MakeApp, spa_build: Path, manifest: object, message: str
) -> None:
    """Regression (SPA probe): a lazily loaded chunk missing from the build started
    fine, and the page that needs it failed when the user got there."""
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (spa_build / ".vite" / "manifest.json").write_text(text)
    with pytest.raises(SPAError, match=message) as caught:
        make_app(
            SHIPSHAPE_SPA_DIR=spa_build,
            SHIPSHAPE_SPA_MOUNT="/app",
            SHIPSHAPE_SPA_BUILD_COMMAND="make frontend",
        )
    assert "\n" not in str(caught.value)
    (spa_build / ".vite" / "manifest.json").write_text(
        json.dumps({"index.html": {"file": SPA_SCRIPT, "dynamicImports": ["src/v.ts"]}})
    )
    app = make_app(SHIPSHAPE_SPA_DIR=spa_build, SHIPSHAPE_SPA_MOUNT="/app")  # all there
    assert "spa" in app.extensions["shipshape"].asgi_layers


def test_external_and_fragment_links_need_no_file(make_app: MakeApp, spa_build: Path) -> None:
    index = spa_build / "index.html"
    extra = '<link rel="preconnect" href="https://fonts.example"><a href="/elsewhere">x</a>'
    index.write_text(index.read_text().replace("</HEAD>", extra + "</HEAD>"))
    app = make_app(SHIPSHAPE_SPA_DIR=spa_build, SHIPSHAPE_SPA_MOUNT="/app")
    assert "spa" in app.extensions["shipshape"].asgi_layers


@pytest.mark.parametrize(
    ("key", "value", "accepts"),
    [
        ("SHIPSHAPE_SPA_MOUNT", "app", "a path such as /app, or /"),
        ("SHIPSHAPE_SPA_MOUNT", "/app/../x", "a path such as /app, or /"),
        ("SHIPSHAPE_SPA_MOUNT", "/app//x", "a path such as /app, or /"),
        ("SHIPSHAPE_SPA_ASSETS", "../assets", "a folder name inside the build"),
        ("SHIPSHAPE_SPA_DIR", 3, "a folder, or None for no frontend"),
    ],
)
def test_bad_settings_name_the_key(
    make_app: MakeApp, key: str, value: object, accepts: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{key}: expected {re.escape(accepts)}"):
        make_app(**{"SHIPSHAPE_SPA_DIR": "/nonexistent", key: value})


@pytest.mark.parametrize(("mount", "under"), [("/api/app", "/api/"), ("/static", "/static/")])
def test_a_mount_the_app_would_answer_stops_start_up(
    make_app: MakeApp, spa_build: Path, mount: str, under: str
) -> None:
    """Requests under the API or static prefix pass to the app: the frontend would never load."""
    with pytest.raises(SPAError, match=f"SHIPSHAPE_SPA_MOUNT {mount} is under {under}"):
        make_app(SHIPSHAPE_SPA_DIR=spa_build, SHIPSHAPE_SPA_MOUNT=mount)


def test_off_by_default(make_app: MakeApp) -> None:
    assert "spa" not in make_app().extensions["shipshape"].asgi_layers
    assert "spa" not in make_app(SHIPSHAPE_SPA_DIR="").extensions["shipshape"].asgi_layers


def test_the_session_must_be_a_signed_cookie() -> None:
    app = Quart(__name__)
    app.session_interface = SessionInterface()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="signed-cookie sessions"):
        CookieSessions(app)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<script>go()</script>", '<script nonce="N">go()</script>'),
        ('<SCRIPT type="module" src="/a.js">', '<SCRIPT type="module" src="/a.js" nonce="N">'),
        ("<style>b{}</style>", '<style nonce="N">b{}</style>'),
        (
            '<link rel="stylesheet" href="/a.css"/>',
            '<link rel="stylesheet" href="/a.css" nonce="N"/>',
        ),
        ("<link rel='preload icon' href=/a>", "<link rel='preload icon' href=/a nonce=\"N\">"),
        ('<link rel="icon" href="/f.svg">', '<link rel="icon" href="/f.svg">'),
        ('<script nonce="old" src="/a.js">', '<script nonce="N" src="/a.js">'),
        ("<meta property=csp-nonce nonce=X>", '<meta property=csp-nonce nonce="N">'),
        ("<p>text <b>bold</b></p>", "<p>text <b>bold</b></p>"),
    ],
)
def test_prepare_index(html: str, expected: str) -> None:
    assert prepare_index(html, csrf=False).render("N", "T").decode() == expected


def test_prepare_index_puts_the_token_before_the_head_ends() -> None:
    index = prepare_index("<head><title>x</title></head><body></body>", csrf=True)
    assert index.render("N", "T") == (
        b'<head><title>x</title><meta name="csrf-token" content="T">\n</head><body></body>'
    )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/html", True),
        ("TEXT/HTML; charset=utf-8", True),
        ("application/xhtml+xml, text/html;q=0.9", True),
        ("text/html;q=0", False),
        ("text/html;q=0.000", False),
        ("text/html;q=", False),
        ("text/*", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_accepts_html_names_text_html(accept: str, expected: bool) -> None:
    assert accepts_html(accept) is expected


def test_precompress_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    big = b"const x = 'shipshape';\n" * 200
    (build / "assets" / "a-12345678.js").write_bytes(big)
    (build / "tiny.txt").write_bytes(b"x")
    (build / "tiny.txt.br").write_bytes(b"stale and larger than the file")
    (build / "photo.png").write_bytes(b"\x89PNG" * 100)
    (build / "index.html").write_bytes(b"<html><head></head><body></body></html>\n" * 50)
    (build / "index.html.gz").write_bytes(b"stale: the index is rendered per request")
    assert main(["precompress", str(build)]) == 0
    assert not list(build.glob("index.html.*")), "the index is never sent from disk"
    for suffix, coding in ((".br", "br"), (".gz", "gzip"), (".zst", "zstd")):
        sibling = build / "assets" / ("a-12345678.js" + suffix)
        assert decompress(sibling.read_bytes(), coding) == big
    assert not (build / "tiny.txt.br").exists(), "a sibling no smaller than its file goes"
    assert not (build / "photo.png.br").exists(), "images are compressed already"
    assert "precompressed 1 of 2 files" in capsys.readouterr().out
    assert main(["precompress", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_precompress_runs_as_a_module_without_warnings(tmp_path: Path) -> None:
    """``python -m shipshape.spa``, as the Makefile runs it, with warnings as errors:
    the package imports :mod:`shipshape.spa`, so ``-m`` must run a module it does not."""
    (tmp_path / "app.js").write_bytes(b"const x = 'shipshape';\n" * 200)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "shipshape.spa", "precompress", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert "precompressed 1 of 2 files" in done.stdout  # app.js, and the manifest it writes
    assert (tmp_path / "app.js.br").exists()


async def test_the_index_never_enters_quart(spa_app: Quart) -> None:
    """The layer answers before Quart: no request context, no view, no hooks."""
    calls: list[str] = []

    @spa_app.before_request
    async def count() -> None:
        calls.append(request.path)

    response = await get(spa_app, "/app/things", **NAVIGATE)
    assert response.status_code == 200
    assert calls == []
    assert (await get(spa_app, "/", **NAVIGATE)).status_code == 200
    assert calls == ["/"], "the hook does run for the app's own pages"


async def raw_index(app: Quart, path: str, headers: list[tuple[bytes, bytes]]) -> Message:
    """The response start of one request sent with raw header bytes."""
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    navigate = [(b"sec-fetch-dest", b"document"), (b"accept", b"text/html")]
    await asgi_of(app)(http_scope("GET", path, [*navigate, *headers]), receive, send)
    return next(m for m in messages if m["type"] == "http.response.start")


async def test_a_cookie_that_is_not_utf8_does_not_break_the_index(spa_app: Quart) -> None:
    async with spa_app.test_app():
        start = await raw_index(spa_app, "/app/things", [(b"cookie", b"theme=\xe9")])
    assert start["status"] == 200  # was a 500: the cookie parser wanted UTF-8


async def test_a_session_on_a_second_cookie_line_is_kept(spa_app: Quart) -> None:
    """HTTP/2 sends each cookie on a line of its own (RFC 9113 §8.2.3)."""
    async with spa_app.test_app():
        first = await raw_index(spa_app, "/app/", [])
        cookie = dict(first["headers"])[b"set-cookie"].split(b";")[0]
        again = await raw_index(spa_app, "/app/", [(b"cookie", b"theme=dark"), (b"cookie", cookie)])
    assert again["status"] == 200
    assert b"set-cookie" not in dict(again["headers"]), "the session was read, not replaced"


async def test_mounted_at_the_root_the_apps_prefixes_never_get_the_index(
    make_app: MakeApp, tmp_path: Path
) -> None:
    build = write_spa_build(tmp_path / "root-build", base="/")
    app = make_app(SHIPSHAPE_SPA_DIR=build, SHIPSHAPE_SPA_MOUNT="/")
    async with app.test_app():
        client = app.test_client()
        for path in ("/api", "/static/", "/static/missing", "/static/app-0123456789abcdef.css"):
            response = await client.get(path, headers=NAVIGATE)
            assert response.status_code == 404, path
            assert '<div id="app">' not in await response.get_data(as_text=True), path
        assert (await client.get("/things", headers=NAVIGATE)).status_code == 200


#: The rule is_odd_path keeps, as the one pattern it was first written as.
ODD_PATH_PATTERN = re.compile(r"(^|/)\.\.?(/|$)|\\|//|^/|[\x00-\x1f\x7f]")


ODD_PATH_PIECES = ["a", "é", ".", "/", "\\", "\x00", "\x1f"]


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(ODD_PATH_PIECES), max_size=8).map("".join))
def test_an_odd_path_is_what_the_pattern_says(rest: str) -> None:
    assert is_odd_path(rest) == bool(ODD_PATH_PATTERN.search(rest))


@pytest.mark.parametrize(
    ("rest", "odd"),
    [
        ("", False), ("things/1", False), ("a.b/c", False), ("...", False), ("a/.../b", False),
        (".", True), ("..", True), ("./a", True), ("a/..", True), ("a/./b", True),
        ("/a", True), ("a//b", True), ("a\\b", True), ("a\x00", True), ("a\x7f", True),
    ],
)  # fmt: skip
def test_odd_paths(rest: str, odd: bool) -> None:
    assert is_odd_path(rest) is odd
