"""``make run``'s server: uvicorn with reload, and a worker that says why the app did not start.

Under uvicorn's reloader, a worker whose app fails to start (a template that
names an unknown asset, a syntax error in a view, an import that fails) exits,
and the reloader keeps the listening socket with no worker behind it until the
next change: every request hangs, and the browser spins with nothing to say.
Here the worker stays up instead and answers every request with a 500 that
names the error (JSON or HTML, as the app's own errors are; the traceback is in
the terminal), until a saved file restarts it. Development only: production's
server (:mod:`shipshape.server`) lets a worker that cannot start stop the start.

uvicorn's reloader starts each worker by importing an app by name, so the
app's factory travels to the worker by name too, in :data:`FACTORY_VARIABLE`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn
from uvicorn.importer import import_from_string

from shipshape import responses
from shipshape.typing import ASGIApp, Message, Receive, Scope, Send

#: The environment variable that names the app's factory (``module:function``) for the workers.
FACTORY_VARIABLE = "SHIPSHAPE_DEV_FACTORY"

logger = logging.getLogger("uvicorn.error")  # the worker's own log, where the reloader's lines go


def run(factory: str, **options: Any) -> None:
    """Serve ``factory``'s app with uvicorn's reloader; ``options`` are ``uvicorn.run``'s."""
    os.environ[FACTORY_VARIABLE] = factory
    uvicorn.run(f"{__name__}:load", factory=True, reload=True, **options)


def load() -> ASGIApp:
    """The worker's app: the factory's, or, when making it fails, one that says why."""
    try:
        app = import_from_string(os.environ[FACTORY_VARIABLE])()
    except Exception as exc:
        logger.exception("The app could not be made")
        return ExplainsFailedStart(None, failure=_describe(exc))
    return ExplainsFailedStart(app)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ExplainsFailedStart:
    """``app``, until its start-up fails; from then on, a 500 naming the failure for every request.

    The server is told that start-up completed, so that the worker stays up to say
    so; the app's own start-up has logged the traceback. ``app`` is ``None`` when it
    could not even be made, and ``failure`` says why.
    """

    def __init__(self, app: ASGIApp | None, *, failure: str | None = None) -> None:
        self.app = app
        self.failure = failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if self.app is None:
                await _lifespan_of_nothing(receive, send)
            else:
                await self.app(scope, receive, self._kept_up(send))
        elif self.failure is not None or self.app is None:
            await self._explain(scope, send)
        else:
            await self.app(scope, receive, send)

    def _kept_up(self, send: Send) -> Send:
        async def send_through(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.failure = str(message.get("message") or "start-up failed")
                message = {"type": "lifespan.startup.complete"}
            await send(message)

        return send_through

    async def _explain(self, scope: Scope, send: Send) -> None:
        if scope["type"] != "http":  # a websocket: closed unaccepted (the server sends 403)
            await send({"type": "websocket.close", "code": 1011, "reason": "start-up failed"})
            return
        failure = (self.failure or "start-up failed").rstrip(".")
        message = (
            f"The app did not start: {failure}. The traceback is in the"
            " terminal; save a file to start the app again."
        )
        await responses.error(scope, send, 500, "startup_failed", message)


async def _lifespan_of_nothing(receive: Receive, send: Send) -> None:
    """Start-up and shutdown of an app that was never made: both complete, nothing to run."""
    while True:
        kind = (await receive())["type"]
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
