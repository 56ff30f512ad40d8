"""Fuzzing the production app's whole HTTP surface in-process (issue 14).

Each example is one request through the full ASGI stack, called as a server
calls it (``app(scope, receive, send)``) with a scope built by hand, so raw
bytes reach the middleware: paths that are not UTF-8, header values with
Latin-1 bytes, repeated headers, bodies in several chunks. The properties
are in :mod:`tests.fuzzing`; ``tests/e2e/test_fuzz.py`` sends what a scope
cannot express to the real server.

The app is production with one trusted proxy, so ``X-Forwarded-*`` decides
the scheme and host, and HSTS is owed on every HTTPS answer. It is built
once per module on an event loop of its own, so that an example costs one
request, not an app start.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote_to_bytes, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from quart import Quart

from app import create_app
from shipshape.config import ENV_NAMES
from shipshape.static import StaticFile, scan
from shipshape.typing import ASGIApp, Message, Scope
from tests.conftest import CSRF_INPUT_RE, SECRET, UNLIMITED
from tests.fuzzing import (
    Reply,
    Request,
    budget,
    check,
    decode_body,
    header_lines,
    json_values,
    markers,
    odd_bodies,
    piece_of,
    raw_paths,
    secrets,
)

SECRETS = secrets()
CONFIG = {
    "APP_ENV": "production",
    "SECRET_KEY": SECRET,
    "ALLOWED_HOSTS": "app.example,localhost,127.0.0.1",
    "TRUSTED_PROXIES": "1",
    "RATELIMIT_DEFAULT": UNLIMITED,  # reach the views; limits have tests of their own
    "SHIPSHAPE_CSP_REPORT_LIMIT": UNLIMITED,
    "SHIPSHAPE_CONFIGURE_LOGGING": False,  # leave the test run's logging alone
}
SITE = [(b"host", b"app.example"), (b"origin", b"https://app.example")]


@dataclass
class Harness:
    """The app on its own loop, a session that passes CSRF, and what it serves."""

    app: Quart
    loop: asyncio.AbstractEventLoop
    cookie: bytes = b""
    token: bytes = b""
    thing: str = ""
    static_files: tuple[bytes, ...] = ()
    spa_files: tuple[bytes, ...] = ()
    urls: tuple[str, ...] = ()  # every file served, by its URL path

    def auth(self) -> list[tuple[bytes, bytes]]:
        return [(b"cookie", self.cookie), (b"x-csrf-token", self.token)]

    def send(self, request: Request, *, chunks: int = 1) -> Reply:
        reply = self.loop.run_until_complete(
            asyncio.wait_for(exchange(self.app, request, chunks), timeout=60)
        )
        check(request, reply, secrets=SECRETS)
        return reply


def scope_of(request: Request) -> Scope:
    # As servers do: percent-decoded, then UTF-8 with replacement characters.
    path = unquote_to_bytes(request.raw_path).decode("utf-8", "replace")
    return {
        "type": "http",
        "http_version": "1.1",
        "asgi": {"spec_version": "2.3", "version": "3.0"},
        "method": request.method,
        "scheme": request.scheme,
        "path": path,
        "raw_path": request.raw_path,
        "query_string": request.query,
        "root_path": "",
        "headers": list(request.headers),
        "client": ("192.0.2.7", 40000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


async def exchange(app: Quart, request: Request, chunks: int) -> Reply:
    body = request.body
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    pending = list(parts)
    sent: list[Message] = []
    done = asyncio.Event()

    async def receive() -> Message:
        if pending:
            part = pending.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(pending)}
        await done.wait()  # a client that stays until it has its answer
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await cast(ASGIApp, app)(scope_of(request), receive, send)  # as a server calls it
    start = next(m for m in sent if m["type"] == "http.response.start")
    raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", [])]
    coding = next((v for k, v in headers if k == b"content-encoding"), None)
    return Reply(start["status"], headers, decode_body(coding, raw))


def set_cookie(reply: Reply, name: str) -> bytes:
    for value in reply.all(b"set-cookie"):
        cookie = SimpleCookie(value.decode())
        if name in cookie:
            return f"{name}={cookie[name].value}".encode()
    raise AssertionError(f"no {name} cookie in {reply.headers}")


@pytest.fixture(scope="module")
def harness(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    database = tmp_path_factory.mktemp("fuzz-db") / "app.db"
    shutil.copyfile(sqlite_template, database)
    loop = asyncio.new_event_loop()
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV_NAMES:  # module scope: clean_environ has not run yet
            patch.delenv(name, raising=False)
        app = create_app({**CONFIG, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"})
        loop.run_until_complete(app.startup())
        try:
            yield prepared(Harness(app, loop))
        finally:
            loop.run_until_complete(app.shutdown())
            loop.close()


def prepared(harness: Harness) -> Harness:
    """A session cookie and its CSRF token, one Thing, and the bytes of every served file."""
    page = harness.send(Request("GET", b"/cookies", SITE, scheme="https"))
    assert page.status == 200
    harness.cookie = set_cookie(page, "__Host-session")
    token = CSRF_INPUT_RE.search(page.body.decode())
    assert token is not None
    harness.token = token[1].encode()
    created = harness.send(
        Request(
            "POST",
            b"/api/things",
            [*SITE, *harness.auth(), (b"content-type", b"application/json")],
            b'{"name": "fuzzed <b>thing</b>", "description": "<x-fz0>"}',
            scheme="https",
        )
    )
    assert created.status == 201, created.body
    location = created.one(b"location")
    assert location is not None
    harness.thing = location.decode().rsplit("/", 1)[-1]
    config = harness.app.config
    static = scan(Path(config["SHIPSHAPE_ASSET_DIR"]), memory_limit=0)
    spa = scan(Path(config["SHIPSHAPE_SPA_DIR"]), memory_limit=0)
    assert static and spa, "nothing to serve: run make assets frontend"
    harness.static_files = files_of(static)
    harness.spa_files = files_of(spa)
    harness.urls = (*(f"/static/{key}" for key in static), *(f"/app/{key}" for key in spa))
    return harness


def files_of(table: dict[str, StaticFile]) -> tuple[bytes, ...]:
    return tuple(entry.variants["identity"].path.read_bytes() for entry in table.values())


# --- strategies over the example app's routes -----------------------------------------------

ID = "{id}"
PAGES = [
    "/", "/cookies", "/privacy", "/accessibility", "/docs", "/openapi.json", "/healthz",
    "/readyz", "/csp-report", "/things", "/things/", "/things/new", "/things/download",
    f"/things/{ID}", f"/things/{ID}/edit", f"/things/{ID}/delete", "/api/things",
    f"/api/things/{ID}", "/api/csrf-token", "/api", "/static/", "/static/dist/", "/app",
    "/app/", "/app/things/new", f"/app/things/{ID}", "/app/assets/", "/app/index.html", "",
]  # fmt: skip
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "get"]


def with_id(harness: Harness, raw: bytes) -> bytes:
    return raw.replace(ID.encode(), harness.thing.encode())


schemes = st.sampled_from(["http", "https"])
queries = st.lists(
    st.tuples(
        st.sampled_from(["q", "sort", "page", "next", "x"]) | st.text(max_size=5),
        st.text(max_size=20) | markers | st.sampled_from(["-1", "0", "9" * 30, "name", "\x00"]),
    ),
    max_size=4,
).map(lambda pairs: urlencode(pairs).encode())


@st.composite
def credentials(draw: st.DrawFn, harness: Harness) -> list[tuple[bytes, bytes]]:
    """An allowed host and, half the time, a session and token that pass CSRF, so
    that fuzzed bodies reach the views."""
    host = draw(st.sampled_from([b"app.example", b"localhost", b"127.0.0.1"]))
    if draw(st.booleans()):
        return [(b"host", host), (b"origin", b"https://" + host), *harness.auth()]
    return [(b"host", host)]


@budget(300)
@given(
    method=st.sampled_from(METHODS),
    query=queries,
    headers=header_lines,
    scheme=schemes,
    data=st.data(),
)
def test_any_request_gets_a_safe_answer(
    harness: Harness,
    method: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    data: st.DataObject,
) -> None:
    path = data.draw(raw_paths([*PAGES, *harness.urls]), label="path")
    base = data.draw(credentials(harness))
    body = data.draw(st.just(b"") | odd_bodies)
    request = Request(method, with_id(harness, path), [*base, *headers], body, query, scheme)
    reply = harness.send(request, chunks=data.draw(st.integers(1, 3)))
    served = reply.status in (200, 206) and reply.body
    text = request.raw_path.decode("latin-1")
    if served and text.startswith("/static/"):
        assert piece_of(reply.body, harness.static_files), "served bytes from outside /static/"
    page = (reply.one(b"content-type") or b"").startswith(b"text/html")
    if served and text.startswith("/app/") and not page:
        assert piece_of(reply.body, harness.spa_files), "served bytes from outside the build"


TRAVERSAL_ROOTS = ["/static/", "/app/", "/app/assets/", "/", "/static/css/", "/things/"]


@budget(200)
@given(path=raw_paths(TRAVERSAL_ROOTS), headers=header_lines)
def test_no_file_from_outside_the_static_roots(
    harness: Harness, path: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    request = Request("GET", path, [(b"host", b"localhost"), *headers], scheme="https")
    reply = harness.send(request)
    if reply.status in (200, 206) and path.startswith((b"/static/", b"/app/assets/")):
        assert piece_of(reply.body, harness.static_files + harness.spa_files)


FORM_ROUTES = ["/cookies", "/things/new", f"/things/{ID}/edit", f"/things/{ID}/delete"]
FORM_FIELDS = ["csrf_token", "choice", "next", "functional", "analytics", "name", "description",
               "version", ""]  # fmt: skip
form_values = st.one_of(
    st.text(max_size=40),
    markers,
    st.sampled_from(["yes", "no", "accept", "reject", "1", "-1", "9" * 40, "\x00", "a" * 5000]),
)


@st.composite
def forms(draw: st.DrawFn, harness: Harness) -> bytes:
    pairs = draw(st.lists(st.tuples(st.sampled_from(FORM_FIELDS), form_values), max_size=6))
    if draw(st.booleans()):
        pairs.insert(0, ("csrf_token", harness.token.decode()))
    encoded = urlencode(pairs).encode()
    if draw(st.integers(0, 4)) == 0:  # bytes no form encoder writes
        encoded += b"&" + draw(st.sampled_from([b"name=%ff%fe", b"%zz=1", b"next=%00", b"=&&="]))
    return encoded


@budget(200)
@given(
    route=st.sampled_from(FORM_ROUTES),
    content_type=st.sampled_from(
        [b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x", b"text/plain"]
    ),
    headers=header_lines,
    data=st.data(),
)
def test_form_posts_get_a_safe_answer(
    harness: Harness,
    route: str,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]],
    data: st.DataObject,
) -> None:
    body = data.draw(forms(harness) | odd_bodies)  # the token in the form, or none
    base = [*SITE, (b"cookie", harness.cookie), (b"content-type", content_type)]
    request = Request("POST", with_id(harness, route.encode()), [*base, *headers], body,
                      scheme="https")  # fmt: skip
    harness.send(request)


JSON_ROUTES = ["/api/things", f"/api/things/{ID}", "/csp-report", "/api/csrf-token"]
REPORT_TYPES = [b"application/json", b"application/csp-report", b"application/reports+json"]


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["value", "thing", "report", "reports", "odd"]))
    if shape == "odd":
        return draw(odd_bodies)
    value: Any = draw(json_values)
    if shape == "thing":
        value = {
            "name": draw(json_values | markers),
            "description": draw(json_values | markers),
            "version": draw(json_values),
        }
    elif shape == "report":
        value = {"csp-report": draw(st.dictionaries(st.text(max_size=20), json_values))}
    elif shape == "reports":
        value = draw(st.lists(st.fixed_dictionaries({"body": json_values}), max_size=3))
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode()


@budget(250)
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]),
    route=st.sampled_from(JSON_ROUTES),
    content_type=st.sampled_from(REPORT_TYPES),
    body=json_bodies(),
    headers=header_lines,
)
def test_json_bodies_get_a_safe_answer(
    harness: Harness,
    method: str,
    route: str,
    content_type: bytes,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    base = [*SITE, *harness.auth(), (b"content-type", content_type)]
    request = Request(method, with_id(harness, route.encode()), [*base, *headers], body,
                      scheme="https")  # fmt: skip
    reply = harness.send(request)
    if route.startswith("/api/"):
        assert reply.one(b"content-type") in (b"application/json", None), reply.headers


@budget(150)
@given(
    target=st.one_of(
        st.text(max_size=30),
        st.lists(st.sampled_from(["/", "\\", "\t", "\n", "\r", "\x00", " ", "evil.example",
                                  "%2f", "@", ":", "https:", "cookies", "\x7f", "\u3002"]),
                 max_size=6).map("".join),
    ),  # fmt: skip
    choice=st.sampled_from(["accept", "reject"]),
)
def test_the_banners_next_never_leaves_the_site(harness: Harness, target: str, choice: str) -> None:
    form = urlencode({"csrf_token": harness.token.decode(), "choice": choice, "next": target})
    headers = [*SITE, *harness.auth(), (b"content-type", b"application/x-www-form-urlencoded")]
    reply = harness.send(Request("POST", b"/cookies", headers, form.encode(), scheme="https"))
    assert reply.status == 303, reply.body[:500]
    location = reply.one(b"location")
    assert location is not None
    safe = (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(0x20 <= ord(c) != 0x7F for c in target)
    )
    if not safe:
        assert location == b"/cookies", (target, location)
