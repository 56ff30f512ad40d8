"""Signed-cookie sessions whose signing serializer is built once per key set.

Quart's :class:`~quart.sessions.SecureCookieSessionInterface` builds a new
``URLSafeTimedSerializer`` twice per request (to open the session and to save
it), and every build serialises a probe value to learn whether the
serializer speaks text. That was about a fifth of the time the example
app's home page spent in Quart (``bench/``). This interface keeps the
serializer for as long as ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` stay
the same, and builds a new one the moment either changes. Cookies, salts,
signatures and key rotation are Quart's own, byte for byte.
"""

from __future__ import annotations

from collections.abc import Hashable

from itsdangerous import URLSafeTimedSerializer
from quart import Quart
from quart.sessions import SecureCookieSessionInterface


class CachedSerializerSessionInterface(SecureCookieSessionInterface):
    """Quart's signed-cookie sessions, minus the per-request serializer builds."""

    def __init__(self) -> None:
        self._cached: tuple[Hashable, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        serializer = super().get_signing_serializer(app)
        self._cached = (key, serializer)  # one assignment: safe across threads
        return serializer


def install(app: Quart) -> None:
    """Use the cached interface unless the app chose a session interface of its own."""
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = CachedSerializerSessionInterface()
