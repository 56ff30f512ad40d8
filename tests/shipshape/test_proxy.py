from __future__ import annotations

import pytest

from shipshape.proxy import ProxyMiddleware, parse_networks
from shipshape.typing import Message, Scope
from tests.shipshape.conftest import asgi_call, recorder

SPOOF = [
    ("X-Forwarded-For", "203.0.113.9"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "evil.example"),
    ("Host", "app.example"),
]


def host_of(scope: Scope) -> str:
    return next(str(v.decode()) for k, v in scope["headers"] if k == b"host")


async def test_zero_hops_ignores_and_strips_every_forwarded_header() -> None:
    inner, seen = recorder()
    result = await asgi_call(ProxyMiddleware(inner, trusted_hops=0), seen, headers=SPOOF)
    scope = result.seen
    assert scope is not None
    assert scope["client"] == ("192.0.2.1", 40000)
    assert scope["scheme"] == "http"
    assert host_of(scope) == "app.example"
    assert not any(k.startswith(b"x-forwarded-") for k, _ in scope["headers"])


@pytest.mark.parametrize(
    ("hops", "xff", "client"),
    [
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the client forged the first entry
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "192.0.2.1"),  # fewer values than hops: not from our proxies
        (1, "unknown", "192.0.2.1"),
        (1, "[2001:db8::1]", "2001:db8::1"),
        (1, "not-an-ip, ", "192.0.2.1"),
        # Regression (rate-limit probe): a port, as some load balancers write one, made
        # the entry no address, and every client the proxy's one client.
        (1, "203.0.113.9:5678", "203.0.113.9"),
        (1, "[2001:db8::1]:443", "2001:db8::1"),
        (1, "2001:DB8::1", "2001:db8::1"),  # one spelling per client
        (1, "203.0.113.9:", "192.0.2.1"),
        (1, "203.0.113.9:99999999", "192.0.2.1"),
        (1, "[203.0.113.9", "192.0.2.1"),
        (1, "_hidden", "192.0.2.1"),  # an obfuscated id (RFC 7239 §6.3)
    ],
)
async def test_client_is_the_nth_from_the_right(hops: int, xff: str, client: str) -> None:
    inner, seen = recorder()
    result = await asgi_call(
        ProxyMiddleware(inner, trusted_hops=hops), seen, headers=[("X-Forwarded-For", xff)]
    )
    assert result.seen is not None
    assert result.seen["client"][0] == client


async def test_several_header_lines_join_into_one_list() -> None:
    inner, seen = recorder()
    headers = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")]
    result = await asgi_call(ProxyMiddleware(inner, trusted_hops=1), seen, headers=headers)
    assert result.seen is not None and result.seen["client"][0] == "203.0.113.9"


@pytest.mark.parametrize(
    ("proto", "scope_type", "scheme"),
    [
        ("https", "http", "https"),
        ("HTTP", "http", "http"),
        ("gopher", "http", "http"),
        ("https", "websocket", "wss"),
        ("http", "websocket", "ws"),
    ],
)
async def test_scheme(proto: str, scope_type: str, scheme: str) -> None:
    inner, seen = recorder()
    result = await asgi_call(
        ProxyMiddleware(inner, trusted_hops=1),
        seen,
        headers=[("X-Forwarded-Proto", proto)],
        scope_type=scope_type,
    )
    assert result.seen is not None and result.seen["scheme"] == scheme


async def test_host_is_replaced_once() -> None:
    inner, seen = recorder()
    result = await asgi_call(ProxyMiddleware(inner, trusted_hops=1), seen, headers=SPOOF)
    assert result.seen is not None
    assert host_of(result.seen) == "evil.example"
    assert sum(k == b"host" for k, _ in result.seen["headers"]) == 1


@pytest.mark.parametrize(
    ("peer", "trusted"), [("10.1.2.3", True), ("192.0.2.1", False), (None, False)]
)
async def test_network_allow_list(peer: str | None, trusted: bool) -> None:
    inner, seen = recorder()
    middleware = ProxyMiddleware(
        inner, trusted_hops=1, trusted_networks=parse_networks(["10.0.0.0/8", "::1"])
    )
    result = await asgi_call(middleware, seen, headers=SPOOF, client=(peer, 1) if peer else None)
    assert result.seen is not None
    assert (result.seen["scheme"] == "https") is trusted
    assert not any(k.startswith(b"x-forwarded-") for k, _ in result.seen["headers"])


async def test_unix_socket_peer_is_not_trusted_by_network() -> None:
    inner, seen = recorder()
    middleware = ProxyMiddleware(
        inner, trusted_hops=1, trusted_networks=parse_networks(["10.0.0.0/8"])
    )
    result = await asgi_call(middleware, seen, headers=SPOOF, client=("/run/app.sock", 0))
    assert result.seen is not None and result.seen["scheme"] == "http"


async def test_requests_without_forwarded_headers_keep_their_scope() -> None:
    inner, seen = recorder()
    result = await asgi_call(ProxyMiddleware(inner, trusted_hops=1), seen)
    assert result.seen is not None and result.seen["client"] == ("192.0.2.1", 40000)


@pytest.mark.parametrize("hops", [0, 1])
async def test_a_name_with_the_prefix_inside_is_kept_and_a_forwarded_one_after_it_stripped(
    hops: int,
) -> None:
    """The quick test of the names joined must not pass a request whose X-Forwarded-*
    header comes after another header, nor strip a name that only contains the prefix."""
    inner, seen = recorder()
    headers = [("Host", "app.example"), ("Foo-X-Forwarded-For", "kept"), ("Accept", "*/*")]
    result = await asgi_call(ProxyMiddleware(inner, trusted_hops=hops), seen, headers=headers)
    assert result.seen is not None
    assert (b"foo-x-forwarded-for", b"kept") in result.seen["headers"]
    headers.append(("X-Forwarded-For", "203.0.113.9"))
    result = await asgi_call(ProxyMiddleware(inner, trusted_hops=hops), seen, headers=headers)
    assert result.seen is not None
    names = [name for name, _ in result.seen["headers"]]
    assert b"x-forwarded-for" not in names and b"foo-x-forwarded-for" in names
    assert result.seen["client"] == (("203.0.113.9", 0) if hops else ("192.0.2.1", 40000))


async def test_headers_given_as_a_one_pass_iterable_are_read_once() -> None:
    """ASGI allows any iterable of headers; the quick test must not use one up."""
    inner, seen = recorder()
    app = ProxyMiddleware(inner, trusted_hops=1)
    raw = [(b"host", b"app.example"), (b"x-forwarded-for", b"203.0.113.9")]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    scope = {"type": "http", "headers": iter(raw), "client": ("192.0.2.1", 40000)}
    await app(scope, receive, send)
    assert seen[-1]["client"] == ("203.0.113.9", 0)
    assert seen[-1]["headers"] == [(b"host", b"app.example")]


async def test_lifespan_passes_through() -> None:
    inner, seen = recorder()
    await asgi_call(ProxyMiddleware(inner, trusted_hops=1), seen, scope_type="lifespan")
    assert seen[-1]["type"] == "lifespan"


def test_bad_arguments() -> None:
    inner, _ = recorder()
    with pytest.raises(ValueError, match="0 or more"):
        ProxyMiddleware(inner, trusted_hops=-1)
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.300/8"])
