"""The stacks under test and how to start them: one pinned server process each.

Shared by ``bench/run.py`` (every stack), ``bench/levels.py`` (the page
capture) and ``bench/ratelimit/`` (the rate-limit stacks, which find the run's
redis-server through ``BENCH_REDIS_URL``). Each run keeps its scratch files in
its own directory, made by the harness: the captured home page, which reaches
the peers through ``BENCH_BODY_FILE`` in their environment, and each server's
output, which is shown when that server fails.

Every server gets ``RATELIMIT_DEFAULT`` set far above any load here, so that
Shipshape's default limit (2/second;60/minute per client) counts every request
(the check is part of the cost) but refuses none.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.peers.common import ADMIT_ALL, BODY_FILE_KEY, STATIC_DIR_KEY

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "src" / "app" / "static" / "dist"
SECRET = "bench-only-" + "b" * 40
SERVER_CPU, LOAD_CPU = "1", "0"
START_TIMEOUT = 20  # seconds; a cold start imports the whole app
OUTPUT_LINES = 40  # of a failed server's output shown; tracebacks end there
#: Where each tool the harness runs comes from (Debian and Ubuntu package names).
INSTALL = {
    "taskset": "pins each process to its CPU: apt-get install util-linux",
    "wrk": "drives the load: apt-get install wrk (make bench installs it as root)",
}

UVICORN = ["-m", "uvicorn", "--workers", "1", "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--no-server-header", "--log-level", "warning"]  # fmt: skip
GUNICORN = ["-m", "gunicorn", "--workers", "1", "--log-level", "warning"]
# uvicorn with httptools, as `python -m app serve` ran until it moved to granian for its
# limits (docs/security.md); the peers run on uvicorn too, so the ratios compare the apps.
# Measuring the servers themselves is issue 15's. Shipshape resolves proxies itself.
SHIPSHAPE = [*UVICORN, "--no-proxy-headers"]
# Peers are app factories, so that each reads the run's files when it starts, not on import.
STACKS: dict[str, list[str]] = {
    # Each Shipshape stack sits next to the peer it is compared with (run.COMPARISONS),
    # so the two are measured back to back in every round.
    "shipshape": [*SHIPSHAPE, "--factory", "app:create_app"],
    "flask-template": [*GUNICORN, "bench.peers.flask_template:create_app()"],
    "shipshape-layer": [*SHIPSHAPE, "--factory", "bench.peers.shipshape_layer:create_app"],
    "flask": [*GUNICORN, "bench.peers.flask_stack:create_app()"],
    "shipshape-compression": [
        *SHIPSHAPE,
        "--factory",
        "bench.peers.shipshape_compression:create_app",
    ],  # fmt: skip
    "flask-compress": [*GUNICORN, "bench.peers.flask_compress:create_app()"],
    "shipshape-br4": [*SHIPSHAPE, "--factory", "bench.peers.shipshape_br4:create_app"],
    "quart": [*UVICORN, "--factory", "bench.peers.quart_stack:create_app"],
    "starlette": [*UVICORN, "--factory", "bench.peers.starlette_stack:create_app"],
    "raw-asgi": [*UVICORN, "--factory", "bench.peers.raw_asgi:create_app"],
}
RATELIMIT = "bench.peers.shipshape_ratelimit"
#: The rate-limit scenarios' stacks (``bench/ratelimit.py``); each reads ``BENCH_REDIS_URL``.
RATELIMIT_STACKS: dict[str, list[str]] = {
    # Each limiter, and the same app without it (its baseline).
    "quart-rate-limiter": [*UVICORN, "--factory", "bench.peers.quart_ratelimit:create_app"],
    "quart-unlimited": [*UVICORN, "--factory", "bench.peers.quart_ratelimit:create_unlimited_app"],
    "shipshape-ratelimit": [*SHIPSHAPE, "--factory", f"{RATELIMIT}:create_app"],
    "shipshape-exempt": [*SHIPSHAPE, "--factory", f"{RATELIMIT}:create_exempt_app"],
    "flask-limiter": [*GUNICORN, "bench.peers.flask_ratelimit:create_app()"],
    "flask-limiter-bare": [*GUNICORN, "bench.peers.flask_ratelimit:create_app(headers=False)"],
    "flask-unlimited": [*GUNICORN, "bench.peers.flask_ratelimit:create_app(limiter=False)"],
    # The example app plus a route that refuses all but its first request.
    "shipshape-example-redis": [*SHIPSHAPE, "--factory", f"{RATELIMIT}:create_example_app"],
    "shipshape-example-memory": [
        *SHIPSHAPE,
        "--factory",
        f"{RATELIMIT}:create_example_app_memory",
    ],  # fmt: skip
}
#: The Things scenarios' stacks (``bench/things.py``); each reads the seeded database.
THINGS_STACKS: dict[str, list[str]] = {
    "shipshape-things": [*SHIPSHAPE, "--factory", "app:create_app"],
    "flask-things": [*GUNICORN, "bench.peers.flask_things:create_app()"],
}
#: The single-page frontend's stacks (``bench/spa.py``), serving ``frontend/dist`` at /app.
SPA_STACKS: dict[str, list[str]] = {
    "shipshape-spa": [*SHIPSHAPE, "--factory", "app:create_app"],
    "tozo-spa": [*UVICORN, "--factory", "bench.peers.tozo_spa:create_app"],
    "raw-spa": [*UVICORN, "--factory", "bench.peers.raw_spa:create_app"],
}
#: Every stack's rate limit admits the whole load unless a scenario says otherwise: the
#: default (2/second;60/minute per client) would refuse nearly all of wrk's requests.
RATELIMIT_DEFAULT = ADMIT_ALL


class StackError(Exception):
    """A stack's server exited, never answered, or failed under load."""

    def __init__(self, stack: str, reason: str, output: str) -> None:
        super().__init__(f"{stack}: {reason}")
        self.stack = stack
        self.reason = reason
        self.output = output

    def __str__(self) -> str:
        output = self.output.rstrip() or "(it wrote nothing)"
        return f"{self.stack}: {self.reason}; its output:\n{output}"


@dataclass
class Server:
    stack: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path  # the process's stdout and stderr

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-OUTPUT_LINES:])

    def failed(self, reason: str) -> StackError:
        return StackError(self.stack, reason, self.output())

    def check_running(self, during: str) -> None:
        status = self.process.poll()
        if status is not None:
            raise self.failed(f"exited with status {status} during {during}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def require_tools(*tools: str) -> None:
    """Fail with one line if a tool the run needs is missing, or a CPU it pins to."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed; it {INSTALL[tool]}")
    cpus = os.sched_getaffinity(0)
    wanted = {int(SERVER_CPU), int(LOAD_CPU)}
    if not wanted <= cpus:
        raise SystemExit(
            f"the benchmark pins to CPUs {sorted(wanted)} but may use only {sorted(cpus)}"
        )


def body_file(run_dir: Path) -> Path:
    """The captured home page, which the peers serve."""
    return run_dir / "home.html"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, accept: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": accept})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return response.status, response.read(), response.headers.get("Content-Encoding", "")


def report_failure(exc: StackError, failed: dict[str, str]) -> None:
    """Show a failed stack's output now; the run goes on without it and the report says so."""
    print(f"FAILED {exc}", file=sys.stderr)
    failed[exc.stack] = exc.reason


def start(
    stack: str,
    run_dir: Path,
    *,
    source: Path | None = None,
    name: str = "",
    environ: Mapping[str, str] | None = None,
) -> Server:
    """Start ``stack`` pinned to its CPU; raise :class:`StackError` if it does not answer.

    ``source`` runs the stack from another checkout (its ``src`` first on the
    path), ``name`` tells two servers of one stack apart (``bench/revisions.py``),
    ``environ`` adds to the server's environment (``BENCH_REDIS_URL``).
    """
    command = {**STACKS, **RATELIMIT_STACKS, **THINGS_STACKS, **SPA_STACKS}[stack]
    name = name or stack
    port = free_port()
    gunicorn = stack.startswith("flask")
    bind = ["--bind", f"127.0.0.1:{port}"] if gunicorn else ["--port", str(port)]
    inherited = os.environ.get("PYTHONPATH")
    paths = [str(source / "src")] if source is not None else []
    paths += [str(ROOT), inherited] if inherited else [str(ROOT)]
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATELIMIT_DEFAULT": RATELIMIT_DEFAULT,
        BODY_FILE_KEY: str(body_file(run_dir)),
        STATIC_DIR_KEY: str(DIST),
        "PYTHONPATH": os.pathsep.join(paths),
        **(environ or {}),
    }
    log = run_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, sys.executable, *command, *bind],
            cwd=source or ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        server.check_running("start-up")
        try:
            get(f"{server.url}/", "identity")
            return server
        except urllib.error.HTTPError as exc:
            server.stop()
            raise server.failed(f"answered {exc.code} at / on start-up") from exc
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise server.failed(f"did not answer within {START_TIMEOUT} s")


def capture_home(run_dir: Path) -> bytes:
    """Render Shipshape's home page once; every peer serves these bytes."""
    try:
        server = start("shipshape", run_dir)
    except StackError as exc:
        raise SystemExit(f"could not capture the home page: {exc}") from exc
    try:
        status, body, _ = get(f"{server.url}/", "identity")
    finally:
        server.stop()
    if status != 200:
        raise SystemExit(f"could not capture the home page: status {status}")
    body_file(run_dir).write_bytes(body)
    return body
