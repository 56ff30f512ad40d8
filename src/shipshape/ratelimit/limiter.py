"""Rate limits for Quart: a default on every route, per-view and per-blueprint limits.

::

    @app.post("/login")
    @rate_limit("5/minute", key=client_address)
    async def login(): ...

    @app.get("/healthz")
    @rate_exempt
    async def healthz(): ...

    limit_blueprint(api, "10 per 10 seconds", key=user_id)  # key functions may be async

Every dynamic route gets ``RATELIMIT_DEFAULT`` (``2/second;60/minute``),
keyed by the client address that ``TRUSTED_PROXIES`` resolves, unless it has
a limit of its own or is exempt. By default all of a client's routes share
one default bucket, so "60 a minute" means 60 a minute from that client;
``SHIPSHAPE_RATELIMIT_DEFAULT_SCOPE = "route"`` counts each route apart
(``docs/ratelimit.md`` says why). A view's own limit always counts per route.

The check runs before CSRF and the view (``shipshape.pipeline``), so a
refused request costs one store call and no body read. Allowed responses
carry ``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-
headers), and the legacy ``X-RateLimit-*`` trio when asked; a refused request
gets 429 with ``Retry-After`` and the same headers. When the store fails,
``RATELIMIT_ON_STORE_ERROR`` decides (:mod:`shipshape.ratelimit.outage`).
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, NamedTuple

from quart import Blueprint, Quart, Response, has_websocket_context, request
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from shipshape.check import Finding
from shipshape.config import RateLimit, Settings, parse_rate_limits
from shipshape.options import Option, apply, flag, is_seconds, one_of
from shipshape.pipeline import Pipeline
from shipshape.policy import ViewPolicy, set_blueprint_columns, set_columns
from shipshape.ratelimit.gcra import Decision
from shipshape.ratelimit.outage import Breaker, StoreUnavailableError
from shipshape.ratelimit.redis_store import DEFAULT_TIMEOUT, RedisStore
from shipshape.ratelimit.refusals import Refusals
from shipshape.ratelimit.store import MemoryStore, Store
from shipshape.request import current_connection
from shipshape.typing import ViewT

#: Returns the name of the client a limit counts: a string, or an awaitable of one.
KeyFunc = Callable[[], "str | Awaitable[str]"]
#: Scope entries: the request was counted (by the ASGI layer), and the allowed decision.
CHECKED = "shipshape.rate_limit_checked"
DECISION = "shipshape.rate_limit"

OPTIONS: tuple[Option, ...] = (
    Option(
        "SHIPSHAPE_RATELIMIT_DEFAULT_SCOPE",
        "client",
        "`client` or `route`",
        "`client`: one default bucket per client for all routes; `route`: one per route",
        one_of("client", "route", none=False),
    ),
    flag(
        "SHIPSHAPE_RATELIMIT_LEGACY_HEADERS",
        False,
        "also send `X-RateLimit-Limit`, `-Remaining` and `-Reset`",
    ),
    Option(
        "SHIPSHAPE_RATELIMIT_STORE_TIMEOUT",
        DEFAULT_TIMEOUT,
        "seconds, over 0 and at most 5",
        "how long a Redis call may take before the store counts as failed",
        is_seconds(0, 5),
        shown="`0.05` s",
    ),
)


class RateRule(NamedTuple):
    """A view's limits and the function that names the client they count."""

    limits: tuple[RateLimit, ...]
    key: KeyFunc


class RateLimited(TooManyRequests):
    """429 with ``Retry-After`` and the RateLimit headers."""

    slug = "rate_limited"
    plain_page = True  # a flood of 429s must cost little: no template (error_pages)

    def __init__(self, decision: Decision, *, legacy: bool = False) -> None:
        super().__init__(retry_after=decision.retry_after)
        self.decision = decision
        self.legacy = legacy

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        headers = rate_limit_headers(self.decision, legacy=self.legacy)
        return [*super().get_headers(*args, **kwargs), *headers]


class RateLimitStoreDown(ServiceUnavailable):
    """503 with ``Retry-After``: the store failed and the policy is ``closed``."""

    slug = "rate_limit_unavailable"
    plain_page = True

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after=retry_after)
        self.seconds = retry_after


#: What the readiness probe counts, in its own bucket: a limit it never reaches.
READINESS_KEY = "shipshape:readiness"
READINESS_LIMITS = (RateLimit(1_000_000, 1),)


def client_address() -> str:
    """The default key: the client IP as the proxy setting resolved it (see :func:`client_key`)."""
    return client_key(current_connection().remote_addr)


@lru_cache(maxsize=4096)
def client_key(address: str | None) -> str:
    """An IPv4 address as it is; an IPv6 address as its /64.

    A host is given a whole /64 (RFC 6177), so one client can rotate through
    2**64 addresses: counting each apart would let it walk out of any limit.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a unix socket path, or a name a test server made up
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def refusals_for(store: Store) -> Refusals | None:
    """A table of refused clients in front of a shared store; memory is as quick without."""
    if isinstance(store, MemoryStore):
        return None
    clock = getattr(store, "clock", None)  # a test's frozen clock, which the store uses too
    return Refusals(clock=clock) if clock is not None else Refusals()


def rate_limit(spec: str, *, key: KeyFunc = client_address) -> Callable[[ViewT], ViewT]:
    """Limit one view, instead of the default: ``"30/minute"``, ``"2/second;60/minute"``,
    ``"10 per 10 seconds"``. ``key`` names the client; it may be async."""
    rule = RateRule(parse_rate_limits(spec, name=f"rate_limit({spec!r})"), key)

    def decorate(view: ViewT) -> ViewT:
        return set_columns(view, rate_limit=rule, rate_exempt=False)

    return decorate


def rate_exempt(view: ViewT) -> ViewT:
    """No rate limit for this view, not even the default (health probes, for example)."""
    return set_columns(view, rate_limit=None, rate_exempt=True)


def limit_blueprint(blueprint: Blueprint, spec: str, *, key: KeyFunc = client_address) -> None:
    """Give every view of ``blueprint`` this limit, unless a view sets its own."""
    rule = RateRule(parse_rate_limits(spec, name=f"limit_blueprint({spec!r})"), key)
    set_blueprint_columns(blueprint, rate_limit=rule, rate_exempt=False)


def rate_limit_headers(decision: Decision, *, legacy: bool = False) -> list[tuple[str, str]]:
    """The IETF draft's two headers, and the legacy trio when ``legacy``."""
    limit = decision.limit
    name = f'"{limit.count}-per-{limit.period}s"'
    headers = [
        ("RateLimit-Policy", f"{name};q={limit.count};w={limit.period}"),
        ("RateLimit", f"{name};r={decision.remaining};t={decision.reset}"),
    ]
    if legacy:
        headers += [
            ("X-RateLimit-Limit", str(limit.count)),
            ("X-RateLimit-Remaining", str(decision.remaining)),
            ("X-RateLimit-Reset", str(decision.reset)),  # seconds from now, as GitLab sends
        ]
    return headers


#: What a store outage means under each ``RATELIMIT_ON_STORE_ERROR`` policy.
OUTAGE_CLOSED = "every dynamic request would get 503"
OUTAGE_OPEN = "each worker would limit on its own"


class RateLimiter:
    """The default, per-view and per-blueprint limits; see the module docstring.

    Arguments:
        app: the app, or ``None`` to call :meth:`init_app` later.
        store: where the state lives; by default Redis when ``REDIS_URL`` is
            set, else this process's memory.
    """

    def __init__(self, app: Quart | None = None, *, store: Store | None = None) -> None:
        self._given_store = store
        self.store: Store = store or MemoryStore()
        self.breaker = Breaker(self.store)
        self.refusals = refusals_for(self.store)
        # Counts while the shared store is down and the policy is open (count()).
        self.fallback = MemoryStore()
        self.default = RateRule(parse_rate_limits(None), client_address)
        self.shared_default = True
        self.legacy = False
        self.closed = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart, settings: Settings | None = None) -> None:
        apply(app, OPTIONS)
        settings = settings or Settings.from_mapping(app.config)
        if self._given_store is None and settings.redis_url is not None:
            self.store = RedisStore(
                settings.redis_url, timeout=app.config["SHIPSHAPE_RATELIMIT_STORE_TIMEOUT"]
            )
        self.breaker = Breaker(self.store)
        self.refusals = refusals_for(self.store)
        self.default = RateRule(settings.ratelimit_default, client_address)
        self.shared_default = app.config["SHIPSHAPE_RATELIMIT_DEFAULT_SCOPE"] == "client"
        self.legacy = app.config["SHIPSHAPE_RATELIMIT_LEGACY_HEADERS"]
        self.closed = settings.ratelimit_on_store_error == "closed"
        app.before_serving(self.store.startup)
        app.after_serving(self.store.shutdown)
        pipeline = Pipeline.of(app)
        pipeline.before("rate_limit", self.check)
        pipeline.after("rate_limit_headers", self.add_headers)

    def rule_for(self, policy: ViewPolicy) -> tuple[str, RateRule] | None:
        """The bucket and rule that count ``policy``'s requests, or ``None`` when exempt."""
        if policy.rate_exempt:
            return None
        if policy.rate_limit is not None:  # prefixed: no endpoint can share the default's
            return f"route:{policy.endpoint or ''}", policy.rate_limit
        bucket = "default" if self.shared_default else f"default:{policy.endpoint or ''}"
        return bucket, self.default

    async def count(self, bucket: str, key: str, rule: RateRule) -> Decision:
        """Count one request for ``key`` in the store.

        When the store is down (or the breaker skips it): with ``closed``,
        :class:`RateLimitStoreDown`; with ``open``, the request is counted in
        this worker's memory instead, from a fresh start. A worker sees only
        part of a client's requests, so it refuses a client only when the
        requests it admitted itself already reach the limit; and a client gets
        at most the limit per worker, never unlimited, even when an overloaded
        worker misses the store's timeout (which an attacker could aim for).
        The outage was logged once by the breaker. When the store answers
        again, only the worker's counts that have run out are dropped: a
        store that keeps failing and coming back must not hand every worker a
        fresh budget each time.

        A client the store refused under this rule is refused by this worker,
        without asking the store, for the rest of its wait or a minute at most
        (:mod:`.refusals`); that holds while the store is down too, so with
        ``closed`` such a client keeps its 429 rather than getting the 503.
        """
        slot = f"{bucket}:{key}"
        refusals = self.refusals
        asked_at = 0.0
        if refusals is not None:
            refused = refusals.check(slot, rule.limits)
            if refused is not None:
                return refused
            asked_at = refusals.clock()
        try:
            decision = await self.breaker.hit(slot, rule.limits)
        except StoreUnavailableError as exc:
            if self.closed:
                raise RateLimitStoreDown(exc.retry_after) from exc
            return await self.fallback.hit(slot, rule.limits)
        if self.fallback:  # an outage has ended: forget what has run out, keep the rest
            self.fallback.sweep()
        if refusals is not None and not decision.allowed:
            refusals.remember(slot, rule.limits, decision, asked_at)
        return decision

    async def check(self, policy: ViewPolicy) -> None:
        """The pipeline step, for requests the ASGI layer did not decide (custom keys)."""
        scope = current_connection().scope  # a WebSocket's handshake counts as a request
        if CHECKED in scope:
            return
        found = self.rule_for(policy)
        if found is None:
            return
        bucket, rule = found
        # A handshake has no `request` for a key function to read (one that reads it
        # would raise): it counts under the rule by the client's address.
        key = client_address() if has_websocket_context() else rule.key()
        if inspect.isawaitable(key):
            key = await key
        decision = await self.count(bucket, key, rule)
        if not decision.allowed:
            raise RateLimited(decision, legacy=self.legacy)
        scope[DECISION] = decision  # type: ignore[literal-required]

    async def add_headers(self, policy: ViewPolicy, response: Response) -> Response:
        decision: Decision | None = request.scope.get(DECISION)  # type: ignore[assignment]
        if decision is not None:
            for name, value in rate_limit_headers(decision, legacy=self.legacy):
                response.headers[name] = value
        return response

    def deploy_findings(self) -> list[Finding]:
        """``check --deploy``: a shared store it cannot reach. Under ``closed`` every
        dynamic request would be a 503, so that is an error; under ``open`` each worker
        would limit on its own, multiplying every limit, so that is a warning."""
        if not isinstance(self.store, RedisStore):
            return []
        store = self.store

        async def probe() -> None:
            await store.startup()
            try:
                await store.ping()
            finally:
                await store.shutdown()

        try:
            asyncio.run(probe())
        except Exception as exc:  # noqa: BLE001 - whatever the store raised, it is away
            found = f"the rate-limit store cannot be reached ({type(exc).__name__}: {exc}): "
            fix = "check REDIS_URL and that the server is running"
            if self.closed:
                return [Finding("shipshape.E016", "error", found + OUTAGE_CLOSED, fix)]
            return [Finding("shipshape.W017", "warning", found + OUTAGE_OPEN, fix)]
        return []

    async def ready(self) -> str | None:
        """Readiness: the store answers.

        With ``RATELIMIT_ON_STORE_ERROR=closed`` a dead store makes requests
        fail, so the host is not ready. With ``open`` it still serves (each
        worker limiting on its own): reporting it unready would take every host
        of the site out of rotation at once, so it is reported as degraded.
        """
        try:
            # A count, not a PING: a read-only replica or a full server answers PING and
            # refuses every count, and a probe that reaches the store ends the outage.
            await self.store.hit(READINESS_KEY, READINESS_LIMITS)
        except Exception as exc:
            if self.closed:
                raise
            return (
                f"store unreachable ({type(exc).__name__}); "
                "each worker limits on its own until it returns"
            )
        self.breaker.answered()
        return None
