"""Fuzzing the real production server over raw sockets (issue 14).

What no ASGI scope can express goes to ``python -m app serve`` as bytes: request
targets in absolute form or ``*``, raw bytes above ASCII in the target, a
malformed request line, header lines that repeat or are not headers at all,
HTTP/1.0, and a ``Content-Length`` that disagrees with the body. The server
may refuse such a request itself (granian's own 400 names no content type and
comes before the app); whatever the app answers must hold the properties of
:mod:`tests.fuzzing`, and nothing may be a 5xx. The bulk of the fuzzing runs
in-process (``tests/app/test_fuzz.py``); this is the small budget on the wire.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.conftest import Server, serve_production
from tests.fuzzing import (
    Reply,
    Request,
    budget,
    check,
    check_location,
    decode_body,
    header_lines,
    odd_bodies,
    raw_paths,
    secrets,
)

SECRETS = secrets()
# A failing example with a 64 KiB body prints as one: that is the point, not a problem.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
PATHS = ["/", "/privacy", "/cookies", "/static/", "/app/", "/app/things/1", "/api/things",
         "/things/", "/csp-report", "/healthz", "/openapi.json", "/docs"]  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve_production(
        1, ALLOWED_HOSTS="app.example,localhost,127.0.0.1", TRUSTED_PROXIES="1"
    ) as running:
        yield running


def exchange(server: Server, request: bytes) -> bytes:
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(request)  # then wait: the request says Connection: close
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out


def parse(response: bytes, method: bytes) -> Reply:
    head, _, body = response.partition(b"\r\n\r\n")
    while head.split(b" ", 2)[1].startswith(b"1"):  # 100 Continue, then the answer
        head, _, body = body.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    reply = Reply(int(status_line.split(b" ", 2)[1]), headers, b"")
    if (reply.one(b"transfer-encoding") or b"").lower() == b"chunked":
        body = dechunk(body)
    reply.body = b"" if method == b"HEAD" else decode_body(reply.one(b"content-encoding"), body)
    return reply


targets = st.one_of(
    raw_paths(PATHS),
    st.sampled_from([b"*", b"http://evil.example/", b"https://app.example/privacy",
                     b"//evil.example/", b"/\x7f", b"/%", b"", b"/?next=//evil.example",
                     b"/app/%ff%fe", b"/static/..%2f..%2fpyproject.toml"]),
)  # fmt: skip
#: Lines that are not well-formed headers, which only a socket can send.
odd_lines = st.lists(
    st.sampled_from([b"No-Colon", b"Space Name: x", b" folded: x", b"X: a\rb", b":empty",
                     b"Host : app.example", b"Content-Length: 1, 2", b"Expect: 100-continue",
                     b"Connection: upgrade", b"Upgrade: websocket"]),
    max_size=2,
)  # fmt: skip


@budget(100)
@given(
    method=st.sampled_from([b"GET", b"HEAD", b"POST", b"OPTIONS", b"PUT", b"BREW", b"get"]),
    target=targets,
    version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"HTTP/9"]),
    host=st.sampled_from([b"app.example", b"localhost", b"127.0.0.1", b"evil.example", None]),
    headers=header_lines,
    odd=odd_lines,
    body=st.just(b"") | odd_bodies.filter(lambda b: len(b) < 40_000),
)
def test_the_real_server_answers_safely(
    server: Server,
    method: bytes,
    target: bytes,
    version: bytes,
    host: bytes | None,
    headers: list[tuple[bytes, bytes]],
    odd: list[bytes],
    body: bytes,
) -> None:
    lines = [method + b" " + target + b" " + version]
    fields = [*([(b"host", host)] if host is not None else []), *headers]
    fields = [(name, value) for name, value in fields if name != b"content-length"]
    lines += [name + b": " + value for name, value in fields]
    lines += [*odd, b"Content-Length: %d" % len(body), b"Connection: close"]
    response = exchange(server, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    if not response:
        return  # the server closed a request it could not parse, without a word
    reply = parse(response, method)
    assert reply.status < 500, (reply.status, response[:2000])
    if reply.one(b"content-type") is None and reply.status in (400, 405, 431):
        # granian's own refusal, before the app: nothing of the app's in it.
        for location in reply.all(b"location"):
            check_location(location)
        return
    request = Request(method.decode(), target, fields, body)  # plain HTTP, as sent
    check(request, reply, secrets=SECRETS)


def test_an_asterisk_target_is_redirected_to_the_site(server: Server) -> None:
    """Regression: the HTTPS redirect of `OPTIONS *` pointed at https://app.example*."""
    response = exchange(
        server, b"OPTIONS * HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n"
    )
    reply = parse(response, b"OPTIONS")
    assert reply.status == 308
    assert reply.one(b"location") == b"https://app.example/"
