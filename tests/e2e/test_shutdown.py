"""``shipshape.server.serve`` stops, even when a worker will not."""

from __future__ import annotations

import asyncio
import signal
import subprocess

from quart import Quart

from tests.e2e.conftest import run_server
from tests.servers import free_port


def create_stuck_app() -> Quart:
    """An app whose shutdown never ends, as a hung hook or a request that never does."""
    app = Quart(__name__)

    @app.get("/healthz")
    async def healthz() -> str:
        return "ok"

    @app.after_serving
    async def never() -> None:
        await asyncio.Event().wait()

    return app


SERVE = """
import sys
from shipshape.config import ServerLimits
from shipshape.server import serve
serve("tests.e2e.test_shutdown:create_stuck_app", host="127.0.0.1", port=int(sys.argv[1]),
      workers=1, limits=ServerLimits.from_mapping({}), json_lines=False, shutdown_timeout=1)
"""


def test_a_worker_that_will_not_stop_is_killed_after_the_shutdown_timeout() -> None:
    port = free_port()
    with run_server(["-c", SERVE, str(port)], {}, base=f"http://127.0.0.1:{port}") as server:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=10)  # the timeout is 1 s; without it, forever
        except subprocess.TimeoutExpired:
            raise AssertionError("the server did not stop:\n" + server.stop()) from None
        output = server.stop()
    assert "Killing worker-1 after it refused to gracefully stop" in output
