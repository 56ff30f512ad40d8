from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis
from quart import Blueprint, Quart, request, websocket
from quart.testing.connections import WebsocketDisconnectError

from shipshape.config import RateLimit
from shipshape.ratelimit import (
    MemoryStore,
    RedisStore,
    limit_blueprint,
    rate_exempt,
    rate_limit,
)
from shipshape.ratelimit.limiter import client_key
from shipshape.ratelimit.store import SWEEP_EVERY
from tests.conftest import client_of
from tests.servers import RedisServer, free_port
from tests.shipshape.conftest import MakeApp

_clients = itertools.count(1)


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    app = make_app(SHIPSHAPE_ASSETS=False)

    @app.get("/limited")
    @rate_limit("2/second;3/minute")
    async def limited() -> str:
        return "ok"

    @app.get("/per-user")
    @rate_limit("1/minute", key=lambda: request.args.get("user", "anon"))
    async def per_user() -> str:
        return "ok"

    @app.get("/free")
    async def free() -> str:
        return "ok"

    return app


async def test_limits_headers_and_429(app: Quart) -> None:
    async with app.test_app():
        client = client_of(app)
        first = await client.get("/limited")
        assert first.status_code == 200
        assert first.headers["RateLimit-Policy"] == '"2-per-1s";q=2;w=1'
        assert first.headers["RateLimit"] == '"2-per-1s";r=1;t=1'
        assert (await client.get("/limited")).status_code == 200
        refused = await client.get("/limited", headers={"Accept": "application/json"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["RateLimit"] == '"2-per-1s";r=0;t=1'
        assert (await refused.get_json())["code"] == "rate_limited"
        page = await client.get("/limited")
        assert page.status_code == 429 and "Too many requests" in await page.get_data(as_text=True)


async def test_clients_and_keys_are_counted_apart(app: Quart) -> None:
    async with app.test_app():
        client = client_of(app)
        for address in ("192.0.2.1", "192.0.2.2"):
            response = await client.get("/limited", scope_base={"client": (address, 1)})
            assert response.status_code == 200
        assert (await client.get("/per-user?user=a")).status_code == 200
        assert (await client.get("/per-user?user=b")).status_code == 200
        assert (await client.get("/per-user?user=a")).status_code == 429


async def test_exempt_views_get_no_headers(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, RATELIMIT_DEFAULT="1/minute")

    @app.get("/free")
    @rate_exempt
    async def free() -> str:
        return "ok"

    async with app.test_app():
        client = client_of(app)
        responses = [await client.get("/free") for _ in range(3)]
        probes = [await client.get("/healthz") for _ in range(3)] + [await client.get("/readyz")]
    assert [r.status_code for r in responses + probes] == [200] * 7
    assert all("RateLimit" not in r.headers for r in responses + probes)


async def test_csp_report_is_rate_limited(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, SHIPSHAPE_CSP_REPORT_LIMIT="2/minute")
    report = {"csp-report": {"document-uri": "https://a.example/"}}
    async with app.test_app():
        client = client_of(app)
        statuses = [(await client.post("/csp-report", json=report)).status_code for _ in range(3)]
    assert statuses == [204, 204, 429]


def test_bad_spec_fails_at_decoration() -> None:
    with pytest.raises(ValueError, match=r"rate_limit\('lots'\): expected limits like"):
        rate_limit("lots")


async def test_memory_store_sweeps_expired_clients() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    limits = [RateLimit(1, 1)]
    await store.hit("a", limits)
    await store.hit("b", limits)
    assert len(store) == 2
    now[0] = 5.0
    store.sweep(now[0])
    assert len(store) == 0
    for _ in range(SWEEP_EVERY):  # sweeps run by themselves every SWEEP_EVERY hits
        await store.hit("c", limits)
        now[0] += 2
    assert len(store) == 1
    await store.startup()
    await store.ping()
    await store.shutdown()


@pytest.fixture
def defaults(make_app: MakeApp) -> Callable[..., Quart]:
    def build(**config: Any) -> Quart:
        app = make_app(SHIPSHAPE_ASSETS=False, RATELIMIT_DEFAULT="2/second;3/minute", **config)

        @app.get("/a")
        async def a() -> str:
            return "a"

        @app.post("/b")
        async def b() -> str:
            return "b"

        @app.get("/own")
        @rate_limit("10 per 10 seconds")
        async def own() -> str:
            return "own"

        return app

    return build


async def test_the_default_limits_every_route_and_is_shared_by_a_clients_routes(
    defaults: Callable[..., Quart],
) -> None:
    app = defaults()
    async with app.test_app():
        client = client_of(app)
        first = await client.get("/a")
        second = await client.post("/b")  # a refused CSRF check still counts: 400
        third = await client.get("/a")
        elsewhere = await client.get("/nowhere")  # unrouted requests count too
        own = await client.get("/own")
        other_client = await client.get("/a", scope_base={"client": ("192.0.2.50", 1)})
    assert [first.status_code, second.status_code, third.status_code] == [200, 400, 429]
    assert elsewhere.status_code == 429
    assert first.headers["RateLimit-Policy"] == '"2-per-1s";q=2;w=1'
    assert own.status_code == 200, "a view's own limit replaces the default, per route"
    assert own.headers["RateLimit-Policy"] == '"10-per-10s";q=10;w=10'
    assert other_client.status_code == 200


async def test_route_scope_counts_each_route_apart(defaults: Callable[..., Quart]) -> None:
    app = defaults(SHIPSHAPE_RATELIMIT_DEFAULT_SCOPE="route")
    async with app.test_app():
        client = client_of(app)
        statuses = [(await client.get("/a")).status_code for _ in range(3)]
        other = await client.post("/b")
    assert statuses == [200, 200, 429]
    assert other.status_code == 400, "/b has its own default bucket (then CSRF refuses it)"


async def test_blueprint_limits_async_keys_and_legacy_headers(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, SHIPSHAPE_RATELIMIT_LEGACY_HEADERS=True)
    api = Blueprint("api", __name__)

    async def user_key() -> str:  # a per-user key, as an app with logins would write it
        return request.headers.get("X-User", "anonymous")

    @api.get("/api/one")
    async def one() -> str:
        return "one"

    @api.get("/api/free")
    @rate_exempt
    async def free() -> str:
        return "free"

    limit_blueprint(api, "1/minute", key=user_key)
    app.register_blueprint(api)
    async with app.test_app():
        client = client_of(app)
        alice = [await client.get("/api/one", headers={"X-User": "alice"}) for _ in range(2)]
        bob = await client.get("/api/one", headers={"X-User": "bob"})
        free_ = [await client.get("/api/free") for _ in range(3)]
    assert [r.status_code for r in alice] == [200, 429]
    assert bob.status_code == 200
    assert alice[0].headers["X-RateLimit-Limit"] == "1"
    assert alice[0].headers["X-RateLimit-Remaining"] == "0"
    assert alice[0].headers["X-RateLimit-Reset"] == "60"
    assert alice[1].headers["Retry-After"] == "60"
    assert [r.status_code for r in free_] == [200] * 3


async def test_a_forged_x_forwarded_for_does_not_make_a_new_client(
    defaults: Callable[..., Quart],
) -> None:
    app = defaults(TRUSTED_PROXIES=0)
    async with app.test_app():
        client = client_of(app)
        statuses = [
            (await client.get("/a", headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
            for n in range(5)
        ]
    assert statuses == [200, 200, 429, 429, 429]


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_a_dead_store_follows_the_policy_and_never_500s(
    make_app: MakeApp, policy: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = make_app(
        SHIPSHAPE_ASSETS=False,
        REDIS_URL=dead,
        RATELIMIT_DEFAULT="2/minute",  # no refill while the test runs, however slow
        RATELIMIT_ON_STORE_ERROR=policy,
    )
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    logging.getLogger("shipshape.ratelimit").addHandler(handler)
    async with app.test_app():
        client = client_of(app)
        responses = [
            await client.get("/nowhere-but-limited", headers={"Accept": "application/json"})
            for _ in range(10)
        ]
        ready = await client.get("/readyz")
    if policy == "open":  # counted in this worker's memory: the limit still holds
        assert [r.status_code for r in responses] == [404, 404] + [429] * 8
        assert responses[2].headers["Retry-After"] == "30"
    else:
        assert [r.status_code for r in responses] == [503] * 10
    if policy == "closed":
        assert all(r.headers["Retry-After"] in ("1", "2") for r in responses)  # the back-off
        assert (await responses[0].get_json())["code"] == "rate_limit_unavailable"
    store_check = (await ready.get_json())["checks"]["ratelimit_store"]
    if policy == "closed":  # requests fail: the host is not ready
        assert ready.status_code == 503 and store_check["ok"] is False
    else:  # it serves, limited per worker: degraded, not unready (or every host leaves at once)
        assert ready.status_code == 200 and store_check["ok"] is True
        assert "each worker limits on its own" in store_check["degraded"]
    logging.getLogger("shipshape.ratelimit").removeHandler(handler)
    assert len(records) == 1, "one warning per outage, not one per request"


@pytest.mark.parametrize(("policy", "finding"), [("closed", "error"), ("open", "warning")])
def test_check_deploy_names_a_store_it_cannot_reach(
    make_app: MakeApp, redis_server: RedisServer, policy: str, finding: str
) -> None:
    """Regression: with a dead store under ``closed`` (every dynamic request a 503),
    ``make check`` said 0 errors; a live store and the memory store raise nothing."""
    dead = make_app(
        SHIPSHAPE_ASSETS=False, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        RATELIMIT_ON_STORE_ERROR=policy,
    )  # fmt: skip
    shipshape = dead.extensions["shipshape"]
    assert shipshape.ratelimiter.deploy_findings in shipshape.deploy_checks
    [found] = shipshape.ratelimiter.deploy_findings()
    assert found.severity == finding
    assert found.id == ("shipshape.E016" if policy == "closed" else "shipshape.W017")
    assert found.message.startswith("the rate-limit store cannot be reached (ConnectionError")
    live = make_app(SHIPSHAPE_ASSETS=False, REDIS_URL=redis_server.url)
    assert live.extensions["shipshape"].ratelimiter.deploy_findings() == []
    memory = make_app(SHIPSHAPE_ASSETS=False)
    assert memory.extensions["shipshape"].ratelimiter.deploy_findings() == []


async def test_the_redis_store_limits_through_the_app(
    make_app: MakeApp, redis_server: RedisServer
) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, REDIS_URL=redis_server.url, RATELIMIT_DEFAULT="2/minute")
    assert isinstance(app.extensions["shipshape"].ratelimiter.store, RedisStore)
    async with app.test_app():
        client = client_of(app)
        key = f"192.0.2.{next(_clients)}"
        statuses = [
            (await client.get("/x", scope_base={"client": (key, 1)})).status_code for _ in range(3)
        ]
        ready = await client.get("/readyz")
    assert statuses == [404, 404, 429]
    assert ready.status_code == 200


@pytest.mark.parametrize(
    ("accept", "content_type", "snippet"),
    [
        ("text/html", "text/html; charset=utf-8", b"<h1>Too many requests</h1>"),
        ("application/json", "application/json", b'"code":"rate_limited"'),
    ],
)
async def test_a_429_is_small_made_once_and_keeps_the_security_headers(
    defaults: Callable[..., Quart], accept: str, content_type: str, snippet: bytes
) -> None:
    """A flood of refusals must cost little: no template, no session, no CSRF token."""
    app = defaults(SHIPSHAPE_ERROR_TEMPLATE="no-such-template.html")  # would 500 if rendered
    async with app.test_app():
        client = client_of(app)
        await client.get("/a")
        await client.get("/a")
        refused = [await client.get("/a", headers={"Accept": accept}) for _ in range(2)]
    bodies = [await r.get_data(as_text=False) for r in refused]
    assert [r.status_code for r in refused] == [429, 429]
    assert bodies[0] == bodies[1] and snippet in bodies[0] and len(bodies[0]) < 300
    assert refused[0].content_type == content_type
    if content_type.startswith("text/html"):  # a phone lays it out at its width (audit)
        assert b'<meta name="viewport" content="width=device-width, initial-scale=1">' in bodies[0]
        assert b"<main>" in bodies[0]
    assert "Set-Cookie" not in refused[0].headers
    assert "default-src 'none'" in refused[0].headers["Content-Security-Policy"]
    assert refused[0].headers["Retry-After"] == "1"


async def test_refusals_keyed_by_address_never_reach_quart(defaults: Callable[..., Quart]) -> None:
    """The ASGI layer answers them, so a flood costs no request context, hooks or template."""
    app = defaults()
    reached: list[str] = []

    @app.before_request
    async def count() -> None:
        reached.append(request.path)

    async with app.test_app():
        client = client_of(app)
        statuses = [(await client.get("/a")).status_code for _ in range(5)]
        head = await client.head("/a")
    assert statuses == [200, 200, 429, 429, 429]
    assert reached == ["/a", "/a"], "only admitted requests ran in Quart"
    assert head.status_code == 429 and await head.get_data() == b""


@pytest.mark.parametrize("root_path", ["", "/pre"])
async def test_under_a_root_path_each_view_keeps_its_own_policy(
    make_app: MakeApp, root_path: str
) -> None:
    """Regression: the ASGI layer matched the raw path, so under a mount prefix every
    request looked unrouted: exempt views were limited and per-user limits bypassed."""
    app = make_app(SHIPSHAPE_ASSETS=False, RATELIMIT_DEFAULT="1/minute")

    @app.get("/free")
    @rate_exempt
    async def free() -> str:
        return "free"

    @app.get("/mine")
    @rate_limit("1/minute", key=lambda: request.headers.get("X-User", "anonymous"))
    async def mine() -> str:
        return "mine"

    async with app.test_app():
        client = client_of(app)

        async def status(path: str, user: str = "anonymous") -> int:
            response = await client.get(
                root_path + path, root_path=root_path, headers={"X-User": user}
            )
            return response.status_code

        free_ = [await status("/free") for _ in range(3)]
        alice = [await status("/mine", "alice") for _ in range(2)]
        bob = await status("/mine", "bob")
    assert free_ == [200, 200, 200]
    assert alice == [200, 429]
    assert bob == 200


@pytest.mark.parametrize("host", ["example.com..", "a..example.com", "x" * 64 + ".example.com"])
async def test_a_malformed_host_is_a_400_not_a_500(make_app: MakeApp, host: str) -> None:
    """Regression: such a host passed the allow-list and Werkzeug's IDNA step raised."""
    app = make_app(SHIPSHAPE_ASSETS=False, ALLOWED_HOSTS="*")
    async with app.test_app():
        response = await client_of(app).get("/x", headers={"Host": host})
    assert response.status_code == 400


async def test_the_quart_step_also_refuses_before_csrf_and_keeps_legacy_headers(
    make_app: MakeApp,
) -> None:
    """Rules with their own key are decided inside Quart, still before CSRF reads the body."""
    app = make_app(SHIPSHAPE_ASSETS=False, SHIPSHAPE_RATELIMIT_LEGACY_HEADERS=True)

    @app.post("/keyed")
    @rate_limit("2/minute", key=lambda: request.headers.get("X-User", "anonymous"))
    async def keyed() -> str:
        return "saved"

    async with app.test_app():
        client = client_of(app)
        responses = [
            await client.post("/keyed", form={"csrf_token": "forged"}, headers={"X-User": "u"})
            for _ in range(4)
        ]
    assert [r.status_code for r in responses] == [400, 400, 429, 429]
    refused = responses[2]
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" in refused.headers
    assert b"<h1>Too many requests</h1>" in await refused.get_data(), "the plain page"


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),  # an IPv4 client on a dual-stack socket
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_client_keys(address: str | None, key: str) -> None:
    assert client_key(address) == key


async def test_an_ipv6_client_cannot_rotate_out_of_its_limit(
    defaults: Callable[..., Quart],
) -> None:
    app = defaults()
    async with app.test_app():
        client = client_of(app)
        statuses = [
            (await client.get("/a", scope_base={"client": (f"2001:db8::{n:x}", 1)})).status_code
            for n in range(1, 5)
        ]
    assert statuses == [200, 200, 429, 429]


async def test_websocket_handshakes_count_against_the_limits(make_app: MakeApp) -> None:
    """Regression (library user's probe): a WebSocket handshake was never counted, so a
    client could open sockets without end under any limit."""
    app = make_app(SHIPSHAPE_ASSETS=False, RATELIMIT_DEFAULT="2/minute")

    @app.websocket("/ws")
    async def echo() -> None:
        await websocket.accept()
        await websocket.send(await websocket.receive())

    keyed = Blueprint("keyed", __name__)
    limit_blueprint(keyed, "1/minute", key=lambda: f"user:{request.args['user']}")

    @keyed.websocket("/keyed-ws")
    async def keyed_socket() -> None:
        await websocket.accept()
        await websocket.send(await websocket.receive())

    app.register_blueprint(keyed)

    @app.websocket("/free-ws")
    @rate_exempt
    async def free() -> None:
        await websocket.accept()
        await websocket.send("free")

    async def opens(path: str) -> bool:
        try:
            async with client.websocket(path) as socket:
                await socket.send("hi")
                await socket.receive()
        except WebsocketDisconnectError as closed:
            assert closed.args[0] == 1008  # closed unaccepted: the server sends 403
            return False
        return True

    async with app.test_app():
        client = app.test_client()
        assert [await opens("/ws") for _ in range(3)] == [True, True, False]
        # A key function reads `request`, which a handshake has not (review: it raised,
        # and the socket closed with 1011): the rule counts by address instead.
        assert [await opens("/keyed-ws") for _ in range(2)] == [True, False]
        assert [await opens("/free-ws") for _ in range(3)] == [True, True, True]
        assert (await client_of(app).get("/healthz")).status_code == 200  # exempt, as before


async def test_requests_recover_as_soon_as_readiness_sees_the_store_back(
    make_app: MakeApp,
) -> None:
    """Regression (rate-limit probe): with ``closed``, pages answered 503 for 8-11 s
    after Redis returned, until the breaker's back-off ended, while ``/readyz``
    already said ok."""
    server = RedisServer()
    server.start()
    app = make_app(SHIPSHAPE_ASSETS=False, REDIS_URL=server.url, RATELIMIT_ON_STORE_ERROR="closed")
    try:
        async with app.test_app():
            client = client_of(app)
            assert (await client.get("/nowhere-but-limited")).status_code == 404
            server.stop()
            for _ in range(3):  # failures pile up: a back-off of several seconds
                assert (await client.get("/nowhere-but-limited")).status_code == 503
                app.extensions["shipshape"].ratelimiter.breaker.open_until = 0.0
            assert (await client.get("/nowhere-but-limited")).status_code == 503
            assert (await client.get("/readyz")).status_code == 503
            server.start()  # same port
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/nowhere-but-limited")).status_code == 404
    finally:
        server.close()


async def test_readiness_counts_rather_than_pings(make_app: MakeApp) -> None:
    """Regression (review): a store that answers PING and refuses every count (a read-only
    replica after a failover) was reported ready, and each probe ended the outage."""
    server = RedisServer()
    server.start()
    admin = redis.Redis.from_url(server.url)
    app = make_app(SHIPSHAPE_ASSETS=False, REDIS_URL=server.url, RATELIMIT_ON_STORE_ERROR="closed")
    try:
        async with app.test_app():
            client = client_of(app)
            assert (await client.get("/readyz")).status_code == 200
            admin.replicaof("127.0.0.1", free_port())  # read-only now; PING still answers
            assert admin.ping()
            assert (await client.get("/nowhere-but-limited")).status_code == 503
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/nowhere-but-limited")).status_code == 503
            admin.replicaof("no", "one")
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/nowhere-but-limited")).status_code == 404
    finally:
        admin.close()
        server.close()
