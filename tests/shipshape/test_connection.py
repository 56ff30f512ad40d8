"""shipshape.connection: a one-chunk body in one message, the send bounded without a task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from quart import Quart, Response, request

from shipshape import Shipshape
from shipshape.typing import Message
from tests.shipshape.conftest import UNLIMITED, http_scope

Sender = Callable[[Message], Awaitable[None]]


def make(**config: Any) -> Quart:
    app = Quart(__name__, static_folder=None)
    app.config.update(
        APP_ENV="testing", SHIPSHAPE_ASSETS=False, SHIPSHAPE_CSRF=False,
        SHIPSHAPE_COMPRESSION=False, RATELIMIT_DEFAULT=UNLIMITED, **config,
    )  # fmt: skip
    Shipshape(app)

    @app.get("/page")
    async def page() -> Response:
        return Response(b"0123456789", mimetype="text/plain")

    @app.get("/ranged")
    async def ranged() -> Response:
        response = Response(b"0123456789", mimetype="text/plain")
        await response.make_conditional(request, accept_ranges="bytes", complete_length=10)
        return response

    @app.get("/stream")
    async def stream() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first,"
            yield b"second"

        return Response(chunks(), mimetype="text/plain")

    @app.get("/own-timeout")
    async def own_timeout() -> Response:
        response = Response(b"slow reader", mimetype="text/plain")
        response.timeout = 0.05
        return response

    return app


async def call(
    app: Quart,
    path: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    send: Sender | None = None,
) -> list[Message]:
    """The messages the app sent; the client stays connected, as a browser does."""
    messages: list[Message] = []
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # until the app is done and cancels this
        raise AssertionError("unreachable")

    async def record(message: Message) -> None:
        messages.append(message)
        if send is not None:
            await send(message)

    await app.startup()
    try:
        scope = http_scope("GET", path, headers or [])
        await asyncio.wait_for(app(scope, receive, record), 5)  # type: ignore[arg-type]
    finally:
        await app.shutdown()
    return messages


async def test_a_one_chunk_body_goes_out_with_its_end_in_one_message() -> None:
    messages = await call(make(), "/page")
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    assert messages[0]["status"] == 200
    assert (b"content-type", b"text/plain; charset=utf-8") in messages[0]["headers"]
    assert messages[1]["body"] == b"0123456789"
    assert not messages[1].get("more_body")


async def test_a_range_of_a_one_chunk_body_sends_only_that_range() -> None:
    messages = await call(make(), "/ranged", [(b"range", b"bytes=2-4")])
    assert messages[0]["status"] == 206
    assert (b"content-range", b"bytes 2-4/10") in messages[0]["headers"]
    assert [m["body"] for m in messages[1:]] == [b"234"]


async def test_a_streamed_body_is_still_sent_chunk_by_chunk() -> None:
    messages = await call(make(), "/stream")
    bodies = [(m["body"], m.get("more_body", False)) for m in messages[1:]]
    assert bodies == [(b"first,", True), (b"second", True), (b"", False)]


@pytest.mark.parametrize(
    ("path", "config"),
    [("/page", {"RESPONSE_TIMEOUT": 0.05}), ("/own-timeout", {"RESPONSE_TIMEOUT": None})],
)
async def test_a_client_that_never_reads_the_body_is_given_up_on_after_the_timeout(
    path: str, config: dict[str, Any]
) -> None:
    async def stuck(message: Message) -> None:
        if message["type"] == "http.response.body":
            await asyncio.Event().wait()  # a client that never reads

    started = asyncio.get_running_loop().time()
    messages = await call(make(**config), path, send=stuck)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    assert asyncio.get_running_loop().time() - started < 2  # the timeout, not the test's 5 s


async def test_a_timeout_of_zero_sends_nothing_as_quarts_own_code() -> None:
    assert await call(make(RESPONSE_TIMEOUT=0), "/page") == []
