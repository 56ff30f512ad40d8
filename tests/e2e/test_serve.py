"""``python -m app serve``: production mode with several real worker processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import UNLIMITED
from tests.e2e.conftest import Server, fetch, run_server, serve_production
from tests.servers import free_port


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve_production(2, ALLOWED_HOSTS="127.0.0.1,app.example") as running:
        yield running


@pytest.mark.parametrize("path", ["/", "/cookies", "/privacy", "/accessibility"])
def test_pages_are_served_in_production(server: Server, path: str) -> None:
    status, headers, body = fetch(server.base + path)
    assert status == 200
    # granian always names itself (it has no switch, granian#594), but never its version.
    assert {k.lower(): v for k, v in headers.items()}["server"] == "granian"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert "'nonce-" in headers["content-security-policy"]
    html = body.decode()
    css = re.search(r'href="(/static/bootstrap-[0-9a-f]{16}\.min\.css)"', html)
    assert css is not None
    assert fetch(server.base + css[1])[0] == 200


def test_public_host_is_redirected_to_https(server: Server) -> None:
    status, headers, _ = fetch(server.base + "/privacy", headers={"Host": "app.example"})
    assert status == 301 and headers["location"] == "https://app.example/privacy"
    status, _, _ = fetch(server.base + "/", headers={"Host": "evil.example"})
    assert status == 400


def test_readyz_and_json_errors(server: Server) -> None:
    status, _, body = fetch(server.base + "/readyz")
    assert status == 200 and json.loads(body)["checks"]["assets"]["ok"] is True
    status, _, body = fetch(server.base + "/api/missing")
    assert status == 404 and json.loads(body)["error"] == 404


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e%5c%2e%2e%5cpyproject.toml",
        "/static/..\\..\\pyproject.toml",
        "/static/manifest.json%00.css",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/../__init__.py",
    ],
)
def test_no_path_escapes_the_static_root_over_a_real_socket(server: Server, target: str) -> None:
    # A raw request line, so that neither the client nor the test changes the path.
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status = int(response.split(b" ", 2)[1])
    assert status in (400, 404), (target, response[:200])
    assert b"root:" not in response and b"[project]" not in response


def test_a_worker_that_dies_is_started_again(server: Server) -> None:
    spawned = re.findall(r"Spawning worker-1 with PID: (\d+)", server.printed())
    os.kill(int(spawned[-1]), signal.SIGKILL)
    deadline = time.monotonic() + 15
    while "Respawning worker-1" not in server.printed():
        assert time.monotonic() < deadline, server.printed()
        time.sleep(0.1)
    while len(re.findall(r"Started worker-1", server.printed())) < 2:
        assert time.monotonic() < deadline, server.printed()
        time.sleep(0.1)
    assert all(fetch(server.base + "/healthz")[0] == 200 for _ in range(4))


def test_several_workers_and_json_logs(server: Server) -> None:
    """Runs last in this module: it stops the shared server to read its output."""
    fetch(server.base + "/privacy")
    output = server.stop()
    # Every line is JSON: the start-up findings, the server's own lines, the requests.
    lines = [json.loads(line) for line in output.splitlines()]
    findings = [line for line in lines if line["logger"] == "shipshape.check"]
    assert [(f["level"], f["message"]) for f in findings] == [
        ("WARNING", "shipshape.W006 rate limits are kept in memory with 2 workers, so each "
         "limit is multiplied by 2")
    ]  # fmt: skip
    started = {line["message"] for line in lines if line["logger"].startswith("_granian")}
    assert {"Started worker-1", "Started worker-2", "Shutting down granian"} <= started
    privacy = [line for line in lines if line.get("path") == "/privacy"]
    assert privacy and privacy[0]["status"] == 200 and privacy[0]["client"] == "127.0.0.1"
    assert {"request_id", "method", "duration_ms", "time", "level"} <= privacy[0].keys()


def test_run_serves_development_with_reload() -> None:
    """``make run`` stays uvicorn with reload, readable lines and no server header."""
    port = free_port()
    env = {"APP_ENV": "development", "PORT": str(port), "RATELIMIT_DEFAULT": UNLIMITED}
    with run_server(["-m", "app", "run"], env, base=f"http://127.0.0.1:{port}") as server:
        status, headers, _ = fetch(server.base + "/privacy")
        output = server.stop()
    assert status == 200 and "server" not in {k.lower() for k in headers}
    assert "Will watch for changes in these directories" in output
    assert "INFO shipshape.request request GET /privacy 200 " in output


def test_serve_logs_an_audit_error_and_serves_anyway() -> None:
    """As README says (newcomer): a guessable key is check's E004, an error, which serve
    logs at ERROR and does not stop on (a heuristic that would refuse some good keys);
    `make check` is the gate."""
    with serve_production(1, SECRET_KEY="changeme-" * 4) as running:
        assert fetch(running.base + "/privacy")[0] == 200
        output = running.stop()
    findings = [
        (line["level"], line["message"])
        for line in map(json.loads, output.splitlines())
        if line["logger"] == "shipshape.check"
    ]
    assert findings == [
        ("ERROR", "shipshape.E004 SECRET_KEY looks weak (under 128 bits of entropy)")
    ]
