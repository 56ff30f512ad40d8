"""Signed-cookie sessions whose signing serializer is built once per key set.

Quart's :class:`~quart.sessions.SecureCookieSessionInterface` builds a new
``URLSafeTimedSerializer`` twice per request (to open the session and to save
it), and every build serialises a probe value to learn whether the
serializer speaks text. That was about a fifth of the time the example
app's home page spent in Quart (``bench/``). This interface keeps the
serializer for as long as ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` stay
the same, and builds a new one the moment either changes. Cookies, salts,
signatures and key rotation are Quart's own, byte for byte.

:class:`CookieSessions` reads and writes the same cookie for ASGI layers that
answer before Quart runs.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from quart import Quart
from quart.sessions import SecureCookieSessionInterface
from werkzeug.http import dump_cookie
from werkzeug.sansio.http import parse_cookie  # Quart's own: lenient with bytes


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


class CookieSessions:
    """The app's signed session cookie, read and written outside a request context.

    For ASGI layers that answer before Quart runs (the single-page index) but
    must share the session with the app: the same cookie name, flags, salt,
    signature and lifetime as Quart's own
    :class:`~quart.sessions.SecureCookieSessionInterface`, whose methods it calls::

        sessions = CookieSessions(app)
        data = sessions.load(cookie_header)
        set_cookie = sessions.set_cookie(data)  # the Set-Cookie value
    """

    def __init__(self, app: Quart) -> None:
        interface = app.session_interface
        if not isinstance(interface, SecureCookieSessionInterface):
            raise RuntimeError(
                "the session is needed before Quart runs, which works with Quart's "
                "signed-cookie sessions only"
            )
        self.app = app
        self.interface = interface
        self.name = interface.get_cookie_name(app)

    def load(self, cookie_header: str | None) -> dict[str, Any]:
        """The session in ``cookie_header`` (a request's ``Cookie``), or ``{}``."""
        if not cookie_header:
            return {}
        value = parse_cookie(cookie_header).get(self.name)
        serializer = self.interface.get_signing_serializer(self.app)
        if value is None or serializer is None:
            return {}
        max_age = int(self.app.permanent_session_lifetime.total_seconds())
        try:
            data = serializer.loads(value, max_age=max_age)
        except BadSignature:
            return {}
        return dict(data) if isinstance(data, dict) else {}

    def set_cookie(self, data: dict[str, Any]) -> bytes:
        """The ``Set-Cookie`` value that stores ``data``, as Quart's ``save_session`` writes it."""
        app, interface = self.app, self.interface
        serializer = interface.get_signing_serializer(app)
        if serializer is None:  # pragma: no cover - Shipshape always sets SECRET_KEY
            raise RuntimeError("no SECRET_KEY to sign the session with")
        session = interface.session_class(data)
        return dump_cookie(
            self.name,
            serializer.dumps(dict(data)),
            expires=interface.get_expiration_time(app, session),
            path=interface.get_cookie_path(app),
            domain=interface.get_cookie_domain(app),
            secure=interface.get_cookie_secure(app),
            httponly=interface.get_cookie_httponly(app),
            samesite=interface.get_cookie_samesite(app),
            partitioned=interface.get_cookie_partitioned(app),
        ).encode("latin-1")
