"""Content Security Policy: policies, per-request nonces and violation reports.

A :class:`Policy` is an immutable list of directives. It is rendered to a
header template once, at start-up; a response then costs one string
replacement to put its nonce in. The default HTML policy starts from
``default-src 'none'`` and allows only what the pages use (CSP Level 3,
https://www.w3.org/TR/CSP3/): stricter than ``default-src 'self'``, and no
``'unsafe-inline'`` anywhere.

Nonces are 128 bits from :mod:`secrets` (CSP3 §7.1 asks for at least 128),
fresh for every HTML response, and reach templates as ``csp_nonce()``.

Per-view decorators only set attributes::

    @csp_extend(img_src=["https://images.example"])
    async def gallery(): ...

    @csp_exempt
    async def legacy_page(): ...
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from quart import Blueprint, Quart, Response, g, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from shipshape.csrf import csrf_exempt
from shipshape.errors import json_errors
from shipshape.ratelimit.limiter import rate_limit

F = TypeVar("F", bound=Callable[..., Any])

NONCE = "'nonce-{nonce}'"  # placeholder replaced per response
NONCE_BYTES = 16  # 128 bits
CSP_ATTR = "_shipshape_csp"  # a callable Policy -> Policy | None set by the decorators
REPORT_MAX_BYTES = 64 * 1024  # a real report is a few hundred bytes; 64 KiB caps abuse
REPORT_TYPES = ("application/csp-report", "application/reports+json", "application/json")

logger = logging.getLogger("shipshape.csp")

Sources = tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """An ordered, immutable set of CSP directives."""

    directives: tuple[tuple[str, Sources], ...]

    @classmethod
    def of(cls, directives: Mapping[str, Iterable[str]]) -> Policy:
        return cls(tuple((_name(k), tuple(v)) for k, v in directives.items()))

    def as_dict(self) -> dict[str, Sources]:
        return dict(self.directives)

    def extend(self, **directives: Iterable[str]) -> Policy:
        """Add sources to directives (``img_src=[...]``), creating missing ones."""
        merged = self.as_dict()
        for key, sources in directives.items():
            name = _name(key)
            current = merged.get(name, ())
            if current == ("'none'",):
                current = ()
            merged[name] = current + tuple(s for s in sources if s not in current)
        return Policy.of(merged)

    def replace(self, **directives: Iterable[str] | None) -> Policy:
        """Replace whole directives; ``None`` removes one."""
        merged = self.as_dict()
        for key, sources in directives.items():
            if sources is None:
                merged.pop(_name(key), None)
            else:
                merged[_name(key)] = tuple(sources)
        return Policy.of(merged)

    @property
    def uses_nonce(self) -> bool:
        return any(NONCE in sources for _, sources in self.directives)

    def unsafe_sources(self) -> list[str]:
        """``'unsafe-inline'``/``'unsafe-eval'`` found, as ``directive source`` strings."""
        return [
            f"{name} {source}"
            for name, sources in self.directives
            for source in sources
            if source in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'")
        ]

    def render(self) -> str:
        """The header value, with ``{nonce}`` left to fill in per response."""
        return "; ".join(f"{name} {' '.join(s)}".strip() for name, s in self.directives)


def _name(key: str) -> str:
    return key.replace("_", "-").lower()


HTML_POLICY = Policy.of(
    {
        "default-src": ["'none'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
)
# JSON and other non-HTML responses load nothing and must not be framed.
API_POLICY = Policy.of({"default-src": ["'none'"], "frame-ancestors": ["'none'"]})


def csp_nonce() -> str:
    """This request's nonce, created on first use; the CSP header carries the same."""
    nonce: str | None = g.get("_shipshape_csp_nonce")
    if nonce is None:
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        g._shipshape_csp_nonce = nonce
    return nonce


def _set(view: F, change: Callable[[Policy], Policy | None]) -> F:
    previous: Callable[[Policy], Policy | None] | None = getattr(view, CSP_ATTR, None)

    def combined(policy: Policy) -> Policy | None:
        base = previous(policy) if previous is not None else policy
        return None if base is None else change(base)

    setattr(view, CSP_ATTR, combined)
    return view


def csp_extend(**directives: Iterable[str]) -> Callable[[F], F]:
    """Add sources to this view's policy: ``@csp_extend(img_src=["https://cdn.example"])``."""
    return lambda view: _set(view, lambda policy: policy.extend(**directives))


def csp_replace(**directives: Iterable[str] | None) -> Callable[[F], F]:
    """Replace directives of this view's policy; ``None`` removes one."""
    return lambda view: _set(view, lambda policy: policy.replace(**directives))


def csp_exempt(view: F) -> F:
    """Send no CSP for this view. ``check --deploy`` cannot see it: use sparingly."""
    return _set(view, lambda policy: None)


class CSPReports:
    """``POST /csp-report``: logs one line per violation report, answers 204.

    Accepts ``application/csp-report`` (CSP2 ``report-uri``) and
    ``application/reports+json`` (the Reporting API behind ``report-to``).
    Bodies over 64 KiB get 413, malformed ones 400, and a client over
    ``SHIPSHAPE_CSP_REPORT_LIMIT`` 429. Browsers send no CSRF token, so the
    view is CSRF-exempt; it stores nothing.
    """

    def __init__(self, app: Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.config.setdefault("SHIPSHAPE_CSP_REPORT_PATH", "/csp-report")
        # Per client: a page with many violations sends a burst; more is abuse.
        app.config.setdefault("SHIPSHAPE_CSP_REPORT_LIMIT", "20/second;120/minute")
        if not app.config["SHIPSHAPE_CSP_REPORT_PATH"]:
            return  # reporting turned off
        blueprint = Blueprint("shipshape_csp", __name__)

        @csrf_exempt
        @json_errors
        @rate_limit(app.config["SHIPSHAPE_CSP_REPORT_LIMIT"])
        async def report() -> Response:
            return await self.report()

        blueprint.add_url_rule(
            app.config["SHIPSHAPE_CSP_REPORT_PATH"], "report", report, methods=["POST"]
        )
        app.register_blueprint(blueprint)

    async def report(self) -> Response:
        if request.mimetype not in REPORT_TYPES:
            raise BadRequest("Send application/csp-report or application/reports+json.")
        # Quart fixes the body limit when the request starts, so the global
        # MAX_CONTENT_LENGTH bounds the read and this view checks its own cap.
        if (request.content_length or 0) > REPORT_MAX_BYTES:
            raise RequestEntityTooLarge()
        raw = await request.get_data(as_text=False)
        if len(raw) > REPORT_MAX_BYTES:
            raise RequestEntityTooLarge()
        try:
            payload = json.loads(raw)
        except ValueError:
            raise BadRequest("The report is not valid JSON.") from None
        reports = self._reports(payload)
        if reports is None:
            raise BadRequest("The report has an unknown shape.")
        for body in reports:
            logger.warning(
                "csp violation",
                extra={
                    "csp": {
                        key: str(body.get(key, ""))[:512]
                        for key in (
                            "document-uri",
                            "documentURL",
                            "violated-directive",
                            "effectiveDirective",
                            "blocked-uri",
                            "blockedURL",
                            "source-file",
                            "sourceFile",
                            "line-number",
                            "lineNumber",
                            "disposition",
                        )
                        if key in body
                    }
                },
            )
        return Response(status=204)

    @staticmethod
    def _reports(payload: object) -> list[Mapping[str, object]] | None:
        if isinstance(payload, dict) and isinstance(payload.get("csp-report"), dict):
            return [payload["csp-report"]]
        if isinstance(payload, list) and payload:
            bodies = [
                item["body"]
                for item in payload
                if isinstance(item, dict) and isinstance(item.get("body"), dict)
            ]
            return bodies if len(bodies) == len(payload) else None
        return None
