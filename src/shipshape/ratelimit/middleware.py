"""The rate-limit check as ASGI, so that a refused request never reaches Quart.

A refusal should cost a small part of a served page: under a flood it is
most of the work. Inside Quart even an empty answer pays for the request
context, the hooks and the response object (about 400 µs a request here when
measured; S6 of ``make bench``). This layer finds the request's endpoint
with the app's own URL map, reads its row of the policy table, and counts the
request; a refusal is answered from bytes made once, with the security
headers of a page that loads nothing.

Only rules keyed by the client address (the default key, and the default
limits) are decided here. A view with a key function of its own, which may
read the request or the session, is left to the pipeline's ``rate_limit``
step inside Quart; so is any request that arrives before the policy table is
built. Either way the ``RateLimit`` headers of an admitted request are added
by the same after-view step.
"""

from __future__ import annotations

from collections.abc import Iterable

from quart import Quart
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from shipshape.pipeline import Pipeline
from shipshape.ratelimit.gcra import Decision
from shipshape.ratelimit.limiter import (
    CHECKED,
    DECISION,
    RateLimiter,
    RateLimitStoreDown,
    client_address,
    client_key,
    rate_limit_headers,
)
from shipshape.responses import MESSAGES, error_body, respond, wants_json
from shipshape.scope import header
from shipshape.typing import ASGIApp, RawHeaders, Receive, Scope, Send


class RateLimitMiddleware:
    """Counts requests against their route's limits before Quart runs; see the module doc.

    Arguments:
        app: the ASGI app to wrap.
        quart: the Quart app, for its URL map and policy table.
        limiter: the app's :class:`~shipshape.ratelimit.RateLimiter`.
        headers: security headers for the refusal page (it loads nothing).
        hsts: ``Strict-Transport-Security`` for refusals over HTTPS.
        api_prefix: paths whose refusals are JSON whatever the client accepts.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        quart: Quart,
        limiter: RateLimiter,
        headers: Iterable[tuple[bytes, bytes]] = (),
        hsts: bytes | None = None,
        api_prefix: str = "/api/",
    ) -> None:
        self.app = app
        self.quart = quart
        self.limiter = limiter
        self.policies = Pipeline.of(quart).policies
        self.headers = list(headers)
        self.hsts = hsts
        self.api_prefix = api_prefix
        self._adapters: dict[str, MapAdapter] = {}
        self.quart_routes_by_host = bool(
            quart.url_map.host_matching
            or quart.subdomain_matching
            or quart.config.get("SERVER_NAME")
        )

    def _endpoint(self, scope: Scope) -> str | None:
        scheme = scope.get("scheme", "http")
        adapter = self._adapters.get(scheme)
        if adapter is None:
            # Without host or subdomain matching (routes_like_quart) the host changes
            # no match, only a redirect's URL, which is not followed here: one
            # adapter per scheme serves every request.
            adapter = self._adapters[scheme] = self.quart.url_map.bind(
                "localhost", url_scheme=scheme
            )
        try:
            endpoint, _ = adapter.match(scope.get("path", "/"), scope.get("method", "GET"))
        except HTTPException:  # 404, 405, a redirect: Quart answers it, unrouted
            return None
        return str(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.policies.rows or not self.routes_like_quart(scope):
            await self.app(scope, receive, send)  # the pipeline's step inside Quart decides
            return
        endpoint = self._endpoint(scope)
        policy = self.policies.unrouted if endpoint is None else self.policies.rows.get(endpoint)
        found = self.limiter.rule_for(policy) if policy is not None else None
        if policy is None or found is None or found[1].key is not client_address:
            await self.app(scope, receive, send)  # exempt, or the Quart step decides
            return
        bucket, rule = found
        client = scope.get("client")
        scope[CHECKED] = True
        try:
            key = client_key(client[0] if client else None)
            decision = await self.limiter.count(bucket, key, rule)
        except RateLimitStoreDown as exc:
            json = policy.json_errors or self._wants_json(scope)
            await self._refuse(scope, send, 503, "rate_limit_unavailable", json, exc.seconds)
            return
        if not decision.allowed:
            json = policy.json_errors or self._wants_json(scope)
            await self._refuse(
                scope, send, 429, "rate_limited", json, decision.retry_after, decision
            )
            return
        scope[DECISION] = decision
        await self.app(scope, receive, send)

    def routes_like_quart(self, scope: Scope) -> bool:
        """Whether matching the raw path finds the endpoint Quart will find.

        Not under a ``root_path`` (a mount prefix Quart strips first), nor
        with ``SERVER_NAME``, subdomain or host matching, which Quart applies
        with rules of its own: those requests are left to the step inside
        Quart, which routes exactly as Quart does.
        """
        return not (scope.get("root_path") or self.quart_routes_by_host)

    def _wants_json(self, scope: Scope) -> bool:
        return wants_json(scope.get("path", ""), header(scope, b"accept"), self.api_prefix)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        json: bool,
        retry_after: int,
        decision: Decision | None = None,
    ) -> None:
        body = error_body(status, code, MESSAGES[status], json)
        headers: RawHeaders = [
            (b"content-type", b"application/json" if json else b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"retry-after", str(retry_after).encode()),
            *self.headers,
        ]
        if decision is not None:
            headers += [
                (name.lower().encode(), value.encode())
                for name, value in rate_limit_headers(decision, legacy=self.limiter.legacy)
            ]
        if self.hsts is not None and scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", self.hsts))
        await respond(send, status, headers, b"" if scope.get("method") == "HEAD" else body)
