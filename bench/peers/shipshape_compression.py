"""Shipshape's compression middleware alone on a bare Quart view sending the page.

The like-for-like counterpart of ``flask_compress.py`` (Flask +
Flask-Compress): each is one framework plus its compression layer over the
same body, which is the comparison issue 5 asks for. ``shipshape_layer.py`` adds every other
production feature.
"""

from __future__ import annotations

from typing import cast

from quart import Quart, Response

from bench.peers.common import home_body
from shipshape.compression import CompressionMiddleware
from shipshape.typing import ASGIApp


def create_app() -> Quart:
    body = home_body()
    app = Quart(__name__, static_folder=None)

    @app.get("/")
    async def home() -> Response:
        return Response(body, mimetype="text/html")

    app.asgi_app = CompressionMiddleware(cast(ASGIApp, app.asgi_app))  # type: ignore[method-assign,assignment]
    return app
