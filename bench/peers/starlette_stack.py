"""Starlette with its ``GZipMiddleware`` over the same body (gzip only)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from bench.peers.common import home_body, static_dir


def create_app() -> Starlette:
    body = home_body()

    async def home(request: Request) -> Response:
        return Response(body, media_type="text/html")

    app = Starlette(
        routes=[Route("/", home)],
        middleware=[Middleware(GZipMiddleware, minimum_size=500)],
    )
    app.mount("/static", StaticFiles(directory=static_dir()))
    return app
