"""Quart with its usual parts: a view returning the page, ``send_from_directory`` for files."""

from __future__ import annotations

from quart import Quart, Response, send_from_directory

from bench.peers.common import home_body, static_dir


def create_app() -> Quart:
    body, static = home_body(), static_dir()
    app = Quart(__name__, static_folder=None)

    @app.get("/")
    async def home() -> Response:
        return Response(body, mimetype="text/html")

    @app.get("/static/<path:name>")
    async def static_file(name: str) -> Response:
        return await send_from_directory(static, name)

    return app
