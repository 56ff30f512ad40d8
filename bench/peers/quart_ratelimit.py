"""quart-rate-limiter (pgjones) with its ``RedisStore`` on plain Quart: the route and limit
of ``shipshape_ratelimit.create_app``, keyed by the client address as there.

:func:`create_unlimited_app` is the same app without the limiter: the
difference is the limiter's own cost.
"""

from __future__ import annotations

from datetime import timedelta

from quart import Quart, Response
from quart_rate_limiter import RateLimiter, rate_limit
from quart_rate_limiter.redis_store import RedisStore

from bench.peers.common import ADMIT_ALL, TINY_JSON, redis_url


def create_app() -> Quart:
    count, _, unit = ADMIT_ALL.partition("/")
    if unit != "second":
        raise RuntimeError(f"ADMIT_ALL is {ADMIT_ALL!r}; this peer spells only n/second")
    app = Quart(__name__, static_folder=None)
    RateLimiter(app, store=RedisStore(redis_url()))

    @app.get("/")
    @rate_limit(int(count), timedelta(seconds=1))
    async def tiny() -> Response:
        return Response(TINY_JSON, mimetype="application/json")

    return app


def create_unlimited_app() -> Quart:
    app = Quart(__name__, static_folder=None)

    @app.get("/")
    async def tiny() -> Response:
        return Response(TINY_JSON, mimetype="application/json")

    return app
