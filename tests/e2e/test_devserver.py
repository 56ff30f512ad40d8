"""``make run``'s reloader with a real uvicorn: an app that fails to start, then is fixed.

Before :mod:`shipshape.devserver`, a worker whose app failed to start exited and
the reloader kept the socket with no worker: every request hung until the next
change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import ROOT, fetch
from tests.servers import die_with_parent, free_port

WORKING = """
from quart import Quart


def make():
    app = Quart(__name__)

    @app.get("/")
    async def home():
        return "working"

    return app
"""

FAILS_AT_START = """
from quart import Quart


def make():
    app = Quart(__name__)

    @app.before_serving
    async def startup():
        raise RuntimeError("the manifest is missing")

    return app
"""

NOT_PYTHON = "def make(:\n"


def eventually(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.2)


def test_the_reloader_explains_a_failed_start_and_recovers(tmp_path: Path) -> None:
    module = tmp_path / "devapp.py"
    module.write_text(NOT_PYTHON)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    script = (
        "from shipshape import devserver; devserver.run('devapp:make', host='127.0.0.1',"
        f" port={port}, reload_dirs=[{str(tmp_path)!r}], log_level='info')"
    )
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT / 'src'}"},
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads started yet
        )
    try:

        def answers(status: int, text: str) -> bool:
            try:
                got, _, body = fetch(base, headers={"Accept": "application/json"})
            except OSError:  # not listening yet, or restarting
                return False
            return got == status and text in body.decode()

        # A module that is not Python: the worker stays up and says so.
        eventually(lambda: answers(500, "SyntaxError"), "the syntax error explained")
        status, headers, body = fetch(base, headers={"Accept": "application/json"})
        assert json.loads(body)["code"] == "startup_failed"
        assert headers["cache-control"] == "no-store"

        # A start-up hook that fails: the same, naming its error.
        module.write_text(FAILS_AT_START)
        eventually(lambda: answers(500, "the manifest is missing"), "the failed start explained")

        # Fixed: the reloader starts the app again, and it serves.
        module.write_text(WORKING)
        eventually(lambda: answers(200, "working"), "the fixed app served")
    finally:
        server.terminate()
        server.wait(timeout=15)
    printed = log.read_text()
    assert "Traceback" in printed and "RuntimeError: the manifest is missing" in printed
