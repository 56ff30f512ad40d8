"""Flask-Limiter with Redis storage on Flask: the route and limit of
``shipshape_ratelimit.create_app``, served by a gunicorn sync worker.

Its default strategy (fixed window) and key (the client address). Response
headers are on, as Shipshape and quart-rate-limiter send theirs on every
response (Flask-Limiter's own default sends none, and so asks Redis less).
"""

from __future__ import annotations

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from bench.peers.common import ADMIT_ALL, TINY_JSON, redis_url


def create_app() -> Flask:
    app = Flask(__name__, static_folder=None)
    limits = Limiter(get_remote_address, app=app, storage_uri=redis_url(), headers_enabled=True)

    @app.get("/")
    @limits.limit(ADMIT_ALL)
    def tiny() -> Response:
        return Response(TINY_JSON, mimetype="application/json")

    return app
