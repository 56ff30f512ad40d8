"""``python -m app serve``: production mode with several real worker processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if fetch(base + "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError(process.communicate()[0].decode())
    try:
        yield base, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.parametrize("path", ["/", "/cookies", "/privacy", "/accessibility"])
def test_pages_are_served_in_production(server: tuple[str, object], path: str) -> None:
    base, _ = server
    status, headers, body = fetch(base + path)
    assert status == 200
    assert "server" not in {k.lower() for k in headers}
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    html = body.decode()
    css = re.search(r'href="(/static/bootstrap-[0-9a-f]{16}\.min\.css)"', html)
    assert css is not None
    assert fetch(base + css[1])[0] == 200


def test_readyz_and_json_errors(server: tuple[str, object]) -> None:
    base, _ = server
    status, _, body = fetch(base + "/readyz")
    assert status == 200 and json.loads(body)["checks"]["assets"]["ok"] is True
    status, headers, body = fetch(base + "/api/missing")
    assert status == 404 and json.loads(body)["error"] == 404


def test_several_workers_and_json_logs(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, process = server
    fetch(base + "/privacy")
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=15)[0].decode()
    assert len(set(re.findall(r"Started server process \[(\d+)\]", output))) == 2
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    privacy = [line for line in lines if line.get("path") == "/privacy"]
    assert privacy and privacy[0]["status"] == 200 and privacy[0]["client"] == "127.0.0.1"
    assert {"request_id", "method", "duration_ms", "time", "level"} <= privacy[0].keys()
