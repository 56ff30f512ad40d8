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


class Slow:
    """A view that waits until it is cancelled, recording what happened to it."""

    def __init__(self, app: Quart) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

        @app.get("/slow")
        async def slow() -> Response:
            self.started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            raise AssertionError("unreachable")  # pragma: no cover


class Client:
    """``receive``: the request, then whatever ``after`` does; records its own cancellation."""

    def __init__(self, after: Callable[[], Awaitable[Message]]) -> None:
        self.sent = False
        self.after = after
        self.cancelled = asyncio.Event()

    async def receive(self) -> Message:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        try:
            return await self.after()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def serve(app: Quart, client: Client, path: str, messages: list[Message]) -> None:
    async def record(message: Message) -> None:
        messages.append(message)

    await app(http_scope("GET", path, []), client.receive, record)  # type: ignore[arg-type]


async def test_a_client_going_away_cancels_the_view_and_the_request_ends_quietly() -> None:
    app = make()
    view = Slow(app)

    async def disconnect() -> Message:
        await view.started.wait()
        return {"type": "http.disconnect"}

    messages: list[Message] = []
    await app.startup()
    try:
        await asyncio.wait_for(serve(app, Client(disconnect), "/slow", messages), 5)
    finally:
        await app.shutdown()
    assert view.cancelled and messages == []


async def test_a_cancellation_from_outside_cancels_the_view_and_the_reader() -> None:
    app = make()
    view = Slow(app)
    client = Client(lambda: asyncio.Event().wait())  # type: ignore[arg-type,return-value]
    await app.startup()
    try:
        request = asyncio.ensure_future(serve(app, client, "/slow", []))
        await asyncio.wait_for(view.started.wait(), 5)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        await asyncio.wait_for(client.cancelled.wait(), 5)
    finally:
        await app.shutdown()
    assert view.cancelled


async def test_an_error_reading_the_request_is_raised_and_stops_the_view() -> None:
    app = make()
    view = Slow(app)

    async def broken() -> Message:
        await view.started.wait()
        raise RuntimeError("the server's receive failed")

    await app.startup()
    try:
        with pytest.raises(RuntimeError, match="receive failed"):
            await asyncio.wait_for(serve(app, Client(broken), "/slow", []), 5)
    finally:
        await app.shutdown()
    assert view.cancelled


async def test_the_reader_is_cancelled_once_the_response_is_sent() -> None:
    app = make()
    client = Client(lambda: asyncio.Event().wait())  # type: ignore[arg-type,return-value]
    messages: list[Message] = []
    await app.startup()
    try:
        await asyncio.wait_for(serve(app, client, "/page", messages), 5)
        await asyncio.wait_for(client.cancelled.wait(), 1)  # not left waiting on receive
    finally:
        await app.shutdown()
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
