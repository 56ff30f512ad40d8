"""The conventional Flask template stack: Flask + Flask-Compress + Flask-Talisman.

Served by gunicorn sync workers, as the template does. The home view returns
the same HTML bytes Shipshape renders; static files come from Flask's static
route over the same build folder.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_compress import Compress
from flask_talisman import Talisman

from bench.peers.common import home_body, static_dir


def create_app() -> Flask:
    body = home_body()
    app = Flask(__name__, static_folder=str(static_dir()), static_url_path="/static")
    Compress(app)
    # The template's settings, less the HTTPS redirect (the benchmark is plain HTTP on loopback).
    Talisman(app, force_https=False, content_security_policy={"default-src": "'self'"})

    @app.get("/")
    def home() -> Response:
        return Response(body, mimetype="text/html")

    return app
