"""Error pages: HTML for browsers, stable JSON for APIs, never a traceback.

Every ``HTTPException`` (and every unhandled exception, which Quart turns into
a 500) goes through one handler. It answers JSON ``{"error": status,
"code": slug, "message": text}`` under the API prefix or when the client
prefers ``application/json``, and an HTML page otherwise. A 500 always shows a
fixed message: the exception text may hold secrets or SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from quart import Quart, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

logger = logging.getLogger("shipshape.errors")

F = TypeVar("F", bound=Callable[..., Any])
#: The attribute ``@json_errors`` sets on a view.
JSON_ERRORS_ATTR = "_shipshape_json_errors"

# Headers an error keeps from its exception (``Allow`` on 405, ``Retry-After``
# and ``RateLimit`` on 429, ``WWW-Authenticate`` on 401); the body headers are ours.
_KEPT_HEADERS = frozenset(
    {"allow", "retry-after", "www-authenticate", "ratelimit", "ratelimit-policy"}
)

TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request too large",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Service unavailable",
}
MESSAGES = {
    400: "The request could not be understood.",
    403: "You are not allowed to do that.",
    404: "There is nothing at this address. Check it, or start again from the home page.",
    405: "This address does not accept that method.",
    413: "The request body is larger than this site accepts.",
    429: "Too many requests in a short time. Wait a moment, then try again.",
    500: "An error occurred on our side. It has been logged; please try again later.",
    503: "The service is temporarily unavailable. Please try again shortly.",
}


def json_errors(view: F) -> F:
    """Answer this view's errors in JSON, whatever the client accepts (webhooks, beacons)."""
    setattr(view, JSON_ERRORS_ATTR, True)
    return view


def wants_json(api_prefix: str) -> bool:
    """True for API paths, JSON-only views, and clients that prefer JSON to HTML."""
    if request.path == api_prefix.rstrip("/") or request.path.startswith(api_prefix):
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, JSON_ERRORS_ATTR, False):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_slug(error: HTTPException) -> str:
    slug = getattr(error, "slug", None)
    if isinstance(slug, str):
        return slug
    return (error.name or "error").lower().replace(" ", "_").replace("'", "")


class ErrorPages:
    """Registers the HTML/JSON error handler on an app.

    An exception class may set ``slug`` (the JSON ``code``), ``title`` and
    ``description`` to control what the page says.

    Config: ``SHIPSHAPE_ERROR_TEMPLATE`` (the page template, rendered with
    ``status``, ``title`` and ``message``) and ``SHIPSHAPE_API_PREFIX``.
    """

    def __init__(self, app: Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.config.setdefault("SHIPSHAPE_ERROR_TEMPLATE", "shipshape/error.html")
        app.config.setdefault("SHIPSHAPE_API_PREFIX", "/api/")
        app.register_error_handler(HTTPException, self.handle)

    async def handle(self, error: HTTPException) -> Response:
        status = error.code or 500
        if status >= 500 and getattr(error, "original_exception", None) is not None:
            logger.error(
                "unhandled exception on %s %s",
                request.method,
                request.path,
                exc_info=error.original_exception,  # type: ignore[attr-defined]
            )
        title = getattr(error, "title", None) or TITLES.get(status, error.name or "Error")
        own_description = hasattr(error, "slug") or error.description != type(error).description
        if status == 500:
            message = MESSAGES[500]
        elif error.description and own_description:
            message = error.description  # the app chose it, e.g. abort(404, "No such thing")
        else:
            message = MESSAGES.get(status) or error.description or title
        if wants_json(current_app.config["SHIPSHAPE_API_PREFIX"]):
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
        for name, value in error.get_headers():
            if name.lower() in _KEPT_HEADERS:
                response.headers[name] = value
        return response
