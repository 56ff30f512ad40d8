"""App-wide CSRF protection with session-bound, per-response masked tokens.

Why not WTForms' ``SessionCSRF`` or Flask-WTF's scheme: both emit the same
token bytes on every page and give them a fixed lifetime (an hour by default),
so a long form "expires" while the session lives, and a compressed page that
reflects attacker input leaks the token byte by byte (BREACH). Here:

* one random 32-byte secret lives in the signed session, so the token lives
  exactly as long as the session;
* every call to ``csrf_token()`` returns ``base64url(pad || pad XOR secret)``
  with a fresh random pad, so no two responses carry the same bytes (the
  masking Django and Rails use against BREACH);
* every unsafe method (anything but GET, HEAD, OPTIONS, TRACE) is checked
  before the view runs, app-wide; a view opts out only with ``@csrf_exempt``;
* JSON and single-page callers send the token in the ``X-CSRF-Token`` header;
* ``Sec-Fetch-Site: cross-site`` and a foreign ``Origin`` are refused first
  (Fetch Metadata, https://www.w3.org/TR/fetch-metadata/).

A failure raises :class:`CSRFError` (400), which the error pages render as a
friendly "the form expired" page, or JSON; the view never runs, so nothing is
saved.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from quart import Quart, current_app, has_websocket_context, request, session, websocket
from werkzeug.exceptions import BadRequest

from shipshape.options import Option, apply, is_name
from shipshape.pipeline import Pipeline
from shipshape.policy import ViewPolicy, set_columns
from shipshape.randomness import token_bytes
from shipshape.request import request_header
from shipshape.typing import ViewT

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SESSION_KEY = "_csrf"
SECRET_BYTES = 32
NAME = "letters, digits, `-` and `_`"

OPTIONS: tuple[Option, ...] = (
    Option("SHIPSHAPE_CSRF_FIELD", "csrf_token", NAME, "the form field of the token", is_name),
    Option(
        "SHIPSHAPE_CSRF_HEADER",
        "X-CSRF-Token",
        NAME,
        "the header that JSON and single-page callers send the token in",
        is_name,
    ),
)


class CSRFError(BadRequest):
    """The CSRF check failed; nothing was processed."""

    slug = "csrf_failed"
    title = "The form expired"
    description = "The form expired or was sent from another site. Please try again."

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def csrf_exempt(view: ViewT) -> ViewT:
    """Skip the CSRF check for one view, for example a webhook with its own auth."""
    return set_columns(view, csrf_exempt=True)


def _xor(a: bytes, b: bytes) -> bytes:
    """``a`` XOR ``b``, for equal lengths; one big-int operation, not a loop per byte."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def mask(secret: bytes) -> str:
    pad = token_bytes(len(secret))
    return base64.urlsafe_b64encode(pad + _xor(pad, secret)).decode().rstrip("=")


def unmask(token: str) -> bytes | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 2 * SECRET_BYTES:
        return None
    pad, masked = raw[:SECRET_BYTES], raw[SECRET_BYTES:]
    return _xor(pad, masked)


def secret_from(stored: object) -> bytes | None:
    """The CSRF secret kept in a session under :data:`SESSION_KEY`, or ``None`` if unusable.

    Shared with the single-page index (:mod:`shipshape.spa`), which reads the
    session cookie before Quart runs.
    """
    if isinstance(stored, str):
        try:
            secret = bytes.fromhex(stored)
        except ValueError:
            return None
        if len(secret) == SECRET_BYTES:
            return secret
    return None


def _same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether ``origin`` is this request's origin: its scheme and host (port included),
    as RFC 6454 compares origins. One that cannot be parsed (``http://[``) is no origin
    this site sent (RFC 6454 §7), so it is foreign, never a 500."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    scheme = scheme.lower()
    if parts.scheme.lower() != scheme:
        return False
    # A default port is the same origin written out (`Host: example.com:443`).
    default = _DEFAULT_PORTS.get(scheme, "")
    return parts.netloc.lower().removesuffix(default) == host.lower().removesuffix(default)


_DEFAULT_PORTS = {"https": ":443", "http": ":80"}
#: A WebSocket's scheme, as the page that opens it has it: its Origin's.
_HTTP_SCHEMES = {"wss": "https", "ws": "http"}


def _refuse_cross_site(scheme: str, host: str, *, null_is_foreign: bool = False) -> None:
    """:class:`CSRFError` for a request that says it comes from another site.

    ``Origin: null`` (a sandboxed frame, a redirect across sites) is let through where a
    token is checked next, and refused where nothing else is (``null_is_foreign``)."""
    fetch_site = (request_header(b"sec-fetch-site") or "").lower()
    # Repeated lines arrive joined: any one of them saying cross-site is refused.
    if "cross-site" in (value.strip() for value in fetch_site.split(",")):
        raise CSRFError("cross-site request (Sec-Fetch-Site)")
    origin = request_header(b"origin")
    if origin == "null" and not null_is_foreign:
        return
    if origin and not _same_origin(origin, scheme, host):
        raise CSRFError("foreign Origin")


def new_secret() -> bytes:
    return token_bytes(SECRET_BYTES)


def _session_secret(create: bool) -> bytes | None:
    # The response now depends on the session cookie (a token bound to it is in
    # the page, or the cookie decided a refusal). Quart's cookie session never
    # records a read, so without this a return visit's page said nothing of it:
    # Quart's save_session adds ``Vary: Cookie`` for an accessed session, and
    # SecurityHeadersMiddleware makes such a response ``Cache-Control: private``.
    session.accessed = True
    secret = secret_from(session.get(SESSION_KEY))
    if secret is not None or not create:
        return secret
    secret = new_secret()
    session[SESSION_KEY] = secret.hex()
    return secret


def generate_csrf() -> str:
    """A masked token for the current session; different bytes on every call."""
    secret = _session_secret(create=True)
    if secret is None:  # pragma: no cover - create=True always returns bytes
        raise RuntimeError("no CSRF secret")
    return mask(secret)


def validate_csrf(token: str | None) -> bool:
    if not token:
        return False
    expected = _session_secret(create=False)
    given = unmask(token)
    return expected is not None and given is not None and hmac.compare_digest(expected, given)


class CSRFProtect:
    """Checks every unsafe request app-wide.

    Config: ``SHIPSHAPE_CSRF_FIELD`` (form field, ``csrf_token``) and
    ``SHIPSHAPE_CSRF_HEADER`` (``X-CSRF-Token``). Templates get ``csrf_token()``
    and ``csrf_field()``.
    """

    def __init__(self, app: Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        apply(app, OPTIONS)
        Pipeline.of(app).before("csrf", self.protect)
        app.add_template_global(generate_csrf, "csrf_token")
        app.add_template_global(self.field, "csrf_field")

    @staticmethod
    def field() -> Markup:
        name = escape(current_app.config["SHIPSHAPE_CSRF_FIELD"])
        # The name is escaped; the token is URL-safe base64, which needs no escaping.
        # autocomplete="off": Firefox refills hidden fields when a page is loaded again
        # for Back, which would put back the token of a session that has ended.
        return Markup(  # noqa: S704
            f'<input type="hidden" name="{name}" value="{generate_csrf()}" autocomplete="off">'
        )

    async def protect(self, policy: ViewPolicy) -> None:
        if has_websocket_context():
            # A browser opens a WebSocket from any site with this site's cookies, and the
            # handshake carries no token (cross-site WebSocket hijacking): what it always
            # carries is its Origin, so another site's is refused (closed, a 403).
            if not policy.csrf_exempt:
                scheme = _HTTP_SCHEMES.get(websocket.scheme, websocket.scheme)
                _refuse_cross_site(scheme, websocket.host, null_is_foreign=True)
            return
        if (
            request.method in SAFE_METHODS
            or policy.csrf_exempt
            or request.routing_exception is not None
        ):
            return
        _refuse_cross_site(request.scheme, request.host)
        token = request_header(current_app.config["SHIPSHAPE_CSRF_HEADER"].lower().encode())
        if token is None:
            form = await request.form
            token = form.get(current_app.config["SHIPSHAPE_CSRF_FIELD"])
        if not validate_csrf(token):
            raise CSRFError("missing or invalid token")
