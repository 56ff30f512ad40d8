"""Hostile inputs against the real production server (issue 14's findings, each fixed).

Raw requests over a socket, so that neither the client library nor the test
client tidies up what a hostile client would send.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Server, serve_production


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve_production(1) as running:
        yield running


def raw(server: Server, request: bytes) -> tuple[int, str, bytes]:
    """Send ``request`` as it is; the status, the header block and the body."""
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.decode("latin-1"), body


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


@pytest.mark.parametrize(
    "host_lines",
    [
        ["Host: 127.0.0.1:abc"],  # a bogus port
        ["Host: 127.0.0.1:80:80"],
        ["Host: evil.example@127.0.0.1"],  # user info
        ["Host: 127.0.0.1", "Host: evil.example"],  # two Host lines (RFC 9112 §3.2)
    ],
)
def test_only_a_valid_host_and_port_pass(server: Server, host_lines: list[str]) -> None:
    status, head, body = raw(server, get("/privacy", *host_lines, "Accept: text/html"))
    assert status == 400, head
    assert b"This host name is not served here." in body


def test_a_valid_host_with_a_port_is_served(server: Server) -> None:
    status, _, _ = raw(server, get("/privacy", "Host: 127.0.0.1:8000"))
    assert status == 200


@pytest.mark.parametrize(
    "target",
    ["/\t/evil.example", "/\n/evil.example", "/privacy\r\nSet-Cookie: x=1", "/\\evil.example"],
)
def test_the_banners_next_never_leaves_the_site(server: Server, target: str) -> None:
    """Regression: a tab in ``next`` made a protocol-relative redirect; CR/LF made a 500."""
    status, head, body = raw(server, get("/", "Host: 127.0.0.1"))
    assert status == 200
    cookie = re.search(r"(?im)^set-cookie: (__Host-session=[^;]+)", head)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    assert cookie is not None and token is not None
    form = "&".join(
        f"{name}={value}"
        for name, value in (
            ("csrf_token", token[1].decode()),
            ("choice", "accept"),
            ("next", "".join(f"%{b:02X}" for b in target.encode())),
        )
    )
    request = (
        "POST /cookies HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Cookie: {cookie[1]}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n{form}"
    ).encode()
    status, head, _ = raw(server, request)
    assert status == 303, head
    assert re.search(r"(?im)^location: /cookies\r?$", head), head


def test_a_csp_report_nested_thousands_deep_is_a_400(server: Server) -> None:
    """Regression: json.loads raised RecursionError, and the server answered 500."""
    body = b"[" * 30_000 + b"]" * 30_000
    request = (
        b"POST /csp-report HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/reports+json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    status, _, answer = raw(server, request)
    assert status == 400
    assert json.loads(answer)["code"] == "bad_request"


def test_a_range_with_thousands_of_digits_is_ignored(server: Server) -> None:
    """Regression: int() of a 5,000-digit number raised, and the connection dropped."""
    status, head, body = raw(server, get("/static/manifest.json", "Host: 127.0.0.1"))
    assert status == 200
    digits = "9" * 5000
    status, head, ranged = raw(
        server, get("/static/manifest.json", "Host: 127.0.0.1", f"Range: bytes={digits}-")
    )
    assert status == 200 and ranged == body, head


def test_pages_that_set_a_cookie_are_private(server: Server) -> None:
    status, head, _ = raw(server, get("/", "Host: 127.0.0.1"))
    assert status == 200
    assert re.search(r"(?im)^set-cookie: __Host-session=", head)
    assert re.search(r"(?im)^cache-control: private\r?$", head), head


@pytest.mark.parametrize(
    ("path", "accept", "chunks"),
    [
        ("/csp-report", "text/html", b"zz\r\n{}\r\n0\r\n\r\n"),  # a size that is not hex
        ("/csp-report", "application/json", b"2\n{}\n0\n\n"),  # lines ended by LF alone
        ("/csp-report", "text/html", b"2\r\n{}\r\nq\r\n\r\n"),  # a junk last chunk
    ],
)
def test_a_chunked_body_the_server_cannot_read_is_a_400(
    server: Server, path: str, accept: str, chunks: bytes
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    )
    status, header_block, body = raw(server, head.encode() + chunks)
    assert status == 400, header_block  # granian's own answer was a bare 500
    assert "content-security-policy: default-src 'none'" in header_block.lower()
    if accept == "application/json":
        assert json.loads(body)["code"] == "bad_request"
    else:
        assert b"its chunked framing is broken" in body
    time.sleep(0.3)  # the line is written at the end of the loop's turn
    lines = [json.loads(line) for line in server.printed().splitlines() if line.startswith("{")]
    ours = [line for line in lines if str(line.get("request_id")) in header_block]
    # The status the client was sent, not 499: granian reported the body as a client gone.
    assert [(line["status"], line.get("unreadable_body")) for line in ours] == [(400, True)]


def test_a_websocket_to_an_app_with_none_is_refused_without_a_traceback(server: Server) -> None:
    handshake = get(
        "/",
        "Host: 127.0.0.1",
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ).replace(b"Connection: close\r\n", b"")
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(handshake)
        response = b""
        while b"\r\n\r\n" not in response:  # the connection stays open: read the head only
            response += sock.recv(65536)
    assert response.startswith(
        b"HTTP/1.1 403 "
    )  # granian's answer to a handshake the app closed unaccepted
    time.sleep(0.5)  # the line is written when the socket's task ends
    printed = server.printed()
    assert "Traceback" not in printed and "Not within a request context" not in printed
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/" and line.get("status") == 403 for line in lines)
