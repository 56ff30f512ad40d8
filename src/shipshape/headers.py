"""Security headers by response kind, computed once at start-up.

Each response gets the headers of its profile:

* ``html``: a nonce-based CSP (see :mod:`shipshape.csp`) and every header below;
* ``spa``: the same for a single-page app's index (tuned separately);
* ``api``: ``default-src 'none'; frame-ancestors 'none'`` and the plain headers;
* ``static``: the plain headers and CORP, which ``require-corp`` pages need.

The profile is chosen by a view's ``@header_profile(...)``, else by the
``static`` endpoint, else by the response's media type (HTML or not). A header
the view already set is left alone; ``@security_headers(...)`` overrides or
removes headers for one view.

Why each default (OWASP Secure Headers Project, and the specs cited):

* ``X-XSS-Protection: 0``: the old XSS auditor that ``1; mode=block`` turns on
  could be abused to leak or blank out page content, and every current
  browser has removed it; OWASP advises ``0`` and relying on the CSP.
* ``X-Frame-Options: SAMEORIGIN`` backs ``frame-ancestors`` for old browsers.
* COOP ``same-origin`` + COEP ``require-corp`` isolate the page (Spectre);
  COEP breaks third-party embeds without CORP, so it is configurable.
* HSTS (RFC 6797) goes only on HTTPS responses (§7.2: a UA ignores it over
  HTTP), two years with subdomains; ``preload`` only when asked, since leaving
  the preload list takes months.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from quart import Quart, Response, request

from shipshape.config import Settings
from shipshape.csp import API_POLICY, HTML_POLICY, Policy, csp_nonce
from shipshape.options import (
    ON_IN_PRODUCTION,
    Option,
    apply,
    flag,
    is_header_value,
    is_int,
    is_optional_path,
    one_of,
)
from shipshape.pipeline import Pipeline
from shipshape.policy import ViewPolicy, set_columns, view_columns
from shipshape.typing import ASGIApp, Message, RawHeaders, Receive, Scope, Send, ViewT

Profile = Literal["html", "spa", "api", "static"]
PROFILES: tuple[Profile, ...] = ("html", "spa", "api", "static")

SCOPE_KEY = "shipshape.security_headers"  # the scope entry apply() leaves for the middleware

# Every powerful feature off; a page that needs one opts in per view.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


def is_policy(value: object) -> Policy | None:
    if value is not None and not isinstance(value, Policy):
        raise ValueError("not a Policy")
    return value


POLICY = "a `shipshape.csp.Policy`, or `None` for no CSP"
#: ``SHIPSHAPE_CSP_REPORT_PATH`` is read here (``report-uri``, ``Reporting-Endpoints``)
#: and by :mod:`shipshape.csp_report`, which serves it.
REPORT_PATH = Option(
    "SHIPSHAPE_CSP_REPORT_PATH",
    "/csp-report",
    "a path, or `None` for no reporting",
    "where browsers send CSP violation reports",
    is_optional_path,
)
OPTIONS: tuple[Option, ...] = (
    Option("SHIPSHAPE_CSP_HTML", HTML_POLICY, POLICY, "the HTML pages' CSP", is_policy,
           shown="strict, nonce-based (docs/security.md)"),
    Option("SHIPSHAPE_CSP_SPA", HTML_POLICY, POLICY, "the single-page app index's CSP",
           is_policy, shown="as `SHIPSHAPE_CSP_HTML`"),
    Option("SHIPSHAPE_CSP_API", API_POLICY, POLICY, "the CSP of JSON and other non-HTML responses",
           is_policy, shown="`default-src 'none'; frame-ancestors 'none'`"),
    flag("SHIPSHAPE_CSP_REPORT_ONLY", False,
         "send `Content-Security-Policy-Report-Only` instead (a `check --deploy` warning)"),
    REPORT_PATH,
    Option("SHIPSHAPE_COOP", "same-origin",
           "`same-origin`, `same-origin-allow-popups`, `noopener-allow-popups`, `unsafe-none` "
           "or `None`",
           "`Cross-Origin-Opener-Policy`",
           one_of("same-origin", "same-origin-allow-popups", "noopener-allow-popups",
                  "unsafe-none")),
    Option("SHIPSHAPE_COEP", "require-corp",
           "`require-corp`, `credentialless`, `unsafe-none` or `None`",
           "`Cross-Origin-Embedder-Policy`; third-party embeds without CORP need it relaxed",
           one_of("require-corp", "credentialless", "unsafe-none")),
    Option("SHIPSHAPE_CORP", "same-origin", "`same-origin`, `same-site`, `cross-origin` or `None`",
           "`Cross-Origin-Resource-Policy`", one_of("same-origin", "same-site", "cross-origin")),
    Option("SHIPSHAPE_REFERRER_POLICY", "strict-origin-when-cross-origin",
           "a `Referrer-Policy` token or `None`", "`Referrer-Policy`",
           one_of("no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
                  "same-origin", "strict-origin", "strict-origin-when-cross-origin",
                  "unsafe-url")),
    Option("SHIPSHAPE_FRAME_OPTIONS", "SAMEORIGIN", "`DENY`, `SAMEORIGIN` or `None`",
           "`X-Frame-Options` for old browsers (CSP `frame-ancestors 'none'` is stricter)",
           one_of("DENY", "SAMEORIGIN")),
    Option("SHIPSHAPE_PERMISSIONS_POLICY", PERMISSIONS_POLICY, "a header value or `None`",
           "`Permissions-Policy`", is_header_value, shown="every feature off"),
    # OWASP: "0" turns the removed, exploitable XSS auditor off; see the module doc.
    Option("SHIPSHAPE_XSS_PROTECTION", "0", "`0`, `1`, `1; mode=block` or `None`",
           "`X-XSS-Protection`; `0` turns the old, exploitable auditor off",
           one_of("0", "1", "1; mode=block")),
    flag("SHIPSHAPE_HSTS", ON_IN_PRODUCTION, "`Strict-Transport-Security`, over HTTPS only"),
    Option("SHIPSHAPE_HSTS_MAX_AGE", 63072000, "whole seconds, 0 or more",
           "HSTS `max-age`: two years, the preload list's minimum", is_int(0),
           shown="`63072000` s"),
    flag("SHIPSHAPE_HSTS_INCLUDE_SUBDOMAINS", True, "HSTS `includeSubDomains`"),
    flag("SHIPSHAPE_HSTS_PRELOAD", False,
         "HSTS `preload`; leaving the preload list takes months, so it is opt-in"),
)  # fmt: skip


def header_profile(kind: Profile) -> Callable[[ViewT], ViewT]:
    """Give one view's responses the headers of ``kind``."""
    if kind not in PROFILES:
        raise ValueError(f"unknown header profile {kind!r}; use one of {PROFILES}")

    def decorate(view: ViewT) -> ViewT:
        return set_columns(view, header_profile=kind)

    return decorate


def security_headers(**overrides: str | None) -> Callable[[ViewT], ViewT]:
    """Override (a string) or drop (``None``) headers for one view.

    ``@security_headers(Cross_Origin_Embedder_Policy=None)`` drops COEP; names
    use ``_`` for ``-``.
    """
    changes = {name.replace("_", "-"): value for name, value in overrides.items()}

    def decorate(view: ViewT) -> ViewT:
        merged = {**view_columns(view).get("header_overrides", {}), **changes}
        return set_columns(view, header_overrides=merged)

    return decorate


class SecurityHeaders:
    """Adds the profile headers to every response.

    Config: the ``SHIPSHAPE_*`` keys in :data:`OPTIONS`. A value of ``None``
    turns that header off.
    """

    def __init__(
        self,
        app: Quart | None = None,
        settings: Settings | None = None,
        *,
        cdn_origins: Sequence[str] = (),
    ) -> None:
        self.profiles: dict[Profile, list[tuple[str, str]]] = {}
        self.csp: dict[Profile, Policy | None] = {}
        self.hsts: str | None = None
        self._view_cache: dict[tuple[str | None, Profile], tuple[RawHeaders, bool]] = {}
        self.hsts_bytes: bytes | None = None
        if app is not None and settings is not None:
            self.init_app(app, settings, cdn_origins=cdn_origins)

    def init_app(self, app: Quart, settings: Settings, *, cdn_origins: Sequence[str] = ()) -> None:
        apply(app, OPTIONS)
        if cdn_origins:  # assets from a CDN: allow its origin for what it serves, nothing more
            for key in ("SHIPSHAPE_CSP_HTML", "SHIPSHAPE_CSP_SPA"):
                if app.config[key] is not None:
                    app.config[key] = app.config[key].extend(
                        script_src=cdn_origins, style_src=cdn_origins, font_src=cdn_origins
                    )
        config = app.config
        self.production = settings.is_production
        self.report_path: str | None = config["SHIPSHAPE_CSP_REPORT_PATH"]
        self.csp_header = (
            "Content-Security-Policy-Report-Only"
            if config["SHIPSHAPE_CSP_REPORT_ONLY"]
            else "Content-Security-Policy"
        )
        common = [
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", config["SHIPSHAPE_REFERRER_POLICY"]),
            ("Cross-Origin-Resource-Policy", config["SHIPSHAPE_CORP"]),
        ]
        page = [
            *common,
            ("X-Frame-Options", config["SHIPSHAPE_FRAME_OPTIONS"]),
            ("Cross-Origin-Opener-Policy", config["SHIPSHAPE_COOP"]),
            ("Cross-Origin-Embedder-Policy", config["SHIPSHAPE_COEP"]),
            ("Permissions-Policy", config["SHIPSHAPE_PERMISSIONS_POLICY"]),
            ("X-XSS-Protection", config["SHIPSHAPE_XSS_PROTECTION"]),
        ]
        if self.report_path:
            page.append(("Reporting-Endpoints", f'csp="{self.report_path}"'))
        api = [*common, ("X-Frame-Options", "DENY")]
        self.profiles = {
            "html": _present(page),
            "spa": _present(page),
            "api": _present(api),
            "static": _present(common),
        }
        self.csp = {
            "html": config["SHIPSHAPE_CSP_HTML"],
            "spa": config["SHIPSHAPE_CSP_SPA"],
            "api": config["SHIPSHAPE_CSP_API"],
            "static": config["SHIPSHAPE_CSP_API"],
        }
        self.csp_templates = {kind: self.render(kind, policy) for kind, policy in self.csp.items()}
        if config["SHIPSHAPE_HSTS"]:
            hsts = f"max-age={int(config['SHIPSHAPE_HSTS_MAX_AGE'])}"
            if config["SHIPSHAPE_HSTS_INCLUDE_SUBDOMAINS"]:
                hsts += "; includeSubDomains"
            if config["SHIPSHAPE_HSTS_PRELOAD"]:
                hsts += "; preload"
            self.hsts = hsts
            self.hsts_bytes = hsts.encode()
        Pipeline.of(app).after("security_headers", self.apply)

    def render(self, kind: Profile, policy: Policy | None) -> str | None:
        """The CSP header template of ``policy``; pages get reporting and upgrades."""
        if policy is None:
            return None
        if kind in ("api", "static"):
            return policy.render()
        return policy.render_for_page(report_path=self.report_path, upgrade=self.production)

    def plain_headers(self) -> RawHeaders:
        """The API profile with its CSP, for small pages that load nothing (refusals)."""
        headers = list(self.profiles["api"])
        template = self.csp_templates["api"]
        if template is not None:
            headers.append((self.csp_header, template))
        return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]

    def static_headers(self) -> list[tuple[str, str]]:
        """The static profile with its CSP, for the static-files middleware."""
        headers = list(self.profiles["static"])
        template = self.csp_templates["static"]
        if template is not None:
            headers.append((self.csp_header, template))
        return headers

    def profile_headers(self, kind: Profile) -> RawHeaders:
        """A profile's headers with its CSP, ``{nonce}`` left to fill in, for a page made
        before Quart runs (the single-page index, :mod:`shipshape.spa`)."""
        headers, _ = self._for_view(ViewPolicy(endpoint=f"shipshape.profile.{kind}"), kind)
        return list(headers)

    @staticmethod
    def profile_of(policy: ViewPolicy, response: Response) -> Profile:
        """The view's own profile, else ``html`` for HTML responses and ``api`` for the rest.

        An empty body is no page, whatever its type says: Quart answers an automatic
        ``OPTIONS`` with an empty ``text/html`` response, which took a page's frame
        options and nonce CSP on the API's paths."""
        if policy.header_profile is not None:
            return policy.header_profile
        page = response.mimetype == "text/html" and response.content_length != 0
        return "html" if page else "api"

    def _for_view(self, view: ViewPolicy, kind: Profile) -> tuple[RawHeaders, bool]:
        """The headers (CSP template included) for this endpoint, cached per endpoint."""
        cached = self._view_cache.get((view.endpoint, kind))
        if cached is not None:
            return cached
        headers = list(self.profiles[kind])
        csp_change = view.csp_change
        policy = self.csp[kind]
        template = self.csp_templates[kind]
        if csp_change is not None and policy is not None:
            policy = csp_change(policy)
            template = self.render(kind, policy)
        if template is not None:
            headers.append((self.csp_header, template))
        overrides = view.header_overrides
        if overrides:
            lowered = {name.lower() for name in overrides}
            headers = [(n, v) for n, v in headers if n.lower() not in lowered]
            headers += [(n, v) for n, v in overrides.items() if v is not None]
        needs_nonce = template is not None and policy is not None and policy.uses_nonce
        raw = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        result = (raw, needs_nonce)
        self._view_cache[(view.endpoint, kind)] = result  # unrouted requests share one row
        return result

    async def apply(self, policy: ViewPolicy, response: Response) -> Response:
        """Choose this response's headers; :class:`SecurityHeadersMiddleware` adds them.

        Adding a dozen headers through Werkzeug's ``Headers`` (which validates
        each value) cost about 90 µs a response; appending the precomputed
        bytes at the ASGI layer costs a few.
        """
        headers, needs_nonce = self._for_view(policy, self.profile_of(policy, response))
        nonce = csp_nonce().encode() if needs_nonce else None
        hsts = self.hsts_bytes if request.scheme == "https" else None
        request.scope[SCOPE_KEY] = (headers, nonce, hsts)  # type: ignore[literal-required]
        return response


class SecurityHeadersMiddleware:
    """Appends the headers :meth:`SecurityHeaders.apply` chose, at response start.

    A header the app already set is kept; ``Server`` is removed; a response
    that sets a cookie or varies on it (``Vary: Cookie``: a page with a CSRF
    token bound to the session) and says nothing of caching gets
    ``Cache-Control: private``. Responses that never passed through Quart (redirects, host
    errors, static files with their own profile) are left as they are.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            chosen = scope.get(SCOPE_KEY)
            if message["type"] == "http.response.start" and chosen is not None:
                headers, nonce, hsts = chosen
                current = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"server"]
                present = {k.lower() for k, _ in current}
                for name, value in headers:
                    if name not in present:
                        current.append((name, value.replace(b"{nonce}", nonce) if nonce else value))
                if hsts is not None and b"strict-transport-security" not in present:
                    current.append((b"strict-transport-security", hsts))
                if b"cache-control" not in present and _for_this_client(current, present):
                    # A response that sets a cookie (a new session, with its CSRF
                    # secret) or that the cookie shaped (a page with a token bound
                    # to the session) is for this client only: no shared cache may keep it.
                    current.append((b"cache-control", b"private"))
                message["headers"] = current
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _for_this_client(headers: list[tuple[bytes, bytes]], present: set[bytes]) -> bool:
    """Whether a response sets a cookie or varies on the request's cookies."""
    if b"set-cookie" in present:
        return True
    return any(name.lower() == b"vary" and b"cookie" in value.lower() for name, value in headers)


def _present(headers: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if value is not None]
