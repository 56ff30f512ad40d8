"""tozo's way of serving a built single-page frontend, on the same build.

As pgjones' tozo backend does it: Quart with quart-rate-limiter (memory
store, a default limit far above the load) whose serving routes are
``@rate_exempt``; a catch-all route that runs ``render_template("index.html")``
for every path under the mount, and ``send_from_directory`` for the build's
assets; security headers set on every response in an after-request hook. No
compression: tozo leaves it to a proxy.
"""

from __future__ import annotations

from datetime import timedelta

from quart import Quart, Response, render_template, send_from_directory
from quart_rate_limiter import RateLimit, RateLimiter, rate_exempt

from bench.peers.common import PROJECT_ROOT

BUILD = PROJECT_ROOT / "frontend" / "dist"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
        "style-src 'self' 'unsafe-inline'"
    ),
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=63072000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer, strict-origin-when-cross-origin",
}


def create_app() -> Quart:
    app = Quart(__name__, static_folder=None, template_folder=str(BUILD))
    RateLimiter(app, default_limits=[RateLimit(1_000_000, timedelta(seconds=1))])

    @app.get("/app/assets/<path:path>")
    @rate_exempt
    async def asset(path: str) -> Response:
        return await send_from_directory(BUILD / "assets", path)

    @app.get("/app/")
    @app.get("/app/<path:path>")
    @rate_exempt
    async def index(path: str | None = None) -> str:
        return await render_template("index.html")

    @app.get("/")
    async def probe() -> str:
        return "ok"  # the harness's start-up probe

    @app.after_request
    async def security_headers(response: Response) -> Response:
        response.headers.update(HEADERS)
        return response

    return app
