"""Error pages: HTML for browsers, stable JSON for APIs, never a traceback.

Every ``HTTPException`` (and every unhandled exception, which Quart turns into
a 500) goes through one handler. It answers JSON ``{"error": status,
"code": slug, "message": text}`` under the API prefix or when the client
prefers ``application/json``, and an HTML page otherwise. A 500 always shows a
fixed message: the exception text may hold secrets or SQL.
"""

from __future__ import annotations

import logging

from quart import (
    Quart,
    Response,
    current_app,
    has_websocket_context,
    jsonify,
    request,
    websocket,
)
from werkzeug.exceptions import HTTPException

from shipshape.logging import current_request_id
from shipshape.options import Option, apply, is_prefix, is_text
from shipshape.pipeline import Pipeline
from shipshape.policy import PolicyTable, set_columns
from shipshape.request import request_header
from shipshape.responses import (
    MESSAGES,
    TITLES,
    error_body,
    stock_message,
    under_api,
    wants_json,
)
from shipshape.templating import render_template
from shipshape.typing import ViewT

logger = logging.getLogger("shipshape.errors")

# Headers an error keeps from its exception (``Allow`` on 405, ``Retry-After``
# and ``RateLimit`` on 429, ``WWW-Authenticate`` on 401); the body headers are ours.
_KEPT_HEADERS = frozenset(
    {
        "allow",
        "retry-after",
        "www-authenticate",
        "ratelimit",
        "ratelimit-policy",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    }
)


OPTIONS: tuple[Option, ...] = (
    Option(
        "SHIPSHAPE_ERROR_TEMPLATE",
        "shipshape/error.html",
        "a template name",
        "the error page template; it gets `status`, `title` and `message`",
        is_text,
    ),
    Option(
        "SHIPSHAPE_API_PREFIX",
        "/api/",
        "a path ending in `/`",
        "paths whose errors are always JSON",
        is_prefix,
    ),
)


def json_errors(view: ViewT) -> ViewT:
    """Answer this view's errors in JSON, whatever the client accepts (webhooks, beacons)."""
    return set_columns(view, json_errors=True)


def error_slug(error: HTTPException) -> str:
    slug = getattr(error, "slug", None)
    if isinstance(slug, str):
        return slug
    return (error.name or "error").lower().replace(" ", "_").replace("'", "")


def has_own_description(error: HTTPException) -> bool:
    """True when the app wrote this error's text: ``abort(404, "…")`` or a class of its own.

    Werkzeug's stock descriptions ("This user has exceeded an allotted request
    count…") are replaced by the app's :data:`~shipshape.responses.MESSAGES`.
    """
    owner = next(klass for klass in type(error).__mro__ if "description" in vars(klass))
    stock = owner.__module__.startswith("werkzeug.")
    return not stock or error.description != vars(owner)["description"]


class _QuartsRequestException(logging.Filter):
    """Drops Quart's "Exception on request …" record: :class:`ErrorPages` logs that 500."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        return not (
            record.exc_info
            and isinstance(message, str)
            and message.startswith("Exception on request ")
        )


class ErrorPages:
    """Registers the HTML/JSON error handler on an app.

    An exception class may set ``slug`` (the JSON ``code``), ``title`` and
    ``description`` to control what the page says, and ``plain_page = True``
    for a small page made once instead of the template (refusals that must
    stay cheap under a flood, such as 429).

    Config: ``SHIPSHAPE_ERROR_TEMPLATE`` (the page template, rendered with
    ``status``, ``title`` and ``message``) and ``SHIPSHAPE_API_PREFIX``.
    """

    def __init__(self, app: Quart | None = None) -> None:
        self.policies = PolicyTable()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        apply(app, OPTIONS)
        self.policies = Pipeline.of(app).policies
        # A 500's traceback is logged once, by handle() below (``shipshape.errors``, with
        # the request's id, through the app's log format); Quart's own record of it, on
        # the app's logger, would repeat the traceback, and for an app whose logger
        # configure_logging does not know, as raw text in a log of JSON lines.
        app.logger.addFilter(_QuartsRequestException())
        # None for a refused WebSocket, which Quart's types do not foresee.
        app.register_error_handler(HTTPException, self.handle)  # type: ignore[arg-type]

    async def handle(self, error: HTTPException) -> Response | None:
        status = error.code or 500
        if has_websocket_context():
            # A handshake refused (no such route, an abort) is closed unaccepted, which the
            # server answers with 403; an accepted socket is closed with the error's code.
            # A response would go out as ASGI's websocket.http.response, which Quart sends
            # in several body messages and granian 2.8 refuses after the first.
            try:
                await websocket.close(1011 if status >= 500 else 1008)
            except RuntimeError as exc:  # the route closed it itself before it raised
                if "multiple times" not in str(exc):
                    raise
            return None
        if status >= 500 and getattr(error, "original_exception", None) is not None:
            logger.error(
                "unhandled exception on %s %s",
                request.method,
                request.path,
                exc_info=error.original_exception,  # type: ignore[attr-defined]
                extra={"request_id": current_request_id()},
            )
        title = getattr(error, "title", None) or TITLES.get(status, error.name or "Error")
        api_prefix = current_app.config["SHIPSHAPE_API_PREFIX"]
        json_always = self.policies.current().json_errors or under_api(request.path, api_prefix)
        json = json_always or wants_json(request.path, request_header(b"accept"), api_prefix)
        if status == 500:
            message = MESSAGES[500]
        elif error.description and has_own_description(error):
            message = error.description  # the app chose it, e.g. abort(404, "No such thing")
        else:
            message = stock_message(status, json) or error.description or title
        if getattr(error, "plain_page", False):
            # Refusals that must stay cheap under a flood (429, a store outage's
            # 503): bytes made once, no template, no session, no CSRF token.
            plain = error_body(status, error_slug(error), message, json)
            response = Response(plain, mimetype="application/json" if json else "text/html")
        elif json:
            response = jsonify({"error": status, "code": error_slug(error), "message": message})
        else:
            body = await render_template(
                current_app.config["SHIPSHAPE_ERROR_TEMPLATE"],
                status=status,
                title=title,
                message=message,
            )
            response = Response(body, mimetype="text/html")
        response.status_code = status
        if not json_always:  # a 404 is cacheable: a cache must not serve one shape to the other
            response.vary.add("Accept")
        for name, value in error.get_headers():
            if name.lower() in _KEPT_HEADERS:
                response.headers[name] = value
        return response
