"""``Shipshape(app)``: the one line that turns the production layer on.

Each feature is its own extension, and each can be turned off or tuned
through ``app.config``, set before ``Shipshape(app)``; the app's values win
over the defaults, and every value is checked at start-up::

    app.config["SHIPSHAPE_CSRF"] = False          # e.g. a pure token-auth API
    Shipshape(app)

The switches and the middleware settings are :data:`SWITCHES` and
:data:`MIDDLEWARE_OPTIONS`; each feature's own keys are its module's
``OPTIONS``; :data:`ALL_OPTIONS` lists them all, as ``docs/configuration.md``
does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

from markupsafe import Markup
from quart import Blueprint, Quart
from quart import Request as QuartRequest
from quart.asgi import ASGIHTTPConnection

from shipshape import (
    assets,
    collector,
    csp_report,
    csrf,
    database,
    error_pages,
    headers,
    health,
    spa,
)
from shipshape.assets import Assets
from shipshape.check import Finding, check_command
from shipshape.compression import DYNAMIC_LEVELS, MINIMUM_SIZE, CompressionMiddleware
from shipshape.compression.codings import LEVELS_ACCEPTED, checked_levels
from shipshape.config import Settings
from shipshape.connection import HTTPConnection
from shipshape.csp import csp_nonce
from shipshape.csp_report import CSPReports
from shipshape.csrf import CSRFProtect
from shipshape.error_pages import ErrorPages
from shipshape.headers import SecurityHeaders, SecurityHeadersMiddleware
from shipshape.health import Health
from shipshape.hosts import AllowedHostsMiddleware
from shipshape.https import LOOPBACK_HOSTS, HTTPSRedirectMiddleware
from shipshape.logging import (
    RequestLogMiddleware,
    configure_logging,
    flush_at_worker_exit,
    flush_request_lines,
)
from shipshape.options import (
    ON_IN_PRODUCTION,
    Derived,
    Option,
    apply,
    flag,
    is_hosts,
    is_int,
    is_paths,
    items,
    refuse_unknown,
)
from shipshape.pipeline import ASGI_LAYERS, Pipeline
from shipshape.proxy import ProxyMiddleware, parse_networks
from shipshape.ratelimit import RateLimiter, limiter
from shipshape.ratelimit.middleware import RateLimitMiddleware
from shipshape.request import Request, RequestBodyMiddleware
from shipshape.sessions import install as install_session_interface
from shipshape.static import StaticFiles
from shipshape.templating import check_environment
from shipshape.typing import ASGIApp, ReadinessCheck


def _feature(key: str, what: str) -> Option:
    return flag(key, True, what)


#: Feature switches, applied before any feature is set up.
SWITCHES: tuple[Option, ...] = (
    _feature("SHIPSHAPE_ERROR_PAGES", "HTML/JSON error pages (`shipshape.error_pages`)"),
    _feature("SHIPSHAPE_CSRF", "app-wide CSRF checks (`shipshape.csrf`)"),
    _feature("SHIPSHAPE_HEALTH", "`/healthz` and `/readyz` (`shipshape.health`)"),
    _feature("SHIPSHAPE_ASSETS", "manifest, `asset()` and `assets build` (`shipshape.assets`)"),
    _feature("SHIPSHAPE_STATIC", "serve `SHIPSHAPE_ASSET_DIR` (`shipshape.static`)"),
    _feature("SHIPSHAPE_COMPRESSION", "compress dynamic responses (`shipshape.compression`)"),
    _feature("SHIPSHAPE_REQUEST_LOG", "a log line per request and `X-Request-ID`"),
    _feature("SHIPSHAPE_CONFIGURE_LOGGING", "JSON lines in production, readable lines otherwise"),
    _feature(
        "SHIPSHAPE_HEADERS",
        "security headers and CSP (docs/security.md); off only behind a proxy that sets them",
    ),
    _feature("SHIPSHAPE_CSP_REPORTS", "the `/csp-report` endpoint (`shipshape.csp_report`)"),
    _feature("SHIPSHAPE_HOST_CHECK", "400 for a `Host` not in `ALLOWED_HOSTS`"),
    _feature(
        "SHIPSHAPE_RATELIMIT",
        "`RATELIMIT_DEFAULT` on every dynamic route, `@rate_limit` and the store "
        "(`shipshape.ratelimit`)",
    ),
    # 1 MiB: ample for forms and JSON; uploads should stream to storage instead.
    Option(
        "MAX_CONTENT_LENGTH",
        1024 * 1024,
        "bytes, 1 or more",
        "larger request bodies get 413; replaces Quart's 16 MiB",
        is_int(1),
        shown="1 MiB",
    ),
)


def _health_paths(app: Quart) -> tuple[str, ...]:
    return (
        app.config.get("SHIPSHAPE_HEALTH_PATH", "/healthz"),
        app.config.get("SHIPSHAPE_READY_PATH", "/readyz"),
    )


def _networks(value: object) -> tuple[str, ...]:
    networks = tuple(str(item) for item in items(value))
    parse_networks(networks)  # ValueError for a bad one
    return networks


#: Settings of the byte-level middleware, applied when it is wrapped around the app.
MIDDLEWARE_OPTIONS: tuple[Option, ...] = (
    flag(
        "SHIPSHAPE_FORCE_HTTPS", ON_IN_PRODUCTION, "redirect plain HTTP (301 GET/HEAD, 308 others)"
    ),
    Option(
        "SHIPSHAPE_HTTPS_EXEMPT_HOSTS",
        LOOPBACK_HOSTS,
        "host names",
        "hosts left on HTTP, so `make serve` can be tried locally; `()` for none",
        is_hosts,
        shown="`localhost`, `127.0.0.1`, `[::1]`",
    ),
    Option(
        "SHIPSHAPE_HTTPS_EXEMPT_PATHS",
        Derived(_health_paths, "the health paths"),
        "paths",
        "paths left on HTTP, for load-balancer probes",
        is_paths,
    ),
    Option(
        "SHIPSHAPE_HOST_CHECK_EXEMPT_PATHS",
        Derived(_health_paths, "the health paths"),
        "paths",
        "paths answered for any IP address as `Host` (not on `ALLOWED_HOSTS`), for probes "
        "that send the instance's address (Kubernetes, load balancers); `()` for none",
        is_paths,
    ),
    Option(
        "SHIPSHAPE_TRUSTED_PROXY_NETWORKS",
        (),
        "IP networks such as `10.0.0.0/8`",
        "networks the direct peer must be in before `TRUSTED_PROXIES` applies",
        _networks,
    ),
    Option(
        "SHIPSHAPE_COMPRESSION_MIN_SIZE",
        MINIMUM_SIZE,
        "bytes, 0 or more",
        "smaller bodies are sent as they are",
        is_int(0),
        shown=f"`{MINIMUM_SIZE}` bytes",
    ),
    Option(
        "SHIPSHAPE_COMPRESSION_LEVELS",
        DYNAMIC_LEVELS,
        LEVELS_ACCEPTED,
        "levels for dynamic bodies, merged over the defaults (docs/compression.md); "
        "the SPA index is compressed once, at the build levels",
        checked_levels,
        shown=", ".join(f"{name} {level}" for name, level in DYNAMIC_LEVELS.items()),
    ),
)

#: Every setting, in the order ``docs/configuration.md`` lists them.
ALL_OPTIONS: tuple[Option, ...] = (
    *SWITCHES,
    *error_pages.OPTIONS,
    *csrf.OPTIONS,
    *health.OPTIONS,
    *assets.OPTIONS,
    *headers.OPTIONS,
    *(option for option in csp_report.OPTIONS if option not in headers.OPTIONS),
    *limiter.OPTIONS,
    *database.OPTIONS,  # applied by Database(app), when the app has one
    *spa.OPTIONS,
    *collector.OPTIONS,
    *MIDDLEWARE_OPTIONS,
)


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
        self.headers: SecurityHeaders | None = None
        #: More ``check --deploy`` findings, from features that know their own
        #: state (the database's migrations); each is called only with --deploy.
        self.deploy_checks: list[Callable[[], list[Finding]]] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        if "shipshape" in app.extensions:
            raise RuntimeError("Shipshape is already initialised on this app")
        refuse_unknown(app.config, ALL_OPTIONS)
        # Quart's default config carries SECRET_KEY=None; Settings treats it as unset.
        self.settings = settings = Settings.from_mapping(app.config)
        app.config["SECRET_KEY"] = settings.secret_key
        app.config["APP_ENV"] = settings.app_env  # read by features' defaults
        apply(app, SWITCHES)
        app.config.setdefault("TESTING", settings.app_env == "testing")
        self._configure_session_cookie(app, settings)
        install_session_interface(app)
        if app.request_class is QuartRequest:  # an app's own class is left alone
            app.request_class = Request
        if app.asgi_http_class is ASGIHTTPConnection:  # likewise the connection class
            app.asgi_http_class = HTTPConnection
        app.extensions["shipshape"] = self
        # Request hooks run in the pipeline's stated order, not in the order
        # the features below happen to be set up.
        self.pipeline = Pipeline.of(app)
        # Makes shipshape/forms.html (Bootstrap macros) and shipshape/error.html loadable.
        app.register_blueprint(Blueprint("shipshape", __name__, template_folder="templates"))

        if app.config["SHIPSHAPE_CONFIGURE_LOGGING"]:
            configure_logging(json_lines=settings.is_production)
            # The queued request lines: written when the app stops, and when a
            # worker process exits (see shipshape.logging.JsonLineHandler).
            app.before_serving(flush_at_worker_exit)
            app.after_serving(flush_request_lines)
        if app.config["SHIPSHAPE_ERROR_PAGES"]:
            ErrorPages(app)
        if app.config["SHIPSHAPE_CSRF"]:
            self.csrf = CSRFProtect(app)
        else:  # templates written for CSRF still render, with no token in them
            app.add_template_global(lambda: "", "csrf_token")
            app.add_template_global(lambda: Markup(""), "csrf_field")
        if app.config["SHIPSHAPE_HEALTH"]:
            self.health = Health(app)
        if app.config["SHIPSHAPE_ASSETS"]:
            self.assets = Assets(app)
            if self.health is not None:
                self.health.add_check("assets", self.assets.ready)
        app.add_template_global(csp_nonce, "csp_nonce")
        if app.config["SHIPSHAPE_HEADERS"]:
            cdn = self.assets.cdn_origins(app) if self.assets is not None else []
            self.headers = SecurityHeaders(app, settings, cdn_origins=cdn)
        self.ratelimiter: RateLimiter | None = None
        if app.config["SHIPSHAPE_RATELIMIT"]:
            self.ratelimiter = RateLimiter()
            self.ratelimiter.init_app(app, settings)
            self.deploy_checks.append(self.ratelimiter.deploy_findings)
            if self.health is not None:
                self.health.add_check("ratelimit_store", self.ratelimiter.ready)
        if app.config["SHIPSHAPE_CSP_REPORTS"]:
            CSPReports(app)
        app.cli.add_command(check_command(app, settings))
        app.before_serving(partial(_drop_sync_context_processors, app))
        app.before_serving(partial(check_environment, app))
        apply(app, collector.OPTIONS)
        if app.config["SHIPSHAPE_GC_TUNING"]:
            collector.install(app)
        self._wrap_asgi(app, settings)

    def _wrap_asgi(self, app: Quart, settings: Settings) -> None:
        """Wrap Quart in the byte-level middleware, in :data:`~shipshape.pipeline.ASGI_LAYERS`
        order (outermost first); a layer that is switched off is left out."""
        apply(app, MIDDLEWARE_OPTIONS)
        config = app.config
        networks = parse_networks(config["SHIPSHAPE_TRUSTED_PROXY_NETWORKS"])
        api_prefix = config.get("SHIPSHAPE_API_PREFIX", "/api/")
        security = self.headers
        # What a response made before Quart carries: the API profile, and HSTS over HTTPS.
        refusal_headers = security.plain_headers() if security is not None else []
        hsts = security.hsts_bytes if security is not None else None
        layers: dict[str, Callable[[ASGIApp], ASGIApp] | None] = {
            "proxy": partial(
                ProxyMiddleware, trusted_hops=settings.trusted_proxies, trusted_networks=networks
            ),
            "request_log": partial(
                RequestLogMiddleware, trust_inbound_id=settings.trusted_proxies > 0
            )
            if config["SHIPSHAPE_REQUEST_LOG"]
            else None,
            "host_check": partial(
                AllowedHostsMiddleware,
                allowed=settings.allowed_hosts,
                api_prefix=api_prefix,
                exempt_paths=config["SHIPSHAPE_HOST_CHECK_EXEMPT_PATHS"],
                headers=refusal_headers,
            )
            if config["SHIPSHAPE_HOST_CHECK"]
            else None,
            "https_redirect": partial(
                HTTPSRedirectMiddleware,
                exempt_hosts=config["SHIPSHAPE_HTTPS_EXEMPT_HOSTS"],
                exempt_paths=config["SHIPSHAPE_HTTPS_EXEMPT_PATHS"],
                headers=refusal_headers,
            )
            if config["SHIPSHAPE_FORCE_HTTPS"]
            else None,
            # Outside compression: files are precompressed at build time, and
            # their strong ETags and own Accept-Encoding fallback stay intact.
            "static": partial(
                StaticFiles,
                root=Path(config["SHIPSHAPE_ASSET_DIR"]),
                prefix=config["SHIPSHAPE_STATIC_URL"],
                headers=security.static_headers() if security is not None else (),
                hsts=security.hsts if security is not None else None,
            )
            if self.assets is not None and config["SHIPSHAPE_STATIC"]
            else None,
            # Before the rate limit (exempt: a page load fetches the index and
            # its chunks at once) and outside compression (its files are
            # precompressed; it compresses the index itself, with these settings).
            "spa": spa.middleware(
                app,
                security=security,
                api_prefix=api_prefix,
                static_prefix=config["SHIPSHAPE_STATIC_URL"]
                if self.assets is not None and config["SHIPSHAPE_STATIC"]
                else "",
            ),
            "rate_limit": partial(
                RateLimitMiddleware,
                quart=app,
                limiter=self.ratelimiter,
                headers=refusal_headers,
                hsts=hsts,
                api_prefix=api_prefix,
            )
            if self.ratelimiter is not None
            else None,
            "compression": partial(
                CompressionMiddleware,
                minimum_size=config["SHIPSHAPE_COMPRESSION_MIN_SIZE"],
                levels=config["SHIPSHAPE_COMPRESSION_LEVELS"],
                api_prefix=api_prefix,
                hsts=hsts,
                refusal_headers=refusal_headers,
            )
            if config["SHIPSHAPE_COMPRESSION"]
            else None,
            "security_headers": SecurityHeadersMiddleware if security is not None else None,
            "request_body": partial(
                RequestBodyMiddleware,
                api_prefix=api_prefix,
                headers=refusal_headers,
                hsts=hsts,
            ),
        }
        if tuple(layers) != ASGI_LAYERS:  # pragma: no cover - a developer's slip, caught in tests
            raise RuntimeError("the ASGI layers must follow shipshape.pipeline.ASGI_LAYERS")
        asgi = cast(ASGIApp, app.asgi_app)
        self.asgi_layers = tuple(name for name, layer in layers.items() if layer is not None)
        for name in reversed(self.asgi_layers):
            layer = layers[name]
            if layer is not None:
                asgi = layer(asgi)
        app.asgi_app = asgi  # type: ignore[method-assign,assignment]

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


async def _drop_sync_context_processors(app: Quart) -> None:
    """Remove Flask's sync default context processor that each blueprint inherits.

    Quart's blueprints come from Flask's sans-io scaffold, which registers
    Flask's synchronous ``_default_template_ctx_processor`` for every
    blueprint. Quart runs sync processors in a thread pool, so each template
    rendered from a blueprint view paid a thread hop for a dict that Quart's
    own async processor already provides (g, request, session). Measured: the
    home page went from about 1,100 to about 1,500 renders/s in-process.
    """
    for name, processors in app.template_context_processors.items():
        if name is not None:
            processors[:] = [
                p for p in processors if getattr(p, "__module__", "") != "flask.templating"
            ]
