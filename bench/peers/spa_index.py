"""The SPA index's own work and nothing else: the ceiling for S3 on Shipshape's design.

The example app's SPA layer (``shipshape.spa.SPAMiddleware``) sends its
brotli index for every request, called straight from the server: a fresh
nonce in every ``<script>``, a new session with its CSRF secret and the
page's masked token, the HTML profile's headers. What the issue asks of the
index, with none of what sits in front of it in the example app: no request
log, no trusted-proxy, Host or HTTPS check, no path dispatch. Shipshape's
index cannot be faster than this one, so its ratio to ``raw-spa`` is the
most that S3's "× raw ASGI" can read while the index does that work.
"""

from __future__ import annotations

from typing import Any

from app import create_app as example_app
from shipshape.spa import SPAMiddleware


def create_app() -> Any:
    quart: Any = example_app()
    layer: Any = quart.asgi_app
    while not isinstance(layer, SPAMiddleware):
        layer = layer.app  # each ASGI layer holds the one inside it
    index = layer.compressed["br"]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await layer.send_compressed_index(scope, send, index)
        else:  # the lifespan: the example app starts as it always does
            await quart(scope, receive, send)

    return app
