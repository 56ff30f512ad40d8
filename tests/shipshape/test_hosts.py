from __future__ import annotations

import json

import pytest

from shipshape.hosts import AllowedHostsMiddleware, _split_host_kept, host_allowed, split_host
from tests.conftest import client_of
from tests.shipshape.conftest import MakeApp, asgi_call, recorder


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Example.COM:8000", "example.com"),
        ("example.com", "example.com"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("localhost:5000", "localhost"),
        # Malformed: never matches an allow-list entry, "*" included.
        ("[::1", ""),
        ("::1", ""),
        ("localhost:abc", ""),
        ("localhost:80:80", ""),
        ("localhost:99999", ""),
        ("user@localhost", ""),
        ("localhost, evil.example", ""),  # two Host lines, joined
        ("local host", ""),
        ("localhost:", ""),
        ("example.com.", "example.com"),  # the root label: the same host, written in full
        ("example.com..", ""),
        ("a..example.com", ""),
        ("x" * 64 + ".example.com", ""),  # a label is at most 63 characters
    ],
)
def test_split_host(host: str, expected: str) -> None:
    assert split_host(host) == expected


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("example.com", ["example.com"], True),
        ("example.com.", ["example.com"], True),
        ("EXAMPLE.com:443", ["example.com"], True),
        ("www.example.com", ["example.com"], False),
        ("www.example.com", [".example.com"], True),
        ("example.com", [".example.com"], True),
        ("badexample.com", [".example.com"], False),
        ("example.com.evil.test", ["example.com"], False),
        ("anything.test", ["*"], True),
        ("", ["*"], False),
        ("[::1]:5000", ["[::1]"], True),
        ("localhost:bogus", ["*"], False),
        ("evil.example@localhost", ["localhost"], False),
    ],
)
def test_host_allowed(host: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(host, allowed) is ok


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("Host", "app.example")], 200),
        ([("Host", "evil.example")], 400),
        ([], 400),
    ],
)
async def test_middleware(headers: list[tuple[str, str]], status: int) -> None:
    inner, seen = recorder()
    result = await asgi_call(
        AllowedHostsMiddleware(inner, allowed=["app.example"]),
        seen,
        headers=[*headers, ("Accept", "application/json")],
    )
    assert result.status == status
    if status == 400:
        assert result.seen is None, "the app never runs"
        assert result.headers["content-type"] == "application/json"
        assert result.headers["x-content-type-options"] == "nosniff"
        assert result.headers["x-frame-options"] == "DENY"  # as the app's own error pages
        assert json.loads(result.body) == {
            "error": 400,
            "code": "host_not_allowed",
            "message": "This host name is not served here.",
        }


async def test_a_head_refusal_has_the_headers_and_no_body() -> None:
    """Regression (review): errors answered before the app sent their body to HEAD."""
    inner, seen = recorder()
    get, head = [
        await asgi_call(
            AllowedHostsMiddleware(inner, allowed=["app.example"]), seen, method=method,
            headers=[("Host", "evil.example")],
        )
        for method in ("GET", "HEAD")
    ]  # fmt: skip
    assert head.status == get.status == 400
    assert head.body == b"" and get.body
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.body))


async def test_websocket_with_a_bad_host_is_closed() -> None:
    inner, seen = recorder()
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    async def receive() -> dict[str, object]:
        return {}

    scope = {"type": "websocket", "path": "/", "headers": [(b"host", b"evil")]}
    await AllowedHostsMiddleware(inner, allowed=["good"])(scope, receive, send)  # type: ignore[arg-type]
    assert messages == [{"type": "websocket.close", "code": 1008}] and not seen


async def test_lifespan_passes_and_empty_list_is_refused() -> None:
    inner, seen = recorder()
    await asgi_call(AllowedHostsMiddleware(inner, allowed=["x"]), seen, scope_type="lifespan")
    assert seen[-1]["type"] == "lifespan"
    with pytest.raises(ValueError, match="must not be empty"):
        AllowedHostsMiddleware(inner, allowed=[])


@pytest.mark.parametrize(
    ("path", "accept", "html"),
    [
        ("/", "text/html,application/xhtml+xml,*/*;q=0.8", True),
        ("/", None, True),
        ("/", "application/json", False),
        ("/api/things", "text/html", False),
    ],
)
async def test_refusal_is_a_page_for_browsers_and_json_for_apis(
    path: str, accept: str | None, html: bool
) -> None:
    """Regression: a browser asking for HTML was answered in JSON."""
    inner, seen = recorder()
    result = await asgi_call(
        AllowedHostsMiddleware(inner, allowed=["app.example"]),
        seen,
        path=path,
        headers=[("Host", "evil.example"), *([("Accept", accept)] if accept else [])],
    )
    assert result.status == 400 and result.seen is None
    if html:
        assert result.headers["content-type"] == "text/html; charset=utf-8"
        assert b"<h1>Bad request</h1>" in result.body
        assert b"This host name is not served here." in result.body
    else:
        assert json.loads(result.body)["code"] == "host_not_allowed"


async def test_two_host_lines_are_refused() -> None:
    """RFC 9112 §3.2: a request with more than one Host line is a 400."""
    inner, seen = recorder()
    result = await asgi_call(
        AllowedHostsMiddleware(inner, allowed=["*"]),
        seen,
        headers=[("Host", "app.example"), ("Host", "evil.example")],
    )
    assert result.status == 400 and result.seen is None


def test_answers_are_kept_for_short_values_only_and_a_bounded_number() -> None:
    label = "a" * 63
    long_name = ".".join([label] * 5)  # 319 characters: too long to keep
    assert len(long_name) > 260
    before = _split_host_kept.cache_info()
    assert split_host(f"{long_name}:443".upper()) == long_name
    assert _split_host_kept.cache_info().currsize == before.currsize
    assert split_host("Kept.Example:80") == split_host("Kept.Example:80") == "kept.example"
    assert _split_host_kept.cache_info().hits > before.hits
    for n in range(300):  # a client sending many names only churns the kept answers
        split_host(f"host{n}.example")
    assert _split_host_kept.cache_info().currsize == 256


@pytest.mark.parametrize(
    ("exempt", "path", "host", "status"),
    [
        (None, "/healthz", "10.0.0.5:8000", 200),  # the default: the health probes
        (None, "/healthz", "[fd00::5]", 200),
        (None, "/readyz", "10.0.0.5", 503),  # the app's answer: this app has no assets built
        (None, "/", "10.0.0.5", 400),
        (None, "/healthz/", "10.0.0.5", 400),  # exact paths only
        (None, "/healthzx", "10.0.0.5", 400),
        (None, "/healthz", "evil.example", 400),  # a DNS name: rebinding could read the probes
        (None, "/healthz", "10.0.0.5:99999", 400),  # malformed hosts stay refused
        (None, "/healthz", "user@10.0.0.5", 400),
        (None, "/healthz", "10.0.0.5.evil", 400),
        ((), "/healthz", "10.0.0.5", 400),  # the explicit opt-out
        (("/probe",), "/probe", "10.0.0.5", 404),  # reaches the app, which has no such route
    ],
)
async def test_health_probes_are_answered_for_an_ip_address_host(
    make_app: MakeApp, exempt: tuple[str, ...] | None, path: str, host: str, status: int
) -> None:
    """Regression: Kubernetes and load balancers probe with the pod's IP as Host, and
    got 400 in production (the probes were exempt from the HTTPS redirect only)."""
    extra = {} if exempt is None else {"SHIPSHAPE_HOST_CHECK_EXEMPT_PATHS": exempt}
    app = make_app(ALLOWED_HOSTS="app.example", **extra)
    response = await client_of(app).get(path, headers={"Host": host})
    assert response.status_code == status, path
    if status == 400:
        assert "This host name is not served here." in await response.get_data(as_text=True)
    if path == "/healthz" and status == 200:
        assert await response.get_json() == {"status": "ok"}
