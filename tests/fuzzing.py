"""Shared pieces of the HTTP fuzz suite (issue 14): budgets, hostile inputs, properties.

The properties hold for every response, whoever answered it (a middleware
before Quart, a view, an error page):

* never a 5xx;
* never the bytes of a file outside the static roots;
* never a reflected, unescaped marker (``<x-fz123>``) in an HTML page;
* the security headers of the response's profile, HSTS included over HTTPS;
* a ``Location`` that stays on the site.

``make test`` runs each property over a small derandomized budget, so CI is
deterministic; ``make fuzz`` sets ``FUZZ_EXAMPLES`` and runs that many random
examples per property (docs/security.md, "Fuzzing").
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from shipshape.compression import decompress
from shipshape.hosts import split_host

ROOT = Path(__file__).resolve().parents[1]
#: What the fuzzed apps serve: the names ALLOWED_HOSTS lists.
ALLOWED_HOSTS = ("app.example", "localhost", "127.0.0.1")
MARKER_RE = re.compile(rb"<x-fz[0-9]+>")
HSTS = b"max-age=63072000; includeSubDomains"
_NAMES = "|".join(re.escape(host) for host in ALLOWED_HOSTS)
#: An absolute URL on an allowed host (a trailing dot is the same name), up to its path.
SAME_SITE_RE = re.compile(rf"https?://(?:{_NAMES})\.?(?::[0-9]{{1,5}})?(?:[/?#]|$)")


def budget(examples: int) -> settings:
    """``examples`` derandomized under ``make test``; ``FUZZ_EXAMPLES`` random ones under
    ``make fuzz``. No example database: CI and a laptop run the same inputs."""
    chosen = os.environ.get("FUZZ_EXAMPLES", "")
    fuzzing = chosen.isdigit() and int(chosen) > 0
    return settings(
        max_examples=int(chosen) if fuzzing else examples,
        derandomize=not fuzzing,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- what must never be served ------------------------------------------------------------


def _head(path: Path, size: int = 64) -> bytes | None:
    try:
        return path.read_bytes()[:size] or None
    except OSError:
        return None


def secrets() -> dict[str, bytes]:
    """The first bytes of files a traversal would aim at, by name."""
    git = ROOT / ".git"
    candidates = {
        "pyproject.toml": ROOT / "pyproject.toml",
        "/etc/passwd": Path("/etc/passwd"),
        "src/app/__init__.py": ROOT / "src" / "app" / "__init__.py",
        "frontend/package.json": ROOT / "frontend" / "package.json",
        ".git": git if git.is_file() else git / "HEAD",
    }
    found = {name: _head(path) for name, path in candidates.items()}
    found["a SQLite database"] = b"SQLite format 3\x00"
    return {name: head for name, head in found.items() if head is not None}


# --- hostile inputs ------------------------------------------------------------------------

markers = st.integers(0, 10**6).map(lambda n: f"<x-fz{n}>")

#: Path segments that try to climb out of a root, or confuse a decoder.
TRICKS = [
    "..",
    ".",
    "...",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%252e%252e",
    "..%2f",
    "..%2F",
    "%2f",
    "%2F",
    "%5c",
    "..%5c",
    "\\",
    "..\\",
    "%00",
    "a%00.css",
    "%c0%ae%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%ff",
    "%fe%ff",
    "%",
    "%zz",
    "%2",
    "..;",
    ";",
    "~",
    "%7e",
    "%u002e%u002e",
    "%25",
    "%%32%65",
    "..%00",
    "%0d%0a",
    "%09",
    "%20",
    "+",
    "@",
    "?",
    "#",
    "//",
    "///",
    "index.html",
    "manifest.json",
    ".vite",
    "assets",
    "things",
    "new",
    "edit",
    "delete",
]
#: Files a traversal aims at, outside every static root.
TARGETS = [
    "pyproject.toml", "etc/passwd", "/etc/passwd", ".git/config", ".git", "src/app/__init__.py",
    "frontend/package.json", "instance/app.db", "Makefile", "package.json", "%2fetc%2fpasswd",
]  # fmt: skip


def _encode_segment(text: str) -> str:
    return quote(text, safe="!$&'()*+,;=:@~-._")


segments = st.one_of(
    st.sampled_from(TRICKS),
    st.sampled_from(TARGETS),
    st.text(min_size=1, max_size=12).map(_encode_segment),
    markers.map(_encode_segment),
    markers,  # raw: servers pass '<' and '>' in a path through
    st.integers(1, 3000).map(lambda n: "a" * n),  # very long segments
    st.sampled_from(["%2e%2e/" * 8, "../" * 8, "..%2f" * 8, "%252e%252e%252f" * 8]),
)


def raw_paths(prefixes: Sequence[str]) -> st.SearchStrategy[bytes]:
    """Request targets as a client writes them: a known prefix, then hostile segments,
    sometimes with raw bytes that are not ASCII (invalid UTF-8 included)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        prefix = draw(st.sampled_from(prefixes))
        parts = draw(st.lists(segments, max_size=6))
        text = prefix + "/".join(parts) if prefix.endswith("/") else "/".join([prefix, *parts])
        raw = text.encode()
        if draw(st.booleans()):
            raw += draw(st.binary(max_size=8).map(lambda b: bytes(c | 0x80 for c in b)))
        if draw(st.integers(0, 9)) == 0:
            raw = raw.replace(b"/", b"\\", draw(st.integers(1, 3)))
        return raw if raw.startswith(b"/") else b"/" + raw  # as every server delivers it

    return build()


@st.composite
def header_value(draw: st.DrawFn, choices: Sequence[str]) -> bytes:
    """Mostly a known good or bad value for the header; else a marker, raw bytes (what
    HTTP/1.1 allows: no CR, LF or NUL) or a 9,000-digit number."""
    kind = draw(st.integers(0, 9))
    if kind < 6:
        return draw(st.sampled_from(choices)).encode("latin-1")
    if kind < 7:
        return draw(markers).encode()
    if kind < 9:
        raw = draw(st.binary(max_size=64))
        return bytes(c for c in raw if c not in b"\r\n\x00")
    return b"9" * draw(st.integers(1, 9000))


HOSTS = [
    "app.example",
    "localhost",
    "LOCALHOST:5000",
    "app.example:443",
    "app.example.",
    "127.0.0.1",
    "[::1]",
    "evil.example",
    "app.example:abc",
    "app.example:99999",
    "evil@app.example",
    "app.example:80:80",
    "",
    " ",
    "app.example, evil.example",
    "[::1",
    "a" * 300,
]
ORIGINS = [
    "https://app.example",
    "http://app.example",
    "https://localhost",
    "null",
    "https://evil.example",
    "http://[",
    "http://[::1",
    "https://[::1]",
    "http://app.example:abc",
    "//app.example",
    "https://app.example@evil.example",
    "javascript:alert(1)",
    "http://%zz",
    "\\\\evil.example",
]
ACCEPTS = [
    "text/html",
    "application/json",
    "*/*",
    "text/html;q=0",
    "text/html;q=abc",
    "application/json;q=nan",
    "text/html;q=1e999",
    "text/*;q=0.5, application/json",
    ";;,,",
    "text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8",
]
ENCODINGS = [
    "gzip",
    "br",
    "zstd",
    "deflate",
    "identity",
    "*",
    "gzip;q=0",
    "identity;q=0",
    "*;q=0",
    "identity;q=0, *;q=0",
    "br;q=abc",
    "gzip;q=-1",
    "zstd;q=1e9, br",
    "x-gzip",
    ",,,",
]
RANGES = [
    "bytes=0-10",
    "bytes=-5",
    "bytes=5-",
    "bytes=0-0",
    "bytes=10-5",
    "bytes=-0",
    "bytes=0-1,5-6",
    "bytes=" + "9" * 40 + "-",
    "bytes=-" + "9" * 40,
    "items=0-1",
    "bytes=",
    "bytes=a-b",
    "bytes=99999999-",
]
FORWARDED_FOR = ["203.0.113.9", "unknown", "[::1]", "203.0.113.9, 198.51.100.1", "::ffff:1.2.3.4"]
FORWARDED_PROTO = ["https", "http", "HTTPS", "ftp", "https, http", "http, https", ""]
FORWARDED_HOST = ["app.example", "evil.example", "app.example:abc", "localhost", "a@b"]
FETCH_SITE = ["same-origin", "same-site", "cross-site", "none", "CROSS-SITE"]
FETCH_DEST = ["document", "empty", "iframe", "script", "image", "DOCUMENT"]
FETCH_MODE = ["navigate", "cors", "no-cors", "same-origin", "websocket"]
ETAGS = ["*", '"abc"', 'W/"abc"', '""', ",,", '"' + "a" * 200 + '"']
CONTENT_TYPES = [
    "application/x-www-form-urlencoded", "application/json", "multipart/form-data",
    "multipart/form-data; boundary=", "multipart/form-data; boundary=zz",
    "application/csp-report", "application/reports+json", "text/plain",
    "application/json; charset=latin-1", "application/x-www-form-urlencoded; charset=utf-16",
]  # fmt: skip

#: Cookies a browser could send beside the session: the consent cookie garbled,
#: nested thousands deep, or holding a marker; a forged session.
COOKIE_CRUMBS = [
    'cookies_policy={"functional":true,"analytics":false}', "cookies_policy=%7B%7D",
    # Hypothesis raises the recursion limit while a test runs: nest far past it.
    "cookies_policy=" + "[" * 20000 + "]" * 20000, "cookies_policy=" + '{"a":' * 20000,
    "cookies_policy=1e999", "cookies_policy=<x-fz7>", "cookies_policy=", "__Host-session=x.y.z",
    '"; =;;',
]  # fmt: skip
crumbs = st.lists(st.sampled_from(COOKIE_CRUMBS), max_size=2).map(
    lambda chosen: [c.encode() for c in chosen]
)

#: A header name and the values to try in it.
HEADERS: Mapping[str, Sequence[str]] = {
    "host": HOSTS,
    "accept": ACCEPTS,
    "accept-encoding": ENCODINGS,
    "origin": ORIGINS,
    "referer": ORIGINS,
    "range": RANGES,
    "if-range": ETAGS,
    "if-none-match": ETAGS,
    "if-match": [*ETAGS, '"1"', '"99999999999999999999"'],
    "x-forwarded-for": FORWARDED_FOR,
    "x-forwarded-proto": FORWARDED_PROTO,
    "x-forwarded-host": FORWARDED_HOST,
    "x-request-id": ["abc", "x" * 500],
    "sec-fetch-site": FETCH_SITE,
    "sec-fetch-dest": FETCH_DEST,
    "sec-fetch-mode": FETCH_MODE,
    "cookie": [
        "cookies_policy=%7B%22analytics%22%3Atrue%7D",
        'cookies_policy={"analytics":1e999}',
        "cookies_policy=" + "[" * 20000 + "]" * 20000,
        "cookies_policy=" + '{"a":' * 20000,
        "__Host-session=garbage",
        "__Host-session=e30.AAAA.BBBB",
        "a=b; a=c",
        '"; =;;',
    ],  # fmt: skip
    "content-type": CONTENT_TYPES,
    "x-csrf-token": ["", "AAAA", "x" * 100],
    "content-length": ["0", "-1", "abc", "99999999999999999999"],
    "user-agent": ["curl/8", ""],
}

header_lines = st.lists(
    st.sampled_from(sorted(HEADERS)).flatmap(
        lambda name: st.tuples(st.just(name.encode()), header_value(HEADERS[name]))
    ),
    min_size=1,
    max_size=6,
)

#: JSON values of every type, with markers, NUL bytes and odd numbers in them.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | markers
    | st.just("\x00"),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12) | st.sampled_from(["name", "description", "version"]),
                      children, max_size=4),
    max_leaves=12,
)  # fmt: skip


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


#: Bodies that are not what the route wants: invalid UTF-8, NUL bytes, deep nesting, huge.
odd_bodies = st.one_of(
    st.binary(max_size=200),
    st.binary(min_size=1, max_size=16).map(lambda b: b"\xff\xfe" + b + b"\xc0\xaf"),
    # Depths around the interpreter's recursion limit (1,000), where parsing may
    # succeed and the next step that walks the value (str, repr, validation) may not,
    # and far past it: hypothesis raises the limit by a few thousand while a test runs.
    st.one_of(st.integers(1, 100), st.integers(800, 1100), st.sampled_from([20000, 30000])).map(
        nested
    ),
    st.integers(64 * 1024 - 4, 64 * 1024 + 4).map(lambda n: b'"' + b"a" * n + b'"'),
    st.sampled_from([b"NaN", b"Infinity", b"1e999", b"-", b"{", b'{"a":1,"a":2}', b"\x00"]),
)


# --- the exchange and its properties -------------------------------------------------------


@dataclass
class Request:
    method: str
    raw_path: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    query: bytes = b""
    scheme: str = "http"
    #: The scheme the app should see after proxy resolution (TRUSTED_PROXIES=1).
    resolved_scheme: str = field(init=False)

    def __post_init__(self) -> None:
        protos = b",".join(v for k, v in self.headers if k == b"x-forwarded-proto")
        values = [p.strip() for p in protos.decode("latin-1").split(",") if p.strip()]
        last = values[-1].lower() if values else ""
        self.resolved_scheme = last if last in ("http", "https") else self.scheme


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes  # with any Content-Encoding undone

    def all(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]

    def one(self, name: bytes) -> bytes | None:
        values = self.all(name)
        assert len(values) <= 1, (name, values)
        return values[0] if values else None


def merged(
    base: list[tuple[bytes, bytes]], fuzzed: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``base`` with every header the fuzzer chose replacing the base's lines of that name
    (it may repeat its own): frameworks read the first line, so the fuzzed value must be
    the one they see."""
    names = {name for name, _ in fuzzed}
    return [(name, value) for name, value in base if name not in names] + fuzzed


def decode_body(coding: bytes | None, body: bytes) -> bytes:
    if not body or coding in (None, b"identity"):
        return body
    return decompress(body, coding.decode("latin-1"))


def resolved_host(request: Request) -> str:
    """The name the host check sees (TRUSTED_PROXIES=1), or ``""`` for a malformed one."""
    forwarded = b",".join(v for k, v in request.headers if k == b"x-forwarded-host")
    values = [p.strip() for p in forwarded.decode("latin-1").split(",") if p.strip()]
    if values:
        return split_host(values[-1]).rstrip(".")
    hosts = [v for k, v in request.headers if k == b"host"]
    return split_host(b", ".join(hosts).decode("latin-1")).rstrip(".")


def check_location(location: bytes) -> None:
    """A redirect stays on the site. No control character anywhere (browsers drop a tab
    or newline, which can turn ``/<tab>/evil`` into ``//evil``); a relative one is a
    path that no browser reads as another host (no ``//``, no backslash, which they
    read as ``/``); an absolute one names an allowed host and ends its authority there,
    so nothing after it can change the host."""
    assert not any(c < 0x20 or c == 0x7F for c in location), location
    text = location.decode("latin-1")
    if text.startswith("/"):
        assert not text.startswith("//") and "\\" not in text, location
        return
    assert SAME_SITE_RE.match(text), location


def check(
    request: Request,
    reply: Reply,
    *,
    secrets: Mapping[str, bytes],
    production: bool = True,
) -> None:
    """Every property of issue 14 that holds for any request; a failure names the request."""
    try:
        check_reply(request, reply, secrets=secrets, production=production)
    except AssertionError as exc:
        raise AssertionError(f"{describe(request)}\n{exc}") from None


def describe(request: Request) -> str:
    body = request.body if len(request.body) <= 300 else request.body[:300] + b"..."
    return (
        f"request: {request.method} {request.raw_path!r} query={request.query!r} "
        f"scheme={request.scheme} headers={request.headers!r} body={body!r}"
    )


def check_reply(
    request: Request, reply: Reply, *, secrets: Mapping[str, bytes], production: bool
) -> None:
    assert 100 <= reply.status < 500, (reply.status, reply.body[:2000])
    for name, head in secrets.items():
        assert head not in reply.body, f"served {name}"
    content_type = (reply.one(b"content-type") or b"").lower()
    if content_type.startswith(b"text/html"):
        found = MARKER_RE.search(reply.body.lower())
        assert found is None, f"reflected {found[0]!r} unescaped" if found else ""
    for location in reply.all(b"location"):
        check_location(location)
    assert len(reply.all(b"location")) <= 1
    check_security_headers(request, reply, production=production)


def check_security_headers(request: Request, reply: Reply, *, production: bool) -> None:
    """At least a CSP, ``nosniff`` and, in production over HTTPS, HSTS; pages get the rest."""
    assert reply.one(b"x-content-type-options") == b"nosniff", reply.headers
    csp = reply.one(b"content-security-policy")
    assert csp is not None, reply.headers
    assert b"frame-ancestors 'none'" in csp and b"unsafe-inline" not in csp, csp
    content_type = (reply.one(b"content-type") or b"").lower()
    if content_type.startswith(b"text/html") and reply.body:
        assert b"default-src 'none'" in csp, csp
        assert reply.one(b"x-frame-options") is not None or b"'nonce-" not in csp, reply.headers
    refused_host = resolved_host(request) not in ALLOWED_HOSTS
    if production and request.resolved_scheme == "https" and not refused_host:
        assert reply.one(b"strict-transport-security") == HSTS, (reply.status, reply.headers)
    if request.resolved_scheme != "https":
        assert reply.one(b"strict-transport-security") is None, reply.headers


def piece_of(body: bytes, files: Iterable[bytes]) -> bool:
    return any(body in data for data in files)
