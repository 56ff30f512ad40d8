"""shipshape.scope: each request header read the same way, and decoded once."""

from __future__ import annotations

from shipshape.scope import header, headers, request_host
from shipshape.typing import Scope


def test_repeated_lines_are_joined_and_cookies_with_a_semicolon() -> None:
    scope: Scope = {
        "headers": [
            (b"accept", b"text/html"),
            (b"cookie", b"a=1"),
            (b"accept", b"application/json"),
            (b"cookie", b"b=2"),
            (b"x-name", "café".encode("latin-1")),
        ]
    }
    assert header(scope, b"accept") == "text/html, application/json"
    assert header(scope, b"cookie") == "a=1; b=2"
    assert header(scope, b"x-name") == "café"
    assert header(scope, b"range") is None
    assert request_host(scope) == ""


def test_headers_are_indexed_once_and_again_when_a_layer_sets_new_ones() -> None:
    scope: Scope = {"headers": [(b"host", b"example.com")]}
    assert request_host(scope) == "example.com"
    index = scope["shipshape.headers"]
    assert header(scope, b"accept") is None
    assert scope["shipshape.headers"] is index  # the second read used the first one's index
    scope["headers"] = [(b"host", b"forwarded.example")]  # as the proxy layer does
    assert request_host(scope) == "forwarded.example"
    assert header(scope, b"host") == "forwarded.example"


def test_a_scope_without_headers_has_none() -> None:
    assert header({}, b"host") is None


def test_headers_gives_every_header_as_header_reads_each() -> None:
    scope: Scope = {"headers": [(b"accept", b"a"), (b"accept", b"b"), (b"host", b"h")]}
    assert headers(scope) == {b"accept": "a, b", b"host": "h"}
    assert headers(scope) is headers(scope), "one index per header list"
    assert header(scope, b"accept") == headers(scope)[b"accept"]
