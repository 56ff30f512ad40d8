from __future__ import annotations

import pytest

from shipshape.https import HTTPSRedirectMiddleware
from tests.shipshape.conftest import asgi_call, recorder


@pytest.mark.parametrize(
    ("method", "status"),
    [("GET", 301), ("HEAD", 301), ("POST", 308), ("PUT", 308), ("DELETE", 308)],
)
async def test_plain_http_is_redirected(method: str, status: int) -> None:
    inner, seen = recorder()
    result = await asgi_call(
        HTTPSRedirectMiddleware(inner),
        seen,
        method=method,
        path="/things/new",
        query=b"a=1&b=%20",
        headers=[("Host", "app.example:8080")],
    )
    assert result.status == status
    assert result.headers["location"] == "https://app.example/things/new?a=1&b=%20"
    assert result.seen is None


@pytest.mark.parametrize(
    ("scheme", "host", "path", "passes"),
    [
        ("https", "app.example", "/", True),
        ("http", "localhost:5000", "/", True),
        ("http", "localhost.", "/", True),  # regression: allowed, yet redirected to HTTPS
        ("http", "127.0.0.1", "/", True),
        ("http", "[::1]:80", "/", True),
        ("http", "app.example", "/healthz", True),
        ("http", "app.example", "/healthz/x", False),
        ("http", "app.example", "/", False),
    ],
)
async def test_exemptions(scheme: str, host: str, path: str, passes: bool) -> None:
    inner, seen = recorder()
    result = await asgi_call(
        HTTPSRedirectMiddleware(inner, exempt_paths=["/healthz"]),
        seen,
        scheme=scheme,
        path=path,
        headers=[("Host", host)],
    )
    assert (result.status == 200) is passes


async def test_no_exempt_hosts_redirects_loopback_too() -> None:
    inner, seen = recorder()
    result = await asgi_call(
        HTTPSRedirectMiddleware(inner, exempt_hosts=()), seen, headers=[("Host", "localhost")]
    )
    assert result.status == 301 and result.headers["location"] == "https://localhost/"


async def test_the_redirect_carries_the_given_headers() -> None:
    """Regression (found by tests/app/test_fuzz.py): the redirect had no CSP and no nosniff."""
    inner, seen = recorder()
    headers = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", b"x")]
    result = await asgi_call(
        HTTPSRedirectMiddleware(inner, headers=headers), seen, headers=[("Host", "app.example")]
    )
    assert result.status == 301
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["content-security-policy"] == "x"


async def test_a_target_that_is_not_a_path_redirects_to_the_root() -> None:
    """Regression (found by tests/e2e/test_fuzz.py): `OPTIONS *` was sent to
    https://app.example*, a host that is not the site."""
    inner, seen = recorder()
    result = await asgi_call(
        HTTPSRedirectMiddleware(inner), seen, method="OPTIONS", path="*",
        headers=[("Host", "app.example")],
    )  # fmt: skip
    assert result.status == 308 and result.headers["location"] == "https://app.example/"


@pytest.mark.parametrize("host", ["", "a b", "example.com:99999", ":443"])
async def test_a_host_that_names_none_is_refused_not_redirected(host: str) -> None:
    """Regression (review): with the host check off, a malformed Host redirected to
    https:///evil.example/x, which browsers read as https://evil.example/x."""
    inner, seen = recorder()
    result = await asgi_call(
        HTTPSRedirectMiddleware(inner), seen, path="/evil.example/x", headers=[("Host", host)]
    )
    assert result.status == 400 and "location" not in result.headers
    assert result.seen is None
