"""``POST /csp-report``: where browsers send Content Security Policy violations.

Each report becomes one warning log line with its details (directive,
blocked URI, document, source position), readable in development and a
JSON field in production. The endpoint is a view like any other: it is
CSRF-exempt (browsers send no token), rate-limited per client, answers errors
in JSON, and carries the API header profile, since it returns no page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from quart import Blueprint, Quart, Response, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from shipshape.csrf import csrf_exempt
from shipshape.error_pages import json_errors
from shipshape.headers import REPORT_PATH, header_profile
from shipshape.options import Option, apply, is_rate_limits
from shipshape.ratelimit.limiter import rate_limit
from shipshape.request import strict_loads

REPORT_MAX_BYTES = 64 * 1024  # a real report is a few hundred bytes; 64 KiB caps abuse
REPORT_TYPES = ("application/csp-report", "application/reports+json", "application/json")
#: The report fields logged, in both the CSP2 (report-uri) and Reporting API spellings.
REPORT_FIELDS = (
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
MAX_REPORTS = 100  # per request: a browser batches a few; more is a way to flood the log
FIELD_MAX_CHARS = 512  # a logged field is cut here: reports are attacker-controlled

logger = logging.getLogger("shipshape.csp")

OPTIONS: tuple[Option, ...] = (
    REPORT_PATH,
    # Per client: a page with many violations sends a burst; more is abuse.
    Option(
        "SHIPSHAPE_CSP_REPORT_LIMIT",
        "20/second;120/minute",
        "limits such as `20/second;120/minute`",
        "reports accepted per client",
        is_rate_limits,
    ),
)


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
        apply(app, OPTIONS)
        if not app.config["SHIPSHAPE_CSP_REPORT_PATH"]:
            return  # reporting turned off
        blueprint = Blueprint("shipshape_csp", __name__)

        @csrf_exempt
        @json_errors
        @header_profile("api")
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
            payload = strict_loads(raw)  # no NaN, no key twice: what is logged is JSON
        except (ValueError, RecursionError):  # nested thousands deep: refused, never a 500
            raise BadRequest("The report is not valid JSON.") from None
        reports = self._reports(payload)
        if reports is None:
            raise BadRequest("The report has an unknown shape.")
        if len(reports) > MAX_REPORTS:  # a log line each: a flood in one body is refused
            raise BadRequest(f"At most {MAX_REPORTS} reports a request.")
        for body in reports:
            logger.warning(
                "csp violation",
                extra={
                    "csp": {
                        key: str(body[key])[:FIELD_MAX_CHARS]
                        for key in REPORT_FIELDS
                        if key in body
                    }
                },
            )
        return no_content()

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


def no_content() -> Response:
    """204 with no ``Content-Type``: there is no body to describe (RFC 9110 §15.3.5)."""
    response = Response(b"", status=204)
    del response.headers["Content-Type"]
    return response
