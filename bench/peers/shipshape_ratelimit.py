"""Shipshape's rate limiting over Redis: the rate-limit scenarios' Shipshape stacks.

* :func:`create_app`: the production layer on a bare Quart app whose one route
  carries ``@rate_limit(ADMIT_ALL)``, a limit no load here reaches, so every
  request costs one store call and is served; the counterpart of
  ``quart_ratelimit.py`` and ``flask_ratelimit.py``. :func:`create_exempt_app`
  is the same with ``@rate_exempt``: the difference is the limiter's own cost.
* :func:`create_example_app`: the example app (its home page rendered per
  request) plus ``/refused``, limited to ``1/hour``, so every request after the
  first is answered 429, over Redis.

The Redis URL comes from ``BENCH_REDIS_URL``, which the harness sets to the
redis-server it starts for the run; ``RATELIMIT_DEFAULT`` (set high by the
harness too) keeps the default limit from refusing the home page under load.

The store's timeout is raised from its default of 50 ms to 1 s. The timeout
runs on the server's event loop, so under a saturating load (32 connections
on one worker, on a shared machine) a reply that Redis sent in microseconds
can be read late, the breaker then opens, and requests are admitted without
asking Redis: the run would measure the breaker, not the store. The peers
have no timeout at all (redis-py's default).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from quart import Quart, Response

from app import create_app as create_example
from bench.peers.common import ADMIT_ALL, TINY_JSON, redis_url, static_dir
from shipshape import Shipshape, environ_config
from shipshape.ratelimit import rate_exempt, rate_limit

View = Callable[[], Awaitable[Response]]

STORE_TIMEOUT = 1.0  # seconds; see the module docstring
#: The route whose every request after the first is refused.
REFUSED_PATH = "/refused"
REFUSING_LIMIT = "1/hour"


def create_app() -> Quart:
    return _tiny_app(rate_limit(ADMIT_ALL))


def create_exempt_app() -> Quart:
    return _tiny_app(rate_exempt)


def _tiny_app(policy: Callable[[View], View]) -> Quart:
    app = Quart(__name__, static_folder=None)
    app.config.update(environ_config(os.environ))  # APP_ENV=production and friends
    app.config.update(
        REDIS_URL=redis_url(),
        SHIPSHAPE_ASSET_DIR=str(static_dir()),
        SHIPSHAPE_RATELIMIT_STORE_TIMEOUT=STORE_TIMEOUT,
    )

    @app.get("/")
    @policy
    async def tiny() -> Response:
        return Response(TINY_JSON, mimetype="application/json")

    Shipshape(app)
    return app


def create_example_app() -> Quart:
    return _with_refused_route(
        create_example(
            {"REDIS_URL": redis_url(), "SHIPSHAPE_RATELIMIT_STORE_TIMEOUT": STORE_TIMEOUT}
        )
    )


def _with_refused_route(app: Quart) -> Quart:
    # Rate-limit columns are read when serving starts, so a route added now is covered.
    @app.get(REFUSED_PATH)
    @rate_limit(REFUSING_LIMIT)
    async def refused() -> Response:
        return Response(b"admitted once an hour\n", mimetype="text/plain")

    return app
