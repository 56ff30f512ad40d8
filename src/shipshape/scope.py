"""Reading a request from its ASGI scope, for the middleware that runs before Quart.

Each header is read by one function here, so that every layer reads it the
same way: repeated lines joined with ``", "`` (RFC 9110 §5.3), each line
decoded on its own as Latin-1, as ASGI delivers raw bytes.
"""

from __future__ import annotations

from shipshape.typing import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """One request header (``name`` lower-case), repeated lines joined; ``None`` when absent.

    Lines are joined with ``", "`` (RFC 9110 §5.3), except ``Cookie``'s, which
    are joined with ``"; "`` (RFC 9113 §8.2.3), or a cookie on a second line
    would be read as part of the first one's value.
    """
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else ("; " if name == b"cookie" else ", ").join(values)


def request_host(scope: Scope) -> str:
    """The ``Host`` header after proxy resolution, or ``""``."""
    return header(scope, b"host") or ""
