"""Meta-tests: policies that every route of the example app must follow."""

from __future__ import annotations

from quart import Quart

from shipshape.pipeline import Pipeline
from tests.conftest import Client

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: Views allowed to skip CSRF, each with its reason.
CSRF_EXEMPT = {
    "shipshape_csp.report": "browsers send violation reports without a token",
}


def unsafe_routes(app: Quart) -> list[tuple[str, str, str]]:
    return sorted(
        (rule.rule, rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) & UNSAFE
    )


async def test_no_unsafe_route_skips_csrf_unless_listed(app: Quart, client: Client) -> None:
    routes = unsafe_routes(app)
    assert routes, "the app has forms"
    policies = Pipeline.of(app).policies
    for path, endpoint, method in routes:
        exempt = policies.row(endpoint).csrf_exempt
        assert exempt is (endpoint in CSRF_EXEMPT), endpoint
        if exempt:
            continue
        response = await client.open(
            path, method=method, form={"anything": "x"}, headers={"Accept": "application/json"}
        )
        assert response.status_code == 400, (method, path)
        assert (await response.get_json())["code"] == "csrf_failed"


#: Routes with no rate limit at all, each with its reason. Everything else must be limited.
RATE_EXEMPT = {
    "shipshape_health.healthz": "a liveness probe; a refusal would restart a healthy app",
    "shipshape_health.readyz": "an orchestrator's readiness probe",
}


async def test_every_route_is_limited_or_explicitly_exempt(app: Quart) -> None:
    """Meta-test: a new route gets the default limit unless it is listed above with a reason."""
    limiter = app.extensions["shipshape"].ratelimiter
    policies = Pipeline.of(app).policies
    endpoints = sorted({rule.endpoint for rule in app.url_map.iter_rules()})
    assert len(endpoints) > 5
    exempt = set()
    for endpoint in endpoints:
        found = limiter.rule_for(policies.row(endpoint))
        if found is None:
            exempt.add(endpoint)
        else:
            assert found[1].limits, endpoint
    assert exempt == set(RATE_EXEMPT)
    assert limiter.rule_for(policies.unrouted) is not None, "404s count too"
