"""``shipshape.server.serve`` stops, even when a worker will not."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from quart import Quart

from shipshape.server import SHUTDOWN_TIMEOUT
from tests.conftest import SECRET, UNLIMITED
from tests.e2e.conftest import ROOT, fetch, run_server
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


def test_make_serve_stops_when_make_is_sent_sigterm(tmp_path: Path) -> None:
    """Regression (newcomer run): ``kill -TERM`` to make (``docker stop`` with make as
    PID 1, a supervisor) ended make and left granian and its workers running as orphans
    on the port. The server is now make's own child and stops when make does."""
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        "RATELIMIT_DEFAULT": UNLIMITED,
    }
    output = (tmp_path / "make.log").open("wb")
    make = subprocess.Popen(
        ["make", "--no-print-directory", "serve"], cwd=ROOT, env=env, stdout=output,
        stderr=subprocess.STDOUT, start_new_session=True,  # its own group: only make is signalled
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 120  # the set-up steps are up to date, the migrations run
        while not _answers(base):
            assert make.poll() is None, (tmp_path / "make.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "make.log").read_text()
            time.sleep(0.2)
        make.send_signal(signal.SIGTERM)  # to make alone, as `kill <pid>` does
        make.wait(timeout=10)
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 10
        while _answers(base):
            assert time.monotonic() < deadline, "the server outlived make"
            time.sleep(0.2)
    finally:
        output.close()
        with contextlib.suppress(ProcessLookupError):  # none left: all of it stopped
            os.killpg(make.pid, signal.SIGKILL)  # whatever is left, if the test failed
    assert "Granian shutdown completed" in (tmp_path / "make.log").read_text()


def _answers(url: str) -> bool:
    try:
        return fetch(url)[0] == 200
    except OSError:
        return False
