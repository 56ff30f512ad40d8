"""Flask-Limiter with Redis storage on Flask: the route and limit of
``shipshape_ratelimit.create_app``, served by a gunicorn sync worker.

Its default strategy (fixed window) and key (the client address). Response
headers are on, as Shipshape and quart-rate-limiter send theirs on every
response; ``create_app(headers=False)`` is Flask-Limiter's own default, which
sends none and so asks Redis less. ``create_app(limiter=False)`` is the same
app without Flask-Limiter: the difference is the limiter's own cost.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from bench.peers.common import ADMIT_ALL, TINY_JSON, redis_url


def create_app(*, headers: bool = True, limiter: bool = True) -> Flask:
    app = Flask(__name__, static_folder=None)

    def tiny() -> Response:
        return Response(TINY_JSON, mimetype="application/json")

    if limiter:
        limits = Limiter(
            get_remote_address, app=app, storage_uri=redis_url(), headers_enabled=headers
        )
        tiny = limits.limit(ADMIT_ALL)(tiny)
    app.get("/")(tiny)
    return app
