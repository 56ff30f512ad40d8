from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from quart import Quart, abort

from app import create_app
from shipshape.typing import ASGIApp, Message
from tests.conftest import Client, client_of
from tests.shipshape.conftest import asgi_call, asgi_of, http_scope

CODES = [400, 403, 404, 405, 413, 429, 500]
TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    413: "Request too large",
    429: "Too many requests",
    500: "Something went wrong",
}


@pytest.fixture
async def error_app() -> AsyncIterator[Quart]:
    """The example app plus routes that fail on purpose."""
    app = create_app({"APP_ENV": "testing", "PROPAGATE_EXCEPTIONS": False})

    @app.get("/_fail/<int:code>")
    @app.route("/api/_fail/<int:code>", methods=["GET", "POST"])
    async def fail(code: int) -> str:
        if code == 500:
            raise RuntimeError("secret database password in this message")
        abort(code)

    async with app.test_app():
        yield app


async def trigger(client: Client, code: int, api: bool, accept: str) -> tuple[int, str, str]:
    prefix = "/api" if api else ""
    headers = {"Accept": accept}
    if code == 404:
        response = await client.get(f"{prefix}/no/such/page", headers=headers)
    elif code == 405:
        response = await client.delete(f"{prefix}/_fail/1", headers=headers)
    elif code == 413:
        body = b"x" * (1024 * 1024 + 1)
        response = await client.post(
            "/cookies" if not api else "/api/_fail/1",
            data=body,
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = await client.get(f"{prefix}/_fail/{code}", headers=headers)
    return response.status_code, response.content_type or "", await response.get_data(as_text=True)


@pytest.mark.parametrize("code", CODES)
async def test_html_error_pages(error_app: Quart, code: int) -> None:
    status, content_type, body = await trigger(client_of(error_app), code, False, "text/html")
    assert status == code
    assert content_type.startswith("text/html")
    assert f"<title>{TITLES[code]} · Shipshape</title>" in body
    assert f"Error {code}" in body
    assert 'href="#main">Skip to main content</a>' in body  # the full layout
    assert "Traceback" not in body and "secret database password" not in body


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize(
    ("api", "accept"), [(True, "text/html"), (True, "*/*"), (False, "application/json")]
)
async def test_json_error_bodies(error_app: Quart, code: int, api: bool, accept: str) -> None:
    client = client_of(error_app)
    if code == 413 and not api:
        return  # covered by the HTML table; /cookies is the only body-taking page
    status, content_type, body = await trigger(client, code, api, accept)
    assert status == code
    assert content_type == "application/json"
    import json

    payload = json.loads(body)
    assert payload["error"] == code
    assert isinstance(payload["code"], str) and payload["code"]
    assert isinstance(payload["message"], str) and payload["message"]
    assert "secret database password" not in body


async def test_405_keeps_allow_header(error_app: Quart) -> None:
    response = await error_app.test_client().delete("/privacy")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}


async def test_post_to_page_without_post_is_405_not_csrf(client: Client) -> None:
    response = await client.post("/privacy", form={"a": "b"})
    assert response.status_code == 405


async def test_413_before_the_view_runs(client: Client) -> None:
    response = await client.post(
        "/cookies",
        data=b"functional=yes&analytics=yes&pad=" + b"x" * (1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert not any(h.startswith("cookies_policy") for h in response.headers.getlist("Set-Cookie"))


async def test_a_body_sent_too_slowly_gets_408_and_saves_nothing(
    app_config: dict[str, Any],
) -> None:
    """Quart's ``BODY_TIMEOUT`` (60 s by default; docs/security.md, "Limits and timeouts")
    through the whole stack as a server calls it, Shipshape's request handling included: a
    client that starts a form's body and stalls gets a 408, and the view never runs."""
    application = create_app({**app_config, "BODY_TIMEOUT": 0.2})
    sent: list[Message] = []
    chunks = [{"type": "http.request", "body": b"functional=yes&an", "more_body": True}]

    async def stalled() -> Message:
        if chunks:
            return chunks.pop()
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", b"100"),
    ]
    async with application.test_app():
        asgi = cast(ASGIApp, application.asgi_app)
        async with asyncio.timeout(10):
            await asgi(http_scope("POST", "/cookies", headers), stalled, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 408
    cookies = [v for k, v in start["headers"] if k == b"set-cookie"]
    assert not any(c.startswith(b"cookies_policy") for c in cookies)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"Traceback" not in body and body


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/", b"<!doctype"), ("/things/", b"<!doctype"), ("/api/things", b'{"code":"bad_request"')],
)
# Not UTF-8, which Quart raised on; and UTF-8 sent raw, which it read: RFC 3986 allows
# only ASCII in a query, and granian, uvicorn and hypercorn refuse both over HTTP/1.1.
@pytest.mark.parametrize("query", [b"q=caf\xe9", b"q=caf\xc3\xa9"])
async def test_a_query_string_of_raw_bytes_is_a_400_not_a_500(
    error_app: Quart, path: str, shape: bytes, query: bytes
) -> None:
    """Regression (helper): a query's raw bytes, which an ASGI server may hand on (the
    HTTP/1.1 servers tried refuse them first), reached Quart's URL matching, which
    decoded them as UTF-8 before any handler ran: a bare 500."""
    exchange = await asgi_call(
        asgi_of(error_app),
        [],
        path=path,
        query=query,
        headers=[("host", "localhost"), ("accept", "text/html")],
    )
    assert exchange.status == 400
    assert exchange.body.startswith(shape)
    assert b"percent-encoded" in exchange.body


async def test_a_websocket_handshake_with_raw_query_bytes_is_closed_unaccepted(
    error_app: Quart,
) -> None:
    scope = {
        "type": "websocket", "path": "/", "raw_path": b"/", "query_string": b"q=\xff",
        "headers": [(b"host", b"localhost")], "client": ("192.0.2.1", 1), "scheme": "ws",
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await asgi_of(error_app)(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]  # the server's 403
