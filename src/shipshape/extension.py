"""``Shipshape(app)``: the one line that turns the production layer on.

Each feature is its own extension, and each can be turned off or tuned
through ``app.config`` (set before ``Shipshape(app)``; every key below is
``setdefault``-ed, so the app's values win)::

    app.config["SHIPSHAPE_CSRF"] = False          # e.g. a pure token-auth API
    Shipshape(app)

| key | default | feature |
|---|---|---|
| ``SHIPSHAPE_ERROR_PAGES`` | on | HTML/JSON error pages (:mod:`shipshape.errors`) |
| ``SHIPSHAPE_CSRF`` | on | app-wide CSRF checks (:mod:`shipshape.csrf`) |
| ``SHIPSHAPE_HEALTH`` | on | ``/healthz`` and ``/readyz`` (:mod:`shipshape.health`) |
| ``SHIPSHAPE_ASSETS`` | on | manifest, ``asset()`` and ``assets build`` (:mod:`shipshape.assets`) |
| ``SHIPSHAPE_REQUEST_LOG`` | on | request log lines, ``X-Request-ID`` (:mod:`shipshape.logging`) |
| ``MAX_CONTENT_LENGTH`` | 1 MiB | larger request bodies get 413 |
"""

from __future__ import annotations

from typing import Any, cast

from quart import Blueprint, Quart

from shipshape.assets import Assets
from shipshape.check import check_command
from shipshape.config import Settings
from shipshape.csrf import CSRFProtect
from shipshape.errors import ErrorPages
from shipshape.health import Health
from shipshape.logging import RequestLogMiddleware, configure_logging
from shipshape.typing import ASGIApp, ReadinessCheck

DEFAULTS: dict[str, Any] = {
    "SHIPSHAPE_ERROR_PAGES": True,
    "SHIPSHAPE_CSRF": True,
    "SHIPSHAPE_HEALTH": True,
    "SHIPSHAPE_ASSETS": True,
    "SHIPSHAPE_REQUEST_LOG": True,
    "SHIPSHAPE_CONFIGURE_LOGGING": True,
    # 1 MiB: ample for forms and JSON; uploads should stream to storage instead.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
}


class Shipshape:
    """The production layer for one Quart app.

    Arguments:
        app: the app to configure now, or ``None`` to call :meth:`init_app` later.

    After ``init_app``, ``app.extensions["shipshape"]`` is this instance and
    ``self.settings`` holds the parsed :class:`~shipshape.config.Settings`.
    """

    settings: Settings

    def __init__(self, app: Quart | None = None) -> None:
        self.csrf: CSRFProtect | None = None
        self.health: Health | None = None
        self.assets: Assets | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        if "shipshape" in app.extensions:
            raise RuntimeError("Shipshape is already initialised on this app")
        for key, value in DEFAULTS.items():
            _set_default(app, key, value)
        # Quart's default config carries SECRET_KEY=None; Settings treats it as unset.
        self.settings = settings = Settings.from_mapping(app.config)
        app.config["SECRET_KEY"] = settings.secret_key
        app.config["APP_ENV"] = settings.app_env
        app.config.setdefault("TESTING", settings.app_env == "testing")
        self._configure_session_cookie(app, settings)
        app.extensions["shipshape"] = self
        # Makes shipshape/forms.html (Bootstrap macros) and shipshape/error.html loadable.
        app.register_blueprint(Blueprint("shipshape", __name__, template_folder="templates"))

        if app.config["SHIPSHAPE_CONFIGURE_LOGGING"]:
            configure_logging(json_lines=settings.is_production)
        if app.config["SHIPSHAPE_ERROR_PAGES"]:
            ErrorPages(app)
        if app.config["SHIPSHAPE_CSRF"]:
            self.csrf = CSRFProtect(app)
        if app.config["SHIPSHAPE_HEALTH"]:
            self.health = Health(app)
        if app.config["SHIPSHAPE_ASSETS"]:
            self.assets = Assets(app)
            if self.health is not None:
                self.health.add_check("assets", self.assets.ready)
        app.cli.add_command(check_command(app, settings))
        if app.config["SHIPSHAPE_REQUEST_LOG"]:
            inner = cast(ASGIApp, app.asgi_app)
            app.asgi_app = RequestLogMiddleware(  # type: ignore[method-assign,assignment]
                inner, trust_inbound_id=settings.trusted_proxies > 0
            )

    @staticmethod
    def _configure_session_cookie(app: Quart, settings: Settings) -> None:
        # SameSite=Lax stops cross-site POSTs carrying the session (a second
        # line behind the CSRF token); HttpOnly keeps it from scripts. In
        # production the cookie is Secure and named __Host- so that no
        # subdomain or plain-HTTP page can set or shadow it (RFC 6265bis §4.1.3).
        _set_default(app, "SESSION_COOKIE_HTTPONLY", True)
        _set_default(app, "SESSION_COOKIE_SAMESITE", "Lax")
        if settings.is_production:
            _set_default(app, "SESSION_COOKIE_SECURE", True)
            _set_default(app, "SESSION_COOKIE_NAME", "__Host-session")
            if app.config["SESSION_COOKIE_NAME"].startswith("__Host-"):
                app.config["SESSION_COOKIE_DOMAIN"] = None
                app.config["SESSION_COOKIE_PATH"] = "/"

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """Make ``/readyz`` depend on ``check``; see :class:`shipshape.health.Health`."""
        if self.health is None:
            raise RuntimeError("readiness checks need SHIPSHAPE_HEALTH on")
        self.health.add_check(name, check)


def _set_default(app: Quart, key: str, value: Any) -> None:
    """Set ``key`` unless the app changed it from Quart's own default.

    Quart's default config already holds keys such as ``MAX_CONTENT_LENGTH``
    (16 MiB) and ``SESSION_COOKIE_SAMESITE`` (None), so ``setdefault`` would
    never apply Shipshape's stricter values.
    """
    if key not in app.config or app.config[key] == Quart.default_config.get(key, object()):
        app.config[key] = value
