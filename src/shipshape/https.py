"""Redirect plain-HTTP requests to HTTPS.

GET and HEAD get 301 (browsers and caches remember it); every other method
gets 308, which keeps the method and body, so a POST stays a POST (RFC 9110
§15.4.9). The scheme and host come from the proxy resolution, and the host
has passed the allow-list, so the redirect never points at a forged host.

The redirect carries ``headers`` (the API profile's security headers, a CSP
and ``nosniff`` among them), so that no response leaves without them.

Requests for exempt hosts (loopback names by default: a local smoke test or a
sidecar probe, never a user) and exempt paths (the health probes, which a
load balancer calls over plain HTTP) pass through::

    app.asgi_app = HTTPSRedirectMiddleware(app.asgi_app, exempt_paths=("/healthz",))
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from shipshape.hosts import split_host
from shipshape.responses import error
from shipshape.scope import request_host
from shipshape.typing import ASGIApp, RawHeaders, Receive, Scope, Send

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class HTTPSRedirectMiddleware:
    """Sends ``http://`` requests to the same URL on ``https://``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        exempt_hosts: Iterable[str] = LOOPBACK_HOSTS,
        exempt_paths: Iterable[str] = (),
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.exempt_hosts = frozenset(exempt_hosts)
        self.exempt_paths = frozenset(exempt_paths)
        self.headers: RawHeaders = list(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("scheme") != "http"
            or scope.get("path") in self.exempt_paths
        ):
            await self.app(scope, receive, send)
            return
        host = request_host(scope)
        name = split_host(host)
        if name in self.exempt_hosts:
            await self.app(scope, receive, send)
            return
        if not name:
            # No host to name (blank, malformed, a port past 65535): https:// glued to
            # the path would send the browser to the host the path starts with.
            await error(
                scope, send, 400, "bad_host", "The Host header names no host.", headers=self.headers
            )
            return
        # Drop the port of the plain-HTTP listener: HTTPS is served on 443.
        path = scope.get("raw_path") or quote(scope.get("path", "/")).encode()
        if not path.startswith(b"/"):
            # `OPTIONS *` (RFC 9112 §3.2.4): no path, and glued to the host it would
            # name another one (https://example.com*).
            path = b"/"
        location = b"https://" + name.encode("latin-1") + path
        if scope.get("query_string"):
            location += b"?" + scope["query_string"]
        status = 301 if scope.get("method") in ("GET", "HEAD") else 308
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"location", location), (b"content-length", b"0"), *self.headers],
            }
        )
        await send({"type": "http.response.body", "body": b""})
