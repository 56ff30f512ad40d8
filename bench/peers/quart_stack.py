"""Quart with its usual parts: a view returning the page, ``send_from_directory`` for files."""

from __future__ import annotations

from quart import Quart, Response, send_from_directory

from bench.peers.common import STATIC_DIR, home_body

BODY = home_body()
app = Quart(__name__, static_folder=None)


@app.get("/")
async def home() -> Response:
    return Response(BODY, mimetype="text/html")


@app.get("/static/<path:name>")
async def static_file(name: str) -> Response:
    return await send_from_directory(STATIC_DIR, name)
