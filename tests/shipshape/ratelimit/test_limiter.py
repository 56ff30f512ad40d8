from __future__ import annotations

import pytest
from quart import Quart, request

from shipshape.config import RateLimit
from shipshape.ratelimit import MemoryStore, rate_limit
from shipshape.ratelimit.store import SWEEP_EVERY
from tests.conftest import client_of
from tests.shipshape.conftest import MakeApp


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


async def test_unlimited_views_get_no_headers(app: Quart) -> None:
    async with app.test_app():
        response = await client_of(app).get("/free")
    assert "RateLimit" not in response.headers


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
