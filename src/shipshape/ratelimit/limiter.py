"""Per-view rate limits for Quart, with IETF RateLimit headers and a 429 page.

::

    @app.post("/csp-report")
    @rate_limit("30/minute")
    async def report(): ...

A limited view is checked before it runs, keyed by the client address that
``TRUSTED_PROXIES`` resolves (or by ``key=``, a function of the request).
Allowed responses carry ``RateLimit-Policy`` and ``RateLimit``
(draft-ietf-httpapi-ratelimit-headers); a refused request gets 429 with
``Retry-After`` and the same headers, as the app's HTML or JSON error page.

Unfinished (the rate limiting issue): the default ``RATELIMIT_DEFAULT`` limits
on every dynamic route with exemptions for static files, health checks and
the SPA shell; per-blueprint limits; Redis/Valkey storage; the store-outage
policy; legacy ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from quart import Quart, Response, g, request
from werkzeug.exceptions import TooManyRequests

from shipshape.config import RateLimit, parse_rate_limits
from shipshape.pipeline import Pipeline
from shipshape.policy import ViewPolicy, set_columns
from shipshape.ratelimit.gcra import Decision
from shipshape.ratelimit.store import MemoryStore, Store
from shipshape.typing import ViewT

KeyFunc = Callable[[], str]


class RateRule(NamedTuple):
    """A view's limits and the function that names the client they count."""

    limits: tuple[RateLimit, ...]
    key: KeyFunc


class RateLimited(TooManyRequests):
    """429 with ``Retry-After`` and the RateLimit headers."""

    slug = "rate_limited"

    def __init__(self, decision: Decision) -> None:
        super().__init__(retry_after=decision.retry_after)
        self.decision = decision

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), *rate_limit_headers(self.decision)]


def client_address() -> str:
    """The default key: the client IP as the proxy setting resolved it."""
    return request.remote_addr or "unknown"


def rate_limit(spec: str, *, key: KeyFunc = client_address) -> Callable[[ViewT], ViewT]:
    """Limit one view: ``"30/minute"`` or several, ``"2/second;60/minute"``."""
    rule = RateRule(parse_rate_limits(spec, name=f"rate_limit({spec!r})"), key)

    def decorate(view: ViewT) -> ViewT:
        return set_columns(view, rate_limit=rule)

    return decorate


def rate_limit_headers(decision: Decision) -> list[tuple[str, str]]:
    name = f'"{decision.limit.count}-per-{decision.limit.period}s"'
    return [
        ("RateLimit-Policy", f"{name};q={decision.limit.count};w={decision.limit.period}"),
        ("RateLimit", f"{name};r={decision.remaining};t={decision.reset}"),
    ]


class RateLimiter:
    """Checks ``@rate_limit`` views before they run; see the module docstring."""

    def __init__(self, app: Quart | None = None, *, store: Store | None = None) -> None:
        self.store: Store = store or MemoryStore()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.before_serving(self.store.startup)
        app.after_serving(self.store.shutdown)
        pipeline = Pipeline.of(app)
        pipeline.before("rate_limit", self.check)
        pipeline.after("rate_limit_headers", self.add_headers)

    async def check(self, policy: ViewPolicy) -> None:
        rule = policy.rate_limit
        if rule is None:
            return
        decision = await self.store.hit(f"{policy.endpoint}:{rule.key()}", rule.limits)
        if not decision.allowed:
            raise RateLimited(decision)
        g._shipshape_rate_limit = decision

    @staticmethod
    async def add_headers(policy: ViewPolicy, response: Response) -> Response:
        decision: Decision | None = g.get("_shipshape_rate_limit")
        if decision is not None:
            for name, value in rate_limit_headers(decision):
                response.headers[name] = value
        return response
