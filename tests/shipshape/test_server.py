"""``shipshape.server``: the limits as granian's settings, and its log lines as JSON.

The limits' effect on a real server is tested in ``tests/e2e/test_limits.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

from granian.constants import HTTPModes

from shipshape.config import ServerLimits
from shipshape.server import granian_options, log_config


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
