"""``shipshape.server``: the limits as granian's settings, and its log lines as JSON.

The limits' effect on a real server is tested in ``tests/e2e/test_limits.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from granian.constants import HTTPModes

from shipshape.config import ServerLimits
from shipshape.server import BindError, bind_address, granian_options, log_config
from tests.conftest import SECRET
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_a_host_name_is_resolved_for_granian_which_takes_addresses() -> None:
    """Regression: ``HOST=localhost make serve`` died in granian with a traceback."""
    port = free_port()
    assert bind_address("localhost", port) in ("127.0.0.1", "::1")
    assert bind_address("127.0.0.1", port) == "127.0.0.1"
    assert bind_address("[::1]", port) == "::1"


@pytest.mark.parametrize("host", ["999.1.1.1", "no-such-host.invalid"])
def test_a_host_that_does_not_resolve_is_one_line(host: str) -> None:
    with pytest.raises(BindError) as caught:
        bind_address(host, free_port())
    assert caught.value.message == f"HOST: cannot resolve {host!r} to an address to listen on"


@pytest.mark.parametrize("command", [["serve", "--workers", "1"], ["run"]])
def test_a_port_in_use_is_one_line(command: list[str]) -> None:
    """Regression: granian printed eighty lines of Python and Rust backtrace, and
    uvicorn (``run``) its own ``ERROR: [Errno 98]`` line with exit status 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BindError) as caught:
            bind_address("127.0.0.1", port)
        assert caught.value.message == f"cannot listen on 127.0.0.1:{port}: Address already in use"
        result = subprocess.run(
            [sys.executable, "-m", "app", *command],
            env={**os.environ, "APP_ENV": "production", "SECRET_KEY": SECRET,
                 "ALLOWED_HOSTS": "localhost", "PORT": str(port), "HOST": "127.0.0.1"},
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in result.stderr


def test_the_limits_become_granians_settings() -> None:
    options = granian_options(ServerLimits(8192, 2.5, 64))
    assert options["http"] == HTTPModes.http1  # HTTP/2's header lists are not bounded alike
    assert options["http1_settings"].max_buffer_size == 8192
    assert options["http1_settings"].header_read_timeout == 2500  # milliseconds
    assert options["http1_settings"].keep_alive is True
    assert options["backpressure"] == 64


def test_outside_production_granian_keeps_its_own_lines() -> None:
    assert log_config(json_lines=False) is None


# Run in a child process: dictConfig replaces the root logger's handlers, pytest's too.
EMIT = """
import json, logging, logging.config, sys
logging.config.dictConfig(json.loads(sys.argv[1]))
logging.getLogger("_granian").info("Started worker-1")
logging.getLogger("_granian.serve").warning("ASGI transport error")
logging.getLogger("asyncio").error("Task exception was never retrieved")
logging.getLogger("some.library").info("below WARNING: not written")
"""


def test_in_production_the_servers_lines_and_strays_are_json() -> None:
    config = json.dumps(log_config(json_lines=True))
    result = subprocess.run(
        [sys.executable, "-c", EMIT, config], capture_output=True, text=True, check=True
    )
    assert result.stdout == ""
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
        ("_granian", "INFO", "Started worker-1"),
        ("_granian.serve", "WARNING", "ASGI transport error"),
        ("asyncio", "ERROR", "Task exception was never retrieved"),
    ]
