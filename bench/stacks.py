"""The stacks under test, the servers that run them, and how a set-up places them on the cores.

A :class:`Stack` is an app factory on a server: Shipshape's example app on
granian (as ``make serve`` runs it), the same app on uvicorn and hypercorn
(the server comparison), the peers on the server they are compared on. Every
ASGI peer runs on granian with Shipshape's own server settings, so that a
ratio compares the apps, not the servers; the Flask stacks run on gunicorn's
sync workers, as the template repository deploys them.

A :class:`Setup` says how many workers each server runs and where it runs:
``pinned`` is one worker on CPU 1 with wrk on CPU 0 (the cleanest reading of
a stack's cost per request); ``shared`` is two workers per server with the
load on the same two cores, unpinned, as a user would deploy it on this
machine.

Every server gets ``RATELIMIT_DEFAULT`` set far above any load here, so that
Shipshape's default limit (2/second;60/minute per client) counts every
request (the check is part of the cost) but refuses none; the Flask peers run
Flask-Limiter raised as high, for the same reason.
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

from bench.peers.common import ADMIT_ALL
from shipshape.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "src" / "app" / "static" / "dist"
SECRET = "bench-only-" + "b" * 40
SERVER_CPU, LOAD_CPU = "1", "0"
START_TIMEOUT = 30  # seconds; a cold start imports the whole app, two workers at once
OUTPUT_LINES = 40  # of a failed server's output shown; tracebacks end there
#: Where each tool the harness runs comes from (Debian and Ubuntu package names).
INSTALL = {
    "taskset": "pins each process to its CPU: apt-get install util-linux",
    "wrk": "drives the load: apt-get install wrk (make bench installs it as root)",
}


@dataclass(frozen=True)
class Setup:
    name: str
    workers: int
    server_cpus: str | None  # taskset's list for the server; None: unpinned
    load_cpus: str | None  # and for wrk
    load_threads: int
    about: str


PINNED = Setup(
    "pinned", 1, SERVER_CPU, LOAD_CPU, 1,
    f"one worker per server pinned to CPU {SERVER_CPU}; wrk (1 thread) pinned to CPU {LOAD_CPU}",
)  # fmt: skip
SHARED = Setup(
    "shared", 2, None, None, 2,
    "two workers per server and wrk (2 threads) on the same two cores, unpinned",
)  # fmt: skip
SETUPS = {setup.name: setup for setup in (PINNED, SHARED)}


@dataclass(frozen=True)
class Stack:
    app: str  # the factory, module:function
    server: str  # granian, uvicorn, hypercorn or gunicorn
    about: str


SHIPSHAPE_APP = "app:create_app"
RATELIMIT = "bench.peers.shipshape_ratelimit"
STACKS: dict[str, Stack] = {
    "shipshape": Stack(
        SHIPSHAPE_APP, "granian", "the example app in production mode, as `make serve` runs it"
    ),
    "shipshape-uvicorn": Stack(
        SHIPSHAPE_APP, "uvicorn", "the same app on uvicorn (uvloop, httptools)"
    ),
    "shipshape-hypercorn": Stack(SHIPSHAPE_APP, "hypercorn", "the same app on hypercorn (uvloop)"),
    "flask-template": Stack(
        "bench.peers.flask_template:create_app",
        "gunicorn",
        "the template repository's stack rendering the same templates "
        "(Compress, Talisman with nonces, WTF, Assets, Limiter raised high)",
    ),
    "shipshape-layer": Stack(
        "bench.peers.shipshape_layer:create_app",
        "granian",
        "Shipshape's production layer on a bare Quart view sending the captured page",
    ),
    "flask": Stack(
        "bench.peers.flask_stack:create_app",
        "gunicorn",
        "Flask + Flask-Compress + Flask-Talisman sending the captured page",
    ),
    "shipshape-compression": Stack(
        "bench.peers.shipshape_compression:create_app",
        "granian",
        "Shipshape's compression middleware alone on a bare Quart view",
    ),
    "flask-compress": Stack(
        "bench.peers.flask_compress:create_app", "gunicorn", "Flask + Flask-Compress alone"
    ),
    "quart": Stack(
        "bench.peers.quart_stack:create_app",
        "granian",
        "plain Quart sending the same bytes, uncompressed",
    ),
    "raw-asgi": Stack(
        "bench.peers.raw_asgi:create_app",
        "granian",
        "a raw ASGI app sending the same bytes, compressed once: the ceiling",
    ),
    "tozo": Stack(
        "bench.peers.tozo_spa:create_app",
        "granian",
        "tozo's serving blueprint: `render_template` catch-all, `send_from_directory`, "
        "quart-rate-limiter",
    ),
    "raw-spa": Stack(
        "bench.peers.raw_spa:create_app",
        "granian",
        "a raw ASGI app sending the same index and bundle bytes: the ceiling",
    ),
    "spa-index": Stack(
        "bench.peers.spa_index:create_app",
        "granian",
        "the example's SPA layer sending its index (nonce, new session, CSRF token, headers) "
        "with no other layer: the ceiling on Shipshape's design",
    ),
    "shipshape-ratelimit": Stack(
        f"{RATELIMIT}:create_app",
        "granian",
        "the production layer on one route with `@rate_limit`, Redis store",
    ),
    "shipshape-exempt": Stack(
        f"{RATELIMIT}:create_exempt_app", "granian", "the same route `@rate_exempt`: the baseline"
    ),
    "quart-rate-limiter": Stack(
        "bench.peers.quart_ratelimit:create_app",
        "granian",
        "quart-rate-limiter with its `RedisStore` on plain Quart",
    ),
    "quart-unlimited": Stack(
        "bench.peers.quart_ratelimit:create_unlimited_app",
        "granian",
        "the same Quart app without a limiter: the baseline",
    ),
    "flask-limiter": Stack(
        "bench.peers.flask_ratelimit:create_app",
        "gunicorn",
        "Flask-Limiter with Redis storage, headers on",
    ),
    "shipshape-refusing": Stack(
        f"{RATELIMIT}:create_example_app",
        "granian",
        "the example app plus a route limited to 1/hour, Redis store",
    ),
    "flask-things": Stack(
        "bench.peers.flask_things:create_app",
        "gunicorn",
        "the template stack with Flask-SQLAlchemy, rendering the same list template",
    ),
    "quart-things": Stack(
        "bench.peers.quart_things:create_app",
        "granian",
        "bare Quart with Shipshape's engine, the same query and JSON, no layer: the ceiling",
    ),
}


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
    setup: Setup = PINNED

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


def pinned(cpus: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(stack: Stack, workers: int, port: int) -> list[str]:
    """The command line that serves ``stack`` with ``workers`` on ``port``."""
    if stack.server == "granian":
        # Shipshape's production server settings (bench/granian.py), for every stack on it.
        return ["-m", "bench.granian", stack.app, "--workers", str(workers), "--port", str(port)]
    if stack.server == "uvicorn":
        return ["-m", "uvicorn", "--workers", str(workers), "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--no-server-header",
                "--no-proxy-headers", "--log-level", "warning", "--port", str(port),
                "--factory", stack.app]  # fmt: skip
    if stack.server == "hypercorn":
        return ["-m", "hypercorn", "--workers", str(workers), "--worker-class", "uvloop",
                "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                f"{stack.app}()"]  # fmt: skip
    if stack.server == "gunicorn":
        return ["-m", "gunicorn", "--workers", str(workers), "--log-level", "warning",
                "--bind", f"127.0.0.1:{port}", f"{stack.app}()"]  # fmt: skip
    raise ValueError(f"unknown server {stack.server!r}")


def probe(url: str) -> None:
    """One request to ``url``; raises for no answer (OSError) or an error status."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        response.read()


def server_environ(environ: Mapping[str, str] | None, source: Path | None) -> dict[str, str]:
    """The harness's environment without the app's settings or another run's files
    (a developer's ``REDIS_URL`` must not reach a stack), plus the run's own."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in ENV_NAMES and not name.startswith(("BENCH_", "SHIPSHAPE_", "RATELIMIT_"))
    }
    paths = [str(source / "src")] if source is not None else []
    paths += [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **inherited,
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATELIMIT_DEFAULT": ADMIT_ALL,
        "PYTHONPATH": os.pathsep.join(paths),
        **(environ or {}),
    }


def launch(
    name: str,
    run_dir: Path,
    setup: Setup,
    *,
    environ: Mapping[str, str] | None = None,
    stack: Stack | None = None,
    source: Path | None = None,
    own_session: bool = False,
) -> Server:
    """Start the stack ``name`` in ``setup``, without waiting for it; :func:`ready` waits.

    ``environ`` adds to the server's environment (the run's files, Redis and
    database URLs); ``stack`` serves another stack's app under ``name``, and
    ``source`` runs it from another checkout (``bench/revisions.py``).
    ``own_session`` starts it in a session of its own: the kernel's autogroups
    (when on: ``/proc/sys/kernel/sched_autogroup_enabled``) then share a core
    between sessions, not between threads, so two servers loaded at once get
    half each however many threads each runs (aiosqlite's are one a connection).
    """
    stack = stack or STACKS[name]
    port = free_port()
    log = run_dir / f"{name}-{setup.name}.log"
    # -P: the modules come from PYTHONPATH, never from the working directory, so a
    # checkout of another revision (source) serves its app with this run's harness.
    command = [sys.executable, "-P", *server_command(stack, setup.workers, port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(setup.server_cpus, command),
            cwd=source or ROOT,
            env=server_environ(environ, source),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )
    return Server(name, port, process, log, setup)


def ready(server: Server) -> Server:
    """Wait until ``server`` answers at ``/``; stop it and raise :class:`StackError` if not."""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            server.check_running("start-up")
            try:
                probe(f"{server.url}/")
                return server
            except urllib.error.HTTPError as exc:
                raise server.failed(f"answered {exc.code} at / on start-up") from exc
            except OSError:
                time.sleep(0.1)
        raise server.failed(f"did not answer within {START_TIMEOUT} s")
    except BaseException:
        server.stop()
        raise
