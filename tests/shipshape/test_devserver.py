"""``make run``'s worker: a failed start-up is explained to every request, not a hang.

The reloader itself, with a real uvicorn and a file fixed while it runs, is in
``tests/e2e/test_devserver.py``.
"""

from __future__ import annotations

import asyncio
import json
from typing import cast

import pytest
from quart import Quart

from shipshape import ShipshapeError, devserver
from shipshape.devserver import FACTORY_VARIABLE, ExplainsFailedStart
from shipshape.typing import ASGIApp, Message, Receive, Scope, Send
from tests.shipshape.conftest import asgi_call


async def lifespan(app: ASGIApp) -> list[str]:
    """Start ``app`` and stop it, as a server does; the types of what it answered."""
    events: asyncio.Queue[Message] = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        events.put_nowait({"type": kind})
    sent: list[str] = []

    async def send(message: Message) -> None:
        sent.append(message["type"])

    await asyncio.wait_for(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, send), 5
    )
    return sent


def quart_app(*, fails: bool) -> Quart:
    app = Quart(__name__)

    @app.get("/")
    async def home() -> str:
        return "home"

    if fails:

        @app.before_serving
        async def startup() -> None:
            raise ShipshapeError("asset 'app.js' is not in the manifest: run `make assets`")

    return app


def asgi(app: Quart) -> ASGIApp:
    return cast(ASGIApp, app)


def broken_factory() -> Quart:
    raise SyntaxError("invalid syntax (pages.py, line 142)")


async def working_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await devserver._lifespan_of_nothing(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"home"})


def working_factory() -> ASGIApp:
    return working_app


async def test_a_start_up_that_fails_is_explained_to_every_request() -> None:
    app = ExplainsFailedStart(asgi(quart_app(fails=True)))
    # The server hears that start-up completed, so the worker stays up to say why.
    assert await lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    page = await asgi_call(app, [], path="/")
    assert page.status == 500
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert (
        "The app did not start: asset &#x27;app.js&#x27; is not in the manifest: run `make"
        " assets`. The traceback is in the terminal" in page.body.decode()
    )
    api = await asgi_call(app, [], path="/api/things")
    assert api.status == 500
    assert json.loads(api.body)["code"] == "startup_failed"
    assert "is not in the manifest" in json.loads(api.body)["message"]


async def test_an_app_that_starts_is_served_as_it_is() -> None:
    assert await lifespan(ExplainsFailedStart(asgi(quart_app(fails=False)))) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    app = ExplainsFailedStart(working_app)
    assert await lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    page = await asgi_call(app, [], path="/")
    assert (page.status, page.body) == (200, b"home")


async def test_an_app_that_cannot_be_made_is_explained(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(FACTORY_VARIABLE, f"{__name__}:broken_factory")
    app = devserver.load()
    assert "The app could not be made" in caplog.text and "SyntaxError" in caplog.text
    assert await lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    page = await asgi_call(app, [], path="/things/", headers=[("Accept", "application/json")])
    assert page.status == 500
    assert json.loads(page.body)["message"].startswith(
        "The app did not start: SyntaxError: invalid syntax (pages.py, line 142)."
    )
    head = await asgi_call(app, [], path="/", method="HEAD")
    assert (head.status, head.body) == (500, b"")
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    await app({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1011, "reason": "start-up failed"}]


async def test_the_factory_is_named_for_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FACTORY_VARIABLE, f"{__name__}:working_factory")
    app = devserver.load()
    assert isinstance(app, ExplainsFailedStart) and app.app is working_app
    page = await asgi_call(app, [], path="/")
    assert (page.status, page.body) == (200, b"home")
