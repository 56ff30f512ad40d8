"""Shipshape's production layer on a bare Quart app that sends the same bytes.

The counterpart of the Flask stack's fixed-body view: every Shipshape
feature is on (headers and CSP with a nonce, host check, request log,
CSRF, compression), but no template is rendered.
"""

from __future__ import annotations

import os

from quart import Quart, Response

from bench.peers.common import home_body, static_dir
from shipshape import Shipshape, environ_config


def create_app() -> Quart:
    body = home_body()
    app = Quart(__name__, static_folder=None)
    app.config.update(environ_config(os.environ))  # APP_ENV=production and friends
    app.config.update(SHIPSHAPE_ASSET_DIR=str(static_dir()))

    @app.get("/")
    async def home() -> Response:
        return Response(body, mimetype="text/html")

    Shipshape(app)
    return app
