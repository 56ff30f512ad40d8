"""Whole responses sent by ASGI middleware, and the wording of every error.

The error wording (:data:`TITLES`, :data:`MESSAGES`) and the choice between
JSON and HTML (:func:`wants_json`) live here, so that an error answered before
Quart runs (a refused host, a 406) and one answered by the app's error pages
(:mod:`shipshape.error_pages`) say the same thing in the same shape: JSON
``{"error": status, "code": slug, "message": text}`` for API paths and
clients that prefer JSON, an HTML page otherwise.
"""

from __future__ import annotations

import json
from functools import lru_cache
from html import escape

from shipshape.scope import header
from shipshape.typing import RawHeaders, Scope, Send

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
#: A JSON client has no home page to start again from.
API_MESSAGES = {404: "There is nothing at this address."}


def stock_message(status: int, json: bool) -> str | None:
    """The words for an error of ``status`` in the shape it is sent in (JSON has no home
    page to go back to), or ``None`` for a status with no words of its own."""
    return (API_MESSAGES.get(status) if json else None) or MESSAGES.get(status)


#: Security headers :func:`error` sets itself, whatever a caller's headers say.
_SET_HERE = frozenset({b"content-security-policy", b"x-content-type-options", b"x-frame-options"})

# A response made here loads nothing and must not be framed; JSON gets the same
# policy as HTML, as the API profile does (docs/security.md, Profiles).
_CSP = b"default-src 'none'; frame-ancestors 'none'"


def wants_json(path: str, accept: str | None, api_prefix: str) -> bool:
    """True for paths under ``api_prefix`` and clients that prefer JSON to HTML."""
    if under_api(path, api_prefix):
        return True
    return accept is not None and accept != "" and prefers_json(accept)


def under_api(path: str, api_prefix: str) -> bool:
    """Whether ``path`` is the API's, whose errors are JSON whatever ``Accept`` says (elsewhere
    an error's shape follows ``Accept``, and a cacheable one says so in ``Vary``)."""
    return path == api_prefix.rstrip("/") or path.startswith(api_prefix)


def accept_items(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` value, lower-cased, each with its q-value; an
    item whose q-value is not a number from 0 to 1 is left out.

    One pass over the text. Not werkzeug's ``parse_accept_header``: refusals
    and the SPA layer read ``Accept`` before any rate limit, and a value that
    no cache holds cost 30 µs there for a browser's ``Accept`` against 3.4
    here, and 4.1 ms against 0.26 for 13 KB of media types.
    """
    items = []
    for item in accept.lower().split(","):
        media, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
                break
        if 0 <= quality <= 1:  # NaN is neither
            items.append((media.strip(), quality))
    return items


def _quality(items: list[tuple[str, float]], media: str) -> float:
    """The q-value ``items`` give ``media``: that of the most specific range that
    matches it (``type/sub``, then ``type/*``, then ``*/*``), 0 when none does."""
    kind = media.partition("/")[0] + "/*"
    best, specificity = 0.0, -1
    for media_range, quality in items:
        rank = 2 if media_range == media else 1 if media_range == kind else 0
        if (rank or media_range == "*/*") and rank > specificity:
            best, specificity = quality, rank
    return best


@lru_cache(maxsize=256)
def prefers_json(accept: str) -> bool:
    """Whether ``accept`` ranks JSON above HTML (RFC 9110 §12.5.1); a tie is HTML's.

    Cached: clients send few distinct values.
    """
    items = accept_items(accept)
    return _quality(items, "application/json") > _quality(items, "text/html")


def plain_page(status: int, message: str) -> bytes:
    """A small HTML error page that loads nothing: cheap, and safe before or outside the app.
    It still has a viewport (a phone laid it out 980 px wide) and a main landmark."""
    title = escape(TITLES.get(status, "Error"))
    return (
        '<!doctype html>\n<html lang="en">\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<main>\n<h1>{title}</h1>\n<p>{escape(message)}</p>\n"
        "</main>\n</html>\n"
    ).encode()


def json_error(status: int, code: str, message: str) -> bytes:
    """The JSON error shape: ``{"error": status, "code": slug, "message": text}``, written as
    the app's ``jsonify`` writes it in production (compact, keys sorted), so that an error
    made before the app reads the same as one made by it."""
    body = {"error": status, "code": code, "message": message}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@lru_cache(maxsize=64)  # a few statuses x JSON or HTML, with room for the app's own words
def error_body(status: int, code: str, message: str, json: bool) -> bytes:
    """The bytes of an error in either shape, made once for each: refusals under a
    flood (429s, host errors) cost a dict lookup, not a page build."""
    return json_error(status, code, message) if json else plain_page(status, message)


async def respond(send: Send, status: int, headers: RawHeaders, body: bytes) -> None:
    """Send a whole response: the start message, then the body in one piece."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str | None = None,
    *,
    api_prefix: str = "/api/",
    headers: RawHeaders | None = None,
    hsts: bytes | None = None,
) -> None:
    """An error answered before the app runs, as JSON or HTML like the app's own;
    ``message`` defaults to the status's words for that shape (:func:`stock_message`).
    ``headers`` are the caller's profile and its own; ``hsts`` is sent over HTTPS only."""
    json = wants_json(scope.get("path", ""), header(scope, b"accept"), api_prefix)
    text = message if message is not None else stock_message(status, json)
    body = error_body(status, code, text or TITLES.get(status, "Error"), json)
    kind = b"application/json" if json else b"text/html; charset=utf-8"
    await respond(
        send,
        status,
        [
            (b"content-type", kind),
            (b"content-security-policy", _CSP),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),  # frame-ancestors 'none' in its older form
            (b"cache-control", b"no-store"),
            *(h for h in headers or () if h[0] not in _SET_HERE),
            *(
                [(b"strict-transport-security", hsts)]
                if hsts and scope.get("scheme") == "https"
                else []
            ),
        ],
        b"" if scope.get("method") == "HEAD" else body,  # a HEAD gets a GET's headers only
    )
