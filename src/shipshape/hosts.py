"""Host header allow-list, checked before any view runs.

A forged ``Host`` poisons caches and absolute URLs (password-reset links,
redirects). :class:`AllowedHostsMiddleware` answers 400 to any request whose
host, after proxy resolution, is not on the list, is malformed (only a valid
port may follow the name), or comes in two ``Host`` lines (RFC 9112 §3.2). Entries are exact names,
``.example.com`` (the domain and every subdomain), or ``*`` (any host: an
explicit opt-out that ``check --deploy`` flags)::

    app.asgi_app = AllowedHostsMiddleware(app.asgi_app, allowed=("example.com",))

``exempt_paths`` (the health probes, by default) are answered for any IP
address as ``Host``: Kubernetes and load balancers probe with the instance's
address, and a probe's answer builds no URL from it. Only a well-formed
address: a malformed ``Host`` is refused there too, and a DNS name not on the
list still is, so that DNS rebinding cannot read the probes from a browser.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Iterable

from shipshape.responses import error
from shipshape.scope import request_host
from shipshape.typing import ASGIApp, RawHeaders, Receive, Scope, Send

logger = logging.getLogger("shipshape.hosts")


# A name or a bracketed IPv6 address, then at most a port (RFC 9110 §7.2, RFC 3986 §3.2.2).
# No user info, no second colon, no spaces: anything else is not a Host header.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"  # 1-63 characters (RFC 1035 §2.3.4)
_HOST_RE = re.compile(
    rf"(?P<name>(?:{_LABEL}\.)*{_LABEL}\.?|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?"
)


def split_host(host: str) -> str:
    """``Example.COM.:8000`` -> ``example.com``; ``[::1]:80`` -> ``[::1]``.

    A malformed value (a bogus port, user info, two hosts joined from two
    ``Host`` lines) gives ``""``, which no allow-list entry matches.

    Every request asks (the host check, and the HTTPS redirect again on plain
    HTTP) about one of a site's few names, so the answers for short values are
    kept (256 of them: a client that sends many names only churns them).
    """
    if len(host) > _LONGEST_NAME:
        return _split_host(host)
    return _split_host_kept(host)


#: A DNS name (253), a colon and a port: longer values are not worth keeping.
_LONGEST_NAME = 260


def _split_host(host: str) -> str:
    match = _HOST_RE.fullmatch(host.strip().lower())
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        return ""
    # `localhost.` is `localhost` written as a full DNS name: one host, one answer
    # (allowed, exempt from the HTTPS redirect) whichever way it is written.
    return str(match["name"]).rstrip(".")


_split_host_kept = functools.lru_cache(maxsize=256)(_split_host)


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    name = split_host(host)
    if not name:
        return False
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


def is_ip_address(host: str) -> bool:
    """``10.0.0.5:8000`` or ``[fd00::1]``: a well-formed IP address, with or without a port."""
    try:
        ipaddress.ip_address(split_host(host).removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


class AllowedHostsMiddleware:
    """Answers 400 before the app when the Host header is not allowed.

    The error is an HTML page or JSON, by the same rule as the app's error pages.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed: Iterable[str],
        api_prefix: str = "/api/",
        exempt_paths: Iterable[str] = (),
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.allowed = tuple(allowed)
        # The refusal's profile (the security headers' API one); no HSTS, which would
        # speak for a host this site does not serve.
        self.headers: RawHeaders = list(headers)
        self.api_prefix = api_prefix
        self.exempt_paths = frozenset(exempt_paths)
        if not self.allowed:
            raise ValueError("allowed hosts must not be empty")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = request_host(scope)
        if host_allowed(host, self.allowed) or (
            scope["path"] in self.exempt_paths and is_ip_address(host)
        ):
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
            headers=self.headers,
        )
