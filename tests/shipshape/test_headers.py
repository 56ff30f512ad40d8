from __future__ import annotations

import re
from typing import Any

import pytest
from quart import Quart, Response, jsonify, render_template_string

from shipshape.csp import csp_exempt, csp_extend, csp_replace
from shipshape.headers import PERMISSIONS_POLICY, header_profile, security_headers
from tests.conftest import SECRET
from tests.shipshape.conftest import MakeApp

NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]{22})'")
HTML_CSP = (
    "default-src 'none'; script-src 'self' 'nonce-N'; style-src 'self' 'nonce-N'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
REPORTING = "report-uri /csp-report; report-to csp"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
PAGE = {
    **COMMON,
    "X-Frame-Options": "SAMEORIGIN",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "X-XSS-Protection": "0",
    "Reporting-Endpoints": 'csp="/csp-report"',
}
API = {
    **COMMON,
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
HSTS = "max-age=63072000; includeSubDomains"
SECURITY_NAMES = {
    *PAGE,
    "X-Frame-Options",
    "Content-Security-Policy",
    "Content-Security-Policy-Report-Only",
    "Strict-Transport-Security",
}
MODES = {
    "development": {"APP_ENV": "development"},
    "production": {"APP_ENV": "production", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "localhost"},
}


def build(make_app: MakeApp, mode: str, **config: Any) -> Quart:
    app = make_app(SHIPSHAPE_ASSETS=False, **MODES[mode], **config)

    @app.get("/page")
    async def page() -> str:
        return await render_template_string("<script nonce='{{ csp_nonce() }}'></script>")

    @app.get("/api/data")
    async def data() -> Response:
        return jsonify(ok=True)

    @app.get("/spa")
    @header_profile("spa")
    async def spa() -> str:
        return "<!doctype html>"

    @app.get("/gallery")
    @csp_extend(img_src=["https://img.example"], frame_src=["https://video.example"])
    async def gallery() -> str:
        return "<p>"

    @app.get("/replaced")
    @csp_replace(script_src=["'self'"], style_src=None)
    @csp_extend(connect_src=["wss://live.example"])
    async def replaced() -> str:
        return "<p>"

    @app.get("/no-csp")
    @csp_exempt
    async def no_csp() -> str:
        return "<p>"

    @app.get("/embed")
    @security_headers(Cross_Origin_Embedder_Policy=None, X_Frame_Options="DENY")
    async def embed() -> str:
        return "<p>"

    @app.get("/own")
    async def own() -> Response:
        return Response("<p>", headers={"X-Frame-Options": "DENY", "Server": "x/1.0"})

    return app


def security(response: Any) -> dict[str, str]:
    """The security headers of a response, under their canonical names."""
    return {name: response.headers[name] for name in SECURITY_NAMES if name in response.headers}


async def get(app: Quart, path: str, scheme: str = "http") -> Any:
    async with app.test_app():
        return await app.test_client().get(path, scheme=scheme)


@pytest.mark.parametrize("mode", ["development", "production"])
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_html_profile_exact_headers(make_app: MakeApp, mode: str, scheme: str) -> None:
    response = await get(build(make_app, mode), "/page", scheme)
    headers = security(response)
    csp = headers.pop("Content-Security-Policy")
    upgrade = "; upgrade-insecure-requests" if mode == "production" else ""
    assert NONCE.sub("'nonce-N'", csp) == f"{HTML_CSP}{upgrade}; {REPORTING}"
    expected = dict(PAGE)
    if mode == "production" and scheme == "https":
        expected["Strict-Transport-Security"] = HSTS
    assert headers == expected
    assert "Server" not in response.headers


@pytest.mark.parametrize("mode", ["development", "production"])
async def test_api_profile_exact_headers(make_app: MakeApp, mode: str) -> None:
    response = await get(build(make_app, mode), "/api/data", "https")
    expected = dict(API)
    if mode == "production":
        expected["Strict-Transport-Security"] = HSTS
    assert security(response) == expected


async def test_error_pages_get_the_page_profile(make_app: MakeApp) -> None:
    response = await get(build(make_app, "development"), "/nowhere")
    assert response.status_code == 404
    assert NONCE.search(response.headers["Content-Security-Policy"])
    json_error = await get(build(make_app, "development"), "/api/nowhere")
    assert json_error.headers["Content-Security-Policy"] == API["Content-Security-Policy"]


async def test_spa_profile_can_differ(make_app: MakeApp) -> None:
    app = build(make_app, "development", SHIPSHAPE_CSP_SPA=None)
    page, spa = await get(app, "/page"), await get(build(make_app, "development"), "/spa")
    assert "Content-Security-Policy" in page.headers and NONCE.search(
        spa.headers["Content-Security-Policy"]
    )
    no_csp_spa = await get(app, "/spa")
    assert "Content-Security-Policy" not in no_csp_spa.headers
    assert no_csp_spa.headers["Cross-Origin-Opener-Policy"] == "same-origin"


async def test_nonce_is_fresh_and_matches_the_page(make_app: MakeApp) -> None:
    app = build(make_app, "development")
    nonces = set()
    async with app.test_app():
        client = app.test_client()
        for _ in range(20):
            response = await client.get("/page")
            nonce = NONCE.findall(response.headers["Content-Security-Policy"])
            assert len(set(nonce)) == 1, "script-src and style-src share one nonce"
            assert f"nonce='{nonce[0]}'" in await response.get_data(as_text=True)
            nonces.add(nonce[0])
    assert len(nonces) == 20


@pytest.mark.parametrize(
    ("path", "present", "absent"),
    [
        (
            "/gallery",
            ["img-src 'self' data: https://img.example", "frame-src https://video.example"],
            [],
        ),
        (
            "/replaced",
            ["script-src 'self';", "connect-src 'self' wss://live.example"],
            ["style-src", "'nonce-"],
        ),
    ],
)
async def test_csp_decorators(
    make_app: MakeApp, path: str, present: list[str], absent: list[str]
) -> None:
    csp = (await get(build(make_app, "development"), path)).headers["Content-Security-Policy"]
    for fragment in present:
        assert fragment in csp
    for fragment in absent:
        assert fragment not in csp
    assert csp.endswith(REPORTING)


async def test_csp_exempt_and_header_overrides(make_app: MakeApp) -> None:
    app = build(make_app, "development")
    no_csp = await get(app, "/no-csp")
    assert "Content-Security-Policy" not in no_csp.headers
    assert no_csp.headers["X-Frame-Options"] == "SAMEORIGIN"
    embed = await get(app, "/embed")
    assert "Cross-Origin-Embedder-Policy" not in embed.headers
    assert embed.headers["X-Frame-Options"] == "DENY"
    own = await get(app, "/own")
    assert own.headers["X-Frame-Options"] == "DENY", "a header the view set is kept"
    assert "Server" not in own.headers


async def test_report_only_mode(make_app: MakeApp) -> None:
    response = await get(build(make_app, "development", SHIPSHAPE_CSP_REPORT_ONLY=True), "/page")
    assert "Content-Security-Policy" not in response.headers
    assert NONCE.search(response.headers["Content-Security-Policy-Report-Only"])


async def test_headers_can_be_tuned_or_turned_off(make_app: MakeApp) -> None:
    app = build(
        make_app,
        "production",
        SHIPSHAPE_COEP=None,
        SHIPSHAPE_HSTS_PRELOAD=True,
        SHIPSHAPE_CSP_REPORT_PATH=None,
        SHIPSHAPE_XSS_PROTECTION=None,
    )
    response = await get(app, "/page", "https")
    assert "Cross-Origin-Embedder-Policy" not in response.headers
    assert "X-XSS-Protection" not in response.headers
    assert "Reporting-Endpoints" not in response.headers
    assert "report-uri" not in response.headers["Content-Security-Policy"]
    assert response.headers["Strict-Transport-Security"] == HSTS + "; preload"
    off = await get(build(make_app, "production", SHIPSHAPE_HSTS=False), "/page", "https")
    assert "Strict-Transport-Security" not in off.headers


async def test_everything_off(make_app: MakeApp) -> None:
    response = await get(build(make_app, "development", SHIPSHAPE_HEADERS=False), "/page")
    assert security(response) == {}


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown header profile"):
        header_profile("pdf")  # type: ignore[arg-type]


async def test_unrouted_responses_share_one_cached_header_set(make_app: MakeApp) -> None:
    """404s and 405s have a policy row of their own, so their headers are built once."""
    app = make_app(SHIPSHAPE_ASSETS=False)
    async with app.test_app():
        client = app.test_client()
        first = await client.get("/nowhere")
        security = app.extensions["shipshape"].headers
        cached = security._view_cache[(None, "html")]
        second = await client.get("/elsewhere")
        assert security._view_cache[(None, "html")] is cached
    assert first.status_code == second.status_code == 404
    assert first.headers["X-Frame-Options"] == second.headers["X-Frame-Options"] == "SAMEORIGIN"
