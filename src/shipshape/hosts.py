"""Host header allow-list, checked before any view runs.

A forged ``Host`` poisons caches and absolute URLs (password-reset links,
redirects). :class:`AllowedHostsMiddleware` answers 400 to any request whose
host, after proxy resolution, is not on the list. Entries are exact names,
``.example.com`` (the domain and every subdomain), or ``*`` (any host: an
explicit opt-out that ``check --deploy`` flags)::

    app.asgi_app = AllowedHostsMiddleware(app.asgi_app, allowed=("example.com",))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from shipshape.responses import error
from shipshape.scope import request_host
from shipshape.typing import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("shipshape.hosts")


def split_host(host: str) -> str:
    """``Example.COM:8000`` -> ``example.com``; ``[::1]:80`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    name = split_host(host).rstrip(".")
    if not name:
        return False
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


class AllowedHostsMiddleware:
    """Answers 400 before the app when the Host header is not allowed.

    The error is an HTML page or JSON, by the same rule as the app's error pages.
    """

    def __init__(self, app: ASGIApp, *, allowed: Iterable[str], api_prefix: str = "/api/") -> None:
        self.app = app
        self.allowed = tuple(allowed)
        self.api_prefix = api_prefix
        if not self.allowed:
            raise ValueError("allowed hosts must not be empty")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = request_host(scope)
        if host_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        logger.warning("refused host %r", host[:200])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await error(
            scope,
            send,
            400,
            "host_not_allowed",
            "This host name is not served here.",
            api_prefix=self.api_prefix,
        )
