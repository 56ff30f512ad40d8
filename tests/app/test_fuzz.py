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
from urllib.parse import quote, unquote_to_bytes, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from quart import Quart

from app import PROJECT_ROOT, create_app
from shipshape.config import ENV_NAMES
from shipshape.static import StaticFile, scan
from shipshape.typing import ASGIApp, Message, Scope
from tests.conftest import CSRF_INPUT_RE, SECRET, UNLIMITED, migrate
from tests.fuzzing import (
    COOKIE_CRUMBS,
    Reply,
    Request,
    budget,
    check,
    crumbs,
    decode_body,
    header_lines,
    json_values,
    markers,
    merged,
    odd_bodies,
    piece_of,
    raw_paths,
    secrets,
)
from tests.servers import PostgresServer

SECRETS = secrets()
# A failing example with a 64 KiB body prints as one: that is the point, not a problem.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
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


@dataclass(repr=False)
class Harness:
    """The app on its own loop, a session that passes CSRF, and what it serves."""

    app: Quart
    loop: asyncio.AbstractEventLoop
    cookie: bytes = b""
    token: bytes = b""
    thing: str = ""
    created: int = 0
    static_files: tuple[bytes, ...] = ()
    spa_files: tuple[bytes, ...] = ()

    def __repr__(self) -> str:  # hypothesis prints it with each failing example
        return f"Harness(thing={self.thing!r})"

    def create_thing(self) -> None:
        """A Thing whose name and description would show if pages did not escape them."""
        self.created += 1
        body = {"name": f"fuzzed <b>thing</b> {self.created}", "description": "<x-fz0>"}
        created = self.send(
            Request(
                "POST",
                b"/api/things",
                [*SITE, *self.auth(), (b"content-type", b"application/json")],
                json.dumps(body).encode(),
                scheme="https",
            )
        )
        assert created.status == 201, created.body
        location = created.one(b"location")
        assert location is not None
        self.thing = location.decode().rsplit("/", 1)[-1]

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
    if request.method == "HEAD":
        raw = b""  # a server sends no body to HEAD, whatever the app hands it (RFC 9110 §9.3.2)
    headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", [])]
    coding = next((v for k, v in headers if k == b"content-encoding"), None)
    return Reply(start["status"], headers, decode_body(coding, raw))


def set_cookie(reply: Reply, name: str) -> bytes:
    for value in reply.all(b"set-cookie"):
        cookie = SimpleCookie(value.decode())
        if name in cookie:
            return f"{name}={cookie[name].value}".encode()
    raise AssertionError(f"no {name} cookie in {reply.headers}")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def harness(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harness]:
    """Every example runs on both engines: hostile input must get the same clear
    answer from SQLite and from PostgreSQL (NUL bytes, odd Unicode, huge numbers)."""
    loop = asyncio.new_event_loop()
    if request.param == "sqlite":
        database = tmp_path_factory.mktemp("fuzz-db") / "app.db"
        shutil.copyfile(sqlite_template, database)
        url = f"sqlite+aiosqlite:///{database}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = loop.run_until_complete(server.fresh_database("fuzz_db"))
        loop.run_until_complete(migrate(url))
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV_NAMES:  # module scope: clean_environ has not run yet
            patch.delenv(name, raising=False)
        app = create_app({**CONFIG, "DATABASE_URL": url})
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
    harness.create_thing()
    config = harness.app.config
    static = scan(Path(config["SHIPSHAPE_ASSET_DIR"]), memory_limit=0)
    spa = scan(Path(config["SHIPSHAPE_SPA_DIR"]), memory_limit=0)
    assert static and spa, "nothing to serve: run make assets frontend"
    harness.static_files = files_of(static)
    harness.spa_files = files_of(spa)
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
    """``raw`` with ``{id}`` naming a Thing that exists (an earlier example may have
    deleted the last one: each example starts from the same kind of state)."""
    if ID.encode() not in raw:
        return raw
    if harness.send(Request("GET", f"/api/things/{harness.thing}".encode(), SITE)).status == 404:
        harness.create_thing()
    return raw.replace(ID.encode(), harness.thing.encode())


schemes = st.sampled_from(["http", "https"])
queries = st.lists(
    st.tuples(
        st.sampled_from(["q", "sort", "page", "next", "x"]) | st.text(max_size=5),
        st.text(max_size=20) | markers | st.sampled_from(["-1", "0", "9" * 30, "name", "\x00"]),
    ),
    max_size=4,
).map(lambda pairs: urlencode(pairs).encode())


#: The files the built assets and frontend hold, by URL: prefixes for traversal tricks.
FILE_URLS = [
    *(f"/static/{key}" for key in scan(PROJECT_ROOT / "src/app/static/dist", memory_limit=0)),
    *(f"/app/{key}" for key in scan(PROJECT_ROOT / "frontend/dist", memory_limit=0)),
]
allowed_hosts = st.sampled_from([b"app.example", b"localhost", b"127.0.0.1"])


@budget(800)
@given(
    method=st.sampled_from(METHODS),
    path=raw_paths(PAGES + FILE_URLS),
    query=queries,
    host=allowed_hosts,
    authed=st.booleans(),
    cookies=crumbs,
    headers=header_lines,
    body=st.just(b"") | odd_bodies,
    chunks=st.integers(1, 3),
    scheme=schemes,
)
def test_any_request_gets_a_safe_answer(
    harness: Harness,
    method: str,
    path: bytes,
    query: bytes,
    host: bytes,
    authed: bool,
    cookies: list[bytes],
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    chunks: int,
    scheme: str,
) -> None:
    # An allowed host and, half the time, a session and token that pass CSRF, so that
    # fuzzed bodies reach the views; a fuzzed header replaces the base line of its name.
    base = [(b"host", host)]
    if authed:
        base += [(b"origin", b"https://" + host), (b"x-csrf-token", harness.token)]
        cookies = [harness.cookie, *cookies]
    if cookies:
        base.append((b"cookie", b"; ".join(cookies)))
    request = Request(method, with_id(harness, path), merged(base, headers), body, query, scheme)
    reply = harness.send(request, chunks=chunks)
    served = reply.status in (200, 206) and reply.body
    text = request.raw_path.decode("latin-1")
    if served and text.startswith("/static/"):
        assert piece_of(reply.body, harness.static_files), "served bytes from outside /static/"
    page = (reply.one(b"content-type") or b"").startswith(b"text/html")
    if served and text.startswith("/app/") and not page:
        assert piece_of(reply.body, harness.spa_files), "served bytes from outside the build"


TRAVERSAL_ROOTS = ["/static/", "/app/", "/app/assets/", "/", "/static/css/", "/things/"]


@budget(300)
@given(path=raw_paths(TRAVERSAL_ROOTS), headers=header_lines)
def test_no_file_from_outside_the_static_roots(
    harness: Harness, path: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    request = Request("GET", path, merged([(b"host", b"localhost")], headers), scheme="https")
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


TOKEN = "{token}"  # the session's CSRF token, filled in by the test


@st.composite
def forms(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(st.sampled_from(FORM_FIELDS), form_values), max_size=6))
    if draw(st.integers(0, 4)) > 0:  # mostly a valid token: the views are the target
        pairs.insert(0, ("csrf_token", TOKEN))
    encoded = urlencode(pairs).encode()
    if draw(st.integers(0, 4)) == 0:  # bytes no form encoder writes
        encoded += b"&" + draw(st.sampled_from([b"name=%ff%fe", b"%zz=1", b"next=%00", b"=&&="]))
    return encoded


@budget(500)
@given(
    route=st.sampled_from(FORM_ROUTES),
    content_type=st.sampled_from(
        [b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x", b"text/plain"]
    ),
    cookies=crumbs,
    headers=header_lines,
    form=forms() | odd_bodies,
)
def test_form_posts_get_a_safe_answer(
    harness: Harness,
    route: str,
    content_type: bytes,
    cookies: list[bytes],
    headers: list[tuple[bytes, bytes]],
    form: bytes,
) -> None:
    body = form.replace(quote(TOKEN).encode(), harness.token)  # the token in the form, or none
    cookie = b"; ".join([harness.cookie, *cookies])
    base = [*SITE, (b"cookie", cookie), (b"content-type", content_type)]
    request = Request("POST", with_id(harness, route.encode()), merged(base, headers), body,
                      scheme="https")  # fmt: skip
    harness.send(request)


PAGE_ROUTES = ["/", "/cookies", "/privacy", "/accessibility", "/docs", "/things/",
               "/things/new", f"/things/{ID}", f"/things/{ID}/edit", "/app/"]  # fmt: skip


@pytest.mark.parametrize("cookie", COOKIE_CRUMBS)  # few values, each one tried everywhere
@budget(40)
@given(route=st.sampled_from(PAGE_ROUTES), post=st.booleans(), form=forms())
def test_cookies_sent_back_never_break_a_page(
    harness: Harness, cookie: str, route: str, post: bool, form: bytes
) -> None:
    """What a browser stores and sends back (the consent cookie, a session) beside a
    session that passes CSRF, on every page, read and posted."""
    jar = harness.cookie + b"; " + cookie.encode()
    headers = [*SITE, (b"cookie", jar), (b"accept", b"text/html")]
    if post:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    body = form.replace(quote(TOKEN).encode(), harness.token) if post else b""
    method = "POST" if post else "GET"
    harness.send(Request(method, with_id(harness, route.encode()), headers, body, scheme="https"))


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


@budget(500)
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
    request = Request(method, with_id(harness, route.encode()), merged(base, headers), body,
                      scheme="https")  # fmt: skip
    reply = harness.send(request)
    if route.startswith("/api/"):
        assert reply.one(b"content-type") in (b"application/json", None), reply.headers


@budget(200)
@given(
    target=st.one_of(
        st.text(max_size=30),
        st.lists(
            st.sampled_from(
                [
                    "/",
                    "\\",
                    "\t",
                    "\n",
                    "\r",
                    "\x00",
                    " ",
                    "evil.example",
                    "%2f",
                    "@",
                    ":",
                    "https:",
                    "cookies",
                    "\x7f",
                    "\u3002",
                ]
            ),
            max_size=6,
        ).map("".join),
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
