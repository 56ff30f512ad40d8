"""Header and transport security of the example app, in both modes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart, url_for
from quart import request as quart_request

from app import create_app
from tests.conftest import SECRET, UNLIMITED, client_of, csrf_from

NONCE_RE = re.compile(r"'nonce-([A-Za-z0-9_-]{22})'")
MODES = {
    "development": {"APP_ENV": "development"},
    "production": {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "app.example,localhost",
    },
}


@pytest.fixture(params=["development", "production"], name="mode_app")
async def _mode_app(request: pytest.FixtureRequest) -> AsyncIterator[Quart]:
    app = create_app(
        {
            **MODES[request.param],
            "SHIPSHAPE_CONFIGURE_LOGGING": False,
            "RATELIMIT_DEFAULT": UNLIMITED,  # every route, quickly; limits have their own tests
        }
    )

    @app.get("/_where")
    async def where() -> dict[str, Any]:
        return {
            "external": url_for("pages.index", _external=True),
            "client": quart_request.remote_addr,
            "scheme": quart_request.scheme,
            "host": quart_request.host,
        }

    async with app.test_app():
        yield app


def html_routes(app: Quart) -> list[str]:
    skip = ("static", "shipshape_health.", "shipshape_csp.", "things.download")
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ())
        and not rule.arguments
        and not rule.endpoint.startswith(skip)
        and not rule.rule.startswith(("/_", "/api/", "/openapi.json"))  # JSON, tested apart
    )


async def test_every_html_route_has_a_nonce_csp_and_nonced_tags(mode_app: Quart) -> None:
    routes = html_routes(mode_app)
    assert {"/", "/cookies", "/privacy", "/accessibility"} <= set(routes)
    client = mode_app.test_client()
    for path in [*routes, "/no/such/page"]:
        response = await client.get(path, scheme="https")
        assert response.content_type.startswith("text/html"), path
        csp = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        nonces = set(NONCE_RE.findall(csp))
        assert len(nonces) == 1, path
        nonce = nonces.pop()
        html = await response.get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", html)
        styles = re.findall(r'<link rel="stylesheet"[^>]*>', html)
        assert scripts and styles
        for tag in scripts + styles:
            assert f'nonce="{nonce}"' in tag, (path, tag)


@pytest.mark.parametrize("path", ["/api/things", "/cookies", "/"])
async def test_an_automatic_options_answer_is_not_a_page(mode_app: Quart, path: str) -> None:
    """Regression: Quart answers OPTIONS with an empty text/html body, which took a page's
    frame options and nonce CSP, on the API's paths too; an empty answer gets the API's."""
    response = await mode_app.test_client().options(path, scheme="https")
    # The API's is a 204 of its own (tests/app/test_things_api.py); a page's Quart's 200.
    assert response.status_code == (204 if path.startswith("/api/") else 200)
    assert "GET" in response.headers["Allow"]
    assert await response.get_data() == b""
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_hsts_only_over_https_in_production(mode_app: Quart) -> None:
    client = mode_app.test_client()
    https = await client.get("/", scheme="https")
    http = await client.get("/", scheme="http")
    production = mode_app.extensions["shipshape"].settings.is_production
    assert ("Strict-Transport-Security" in https.headers) is production
    assert "Strict-Transport-Security" not in http.headers


@pytest.mark.parametrize(("method", "status"), [("GET", 301), ("HEAD", 301), ("POST", 308)])
async def test_production_redirects_plain_http(method: str, status: int) -> None:
    app = create_app(MODES["production"])
    async with app.test_app():
        response = await client_of(app).open(
            "/cookies?x=1", method=method, headers={"Host": "app.example"}
        )
    assert response.status_code == status
    assert response.headers["Location"] == "https://app.example/cookies?x=1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


async def test_development_serves_plain_http(client: Any) -> None:
    response = await client.get("/", headers={"Host": "localhost"})
    assert response.status_code == 200
    assert "upgrade-insecure-requests" not in response.headers["Content-Security-Policy"]


SPOOF = {
    "Host": "localhost",
    "X-Forwarded-For": "203.0.113.66",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
}


async def test_forwarded_headers_change_nothing_without_trusted_proxies(mode_app: Quart) -> None:
    response = await mode_app.test_client().get(
        "/_where", headers=SPOOF, scope_base={"client": ("192.0.2.5", 1)}
    )
    assert response.status_code == 200
    assert await response.get_json() == {
        "external": "http://localhost/",
        "client": "192.0.2.5",
        "scheme": "http",
        "host": "localhost",
    }
    assert "Strict-Transport-Security" not in response.headers


async def test_one_trusted_proxy_resolves_client_scheme_and_host() -> None:
    app = create_app({**MODES["production"], "TRUSTED_PROXIES": "1"})

    @app.get("/_where")
    async def where() -> dict[str, Any]:
        return {
            "external": url_for("pages.index", _external=True),
            "client": quart_request.remote_addr,
        }

    headers = {**SPOOF, "X-Forwarded-Host": "app.example"}
    async with app.test_app():
        response = await app.test_client().get("/_where", headers=headers)
        evil = await app.test_client().get("/_where", headers=SPOOF)
    assert await response.get_json() == {
        "external": "https://app.example/",
        "client": "203.0.113.66",
    }
    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert evil.status_code == 400, "a forwarded host must pass the allow-list too"


@pytest.mark.parametrize(
    ("host", "status"),
    [("localhost", 200), ("LOCALHOST:5000", 200), ("evil.example", 400), ("", 400)],
)
async def test_host_allow_list(mode_app: Quart, host: str, status: int) -> None:
    response = await mode_app.test_client().get("/", headers={"Host": host}, scheme="https")
    assert response.status_code == status


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/things", {"Host": "evil.example"}, 400),
        ("/", {"Accept-Encoding": "identity;q=0"}, 406),
        ("/static/nothing-here.css", {}, 404),  # through Quart: the same profile
    ],
)
async def test_refusals_made_before_quart_carry_the_api_profile(
    mode_app: Quart, path: str, headers: dict[str, str], status: int
) -> None:
    """Regression (hostile-input probe): the host refusal and the 406 had no Referrer-Policy
    and no Cross-Origin-Resource-Policy, which every response of the API profile has."""
    response = await mode_app.test_client().get(path, headers=headers, scheme="https")
    assert response.status_code == status
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(response.headers.getlist("Content-Security-Policy")) == 1


async def test_production_form_post_over_https(mode_app: Quart) -> None:
    client = mode_app.test_client()
    page = await client.get("/cookies", scheme="https")
    token = csrf_from(await page.get_data(as_text=True))
    response = await client.post(
        "/cookies",
        form={"functional": "no", "analytics": "no", "csrf_token": token},
        scheme="https",
        headers={"Origin": "https://localhost", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 303


async def test_a_page_that_sets_a_cookie_is_private(mode_app: Quart) -> None:
    """Regression: pages setting a new session cookie carried no Cache-Control at all."""
    client = mode_app.test_client()
    fresh = await client.get("/", scheme="https")
    assert "Set-Cookie" in fresh.headers
    assert fresh.headers["Cache-Control"] == "private"
    probe = await client.get("/healthz", scheme="https")
    assert probe.headers["Cache-Control"] == "no-store", "a view's own choice is kept"


@pytest.mark.parametrize("path", ["/", "/cookies", "/things/", "/missing-page"])
async def test_a_return_visits_page_with_a_token_is_private(mode_app: Quart, path: str) -> None:
    """Regression: with the session cookie sent back, a page carrying a token bound to
    that session had no Cache-Control and no ``Vary: Cookie``, so a shared cache that
    keeps such a 200 would hand one client's token to others."""
    client = mode_app.test_client()
    await client.get("/", scheme="https")  # the session cookie, kept by the client
    again = await client.get(path, scheme="https")
    assert "Set-Cookie" not in again.headers
    assert 'name="csrf_token"' in await again.get_data(as_text=True)
    assert again.headers["Cache-Control"] == "private"
    assert "Cookie" in {v.strip() for v in again.headers["Vary"].split(",")}
    static = await client.get("/healthz", scheme="https")
    assert "Cookie" not in static.headers.get("Vary", ""), "a response that read no session"
