"""The redis-server of the rate-limit scenarios: one, shared by every stack, and what it counts.

In the pinned set-up it runs on the load core, next to wrk, so that the
server core serves only the stack under test (as if Redis were on another
host); nothing is saved to disk. :meth:`RedisServer.snapshot` reads ``INFO`` once, and the
difference of two snapshots (a :class:`Usage`) is what the server did between
them:

* ``commandstats``: calls per command. Redis counts the commands a Lua script
  runs (``redis.call``) as calls too, so one ``EVALSHA`` whose script runs
  ``TIME``, ``HMGET``, ``HSET`` and ``PEXPIRE`` counts five;
* round trips: ``total_reads_processed``, the read events on client sockets,
  one per command a client sends when, as here, nobody pipelines, less the
  one each closed connection causes (its end of file), counted from
  ``total_connections_received`` and ``connected_clients``. A connection's
  set-up commands (``HELLO``, ``CLIENT SETINFO``) are round trips too;
* ``used_cpu_user`` and ``used_cpu_sys``: the server's CPU time.

The snapshots' own ``INFO`` calls are left out of all of them.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from bench.stacks import free_port, pinned

PR_SET_PDEATHSIG = 1
START_TIMEOUT = 10.0  # seconds; it is ready in well under 0.1 s
#: Debian's redis-server, or Valkey's, whichever is on PATH.
BINARIES = ("redis-server", "valkey-server")


@dataclass(frozen=True)
class Snapshot:
    """The server's counters at one moment."""

    calls: Counter[str]  # command name (``evalsha``, ``client|setinfo``): calls so far
    reads: int  # read events on client sockets so far
    connections: int  # connections accepted so far
    clients: int  # connections open now
    cpu: float  # seconds of CPU, user and system, the server has used so far

    def __sub__(self, before: Snapshot) -> Usage:
        opened = self.connections - before.connections
        closed = opened - (self.clients - before.clients)
        # Of the two INFO calls, the later snapshot counts the later one's read.
        return Usage(
            calls=self.calls - before.calls,
            round_trips=self.reads - before.reads - 1 - closed,
            opened=opened,
            cpu=self.cpu - before.cpu,
        )


@dataclass(frozen=True)
class Usage:
    """What the server did between two snapshots."""

    calls: Counter[str]  # command name: calls, those run by scripts included
    round_trips: int  # commands clients sent (read events, less connections' ends)
    opened: int  # connections accepted
    cpu: float  # seconds of CPU


def _die_with_parent() -> None:  # runs in the child, before exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise SystemExit(
        "redis-server is needed for the rate-limit scenarios: apt-get install redis-server"
    )


class RedisServer:
    """A throwaway redis-server on a free loopback port; a context manager."""

    def __init__(self, cpus: str | None = None) -> None:
        self.cpus = cpus  # where it runs (taskset's list); None: anywhere
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="shipshape-bench-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.client: Redis | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.process = subprocess.Popen(
            pinned(self.cpus, [binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(self.folder)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # if the harness is killed, Redis stops too
        )  # fmt: skip
        self.client = Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                self.client.ping()
                return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise SystemExit(f"redis-server did not answer on port {self.port}")

    def __exit__(self, *exc_info: object) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def _client(self) -> Redis:
        if self.client is None:
            raise RuntimeError("the redis-server is not running")
        return self.client

    def version(self) -> str:
        info = self._client().info("server")
        return f"{info.get('server_name', 'redis')} {info['redis_version']}"

    def snapshot(self) -> Snapshot:
        # One INFO, several sections.
        info = self._client().info("commandstats", "cpu", "stats", "clients")
        calls = Counter(
            {
                name.removeprefix("cmdstat_"): int(values["calls"])
                for name, values in info.items()
                if name.startswith("cmdstat_") and name != "cmdstat_info"
            }
        )
        return Snapshot(
            calls=calls,
            reads=int(info["total_reads_processed"]),
            connections=int(info["total_connections_received"]),
            clients=int(info["connected_clients"]),
            cpu=float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        )
