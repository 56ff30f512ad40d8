"""CPU microseconds per request of the example app's pages, in-process, no server.

Each scenario drives the whole production stack (every ASGI layer, Quart, the
view, compression) with a fake ASGI scope and no cookies, as wrk does: a new
session and CSRF secret every time. The figure is CPU time
(``time.process_time``), so another process on the machine slows it less than
it slows a load test; read the minimum of the runs for a before/after::

    .venv/bin/python scripts/page_cost.py                 # every scenario
    .venv/bin/python scripts/page_cost.py S2 -n 500 -r 20
    .venv/bin/py-spy record -f raw -o s1.txt -- .venv/bin/python scripts/page_cost.py S1-br

The log lines go to ``/dev/null``, as a production worker's go to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shipshape.typing import Message, RawHeaders, Scope

SCENARIOS: dict[str, tuple[str, RawHeaders]] = {
    "S1-br": ("/", [(b"accept-encoding", b"br")]),
    "S1-browser": ("/", [(b"accept-encoding", b"gzip, deflate, br, zstd")]),
    "S2": ("/cookies", [(b"accept-encoding", b"br")]),
    "S3": ("/app/things/x", [(b"accept-encoding", b"br"), (b"sec-fetch-dest", b"document")]),
    # The Things list over a database seeded as `make bench` seeds it (see --database).
    "S7-page": ("/things/", [(b"accept-encoding", b"br")]),
    "S7-api": ("/api/things", [(b"accept-encoding", b"br")]),
}
ENVIRON = {
    "APP_ENV": "production",
    "SECRET_KEY": "page-cost-only-" + "p" * 40,
    "ALLOWED_HOSTS": "127.0.0.1",
    "RATELIMIT_DEFAULT": "1000000/second",  # every request is counted, none refused
}
WARM_UP = 300  # requests per scenario before timing: templates compiled, caches full


def scope_for(path: str, headers: RawHeaders) -> Scope:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
        "state": {},
    }
    return scope


class Client:
    """Sends one request with an empty body, then stays connected, as a browser does."""

    def __init__(self) -> None:
        self.sent = False
        self.status = 0

    async def receive(self) -> Message:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # until the app is done and cancels this
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]


async def measure(names: list[str], requests: int, runs: int) -> None:
    from app import create_app

    app = create_app()
    await app.startup()
    try:
        for name in names:
            path, headers = SCENARIOS[name]

            async def one(path: str = path, headers: RawHeaders = headers) -> int:
                client = Client()
                await app(scope_for(path, headers), client.receive, client.send)  # type: ignore[arg-type]
                await asyncio.sleep(0)  # a loop turn between requests, as a server has: the
                # request lines queued this turn are written at its end (shipshape.logging)
                return client.status

            for _ in range(WARM_UP):
                status = await one()
            if status != 200:
                raise SystemExit(f"{name}: {path} answered {status}")
            times = []
            for _ in range(runs):
                start = time.process_time()
                for _ in range(requests):
                    await one()
                times.append((time.process_time() - start) / requests * 1e6)
            print(
                f"{name:<11} min {min(times):7.1f}  median {statistics.median(times):7.1f}"
                " µs CPU per request",
                file=sys.__stdout__,
            )
    finally:
        await app.shutdown()


def seeded_sqlite() -> str:
    """A SQLite file in a temporary directory, seeded as ``make bench`` seeds S7's."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bench package
    from bench.suite import seed

    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='page-cost-')}/things.db"
    asyncio.run(seed(url))
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)}; all by default"
    )
    parser.add_argument("-n", "--requests", type=int, default=300, help="requests per run")
    parser.add_argument("-r", "--runs", type=int, default=12)
    parser.add_argument(
        "--database",
        help="DATABASE_URL for S7 (e.g. PostgreSQL's); by default a seeded SQLite file",
    )
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    os.environ.update(ENVIRON)
    if any(name.startswith("S7") for name in args.scenarios or SCENARIOS):
        os.environ["DATABASE_URL"] = args.database or seeded_sqlite()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the log lines, for the whole run
    asyncio.run(measure(args.scenarios or list(SCENARIOS), args.requests, args.runs))


if __name__ == "__main__":
    main()
