"""Flask + Flask-Compress alone, sending the page: the template's compression layer.

Served by gunicorn sync workers, as the template does; Flask-Compress keeps
its defaults (br 4, gzip 6, zstd 3). ``flask_stack.py`` adds Talisman.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_compress import Compress

from bench.peers.common import home_body


def create_app() -> Flask:
    body = home_body()
    app = Flask(__name__, static_folder=None)
    Compress(app)

    @app.get("/")
    def home() -> Response:
        return Response(body, mimetype="text/html")

    return app
