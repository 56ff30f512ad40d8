"""The Things list: Shipshape against the template repository's stack, same data, same work.

Issue 12's scenario, measured as ``bench/run.py`` measures: one worker per
server pinned to CPU 1, wrk pinned to CPU 0, both servers up for the whole
run, the repeats taken in turns, and the comparison read as round-by-round
ratios. Both stacks read one database, seeded here with 100 things, and
answer with a count and a page of 25 rows; first over a SQLite file, then
over a PostgreSQL server started for the run:

* ``things-page``: ``GET /things/``, the list page (25 rows, filter form,
  pagination), with ``Accept-Encoding: br``;
* ``things-api``: ``GET /api/things``, the same page as JSON, with br.

``shipshape-things`` is the example app in production mode (SQLAlchemy's
asyncio engine over aiosqlite); ``flask-things`` is Flask with Compress,
Talisman, WTF, Assets, Flask-SQLAlchemy and Flask-Limiter on gunicorn
(``bench/peers/flask_things.py``). Run with ``python -m bench.things`` or
``python -m bench.run --only things``; writes ``bench/results/things.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import insert

from app import MIGRATIONS
from app.models import Base, Thing
from bench.load import harness_main, paired_ratios
from bench.peers.flask_things import DATABASE_KEY
from bench.stacks import LOAD_CPU, ROOT, Server, StackError, report_failure, require_tools, start
from shipshape.database import Migrations, make_engine
from tests.servers import PostgresServer

if TYPE_CHECKING:
    from bench.run import Result

RESULTS = ROOT / "bench" / "results"
SEEDED = 100  # things: four pages of 25
SCENARIOS = {"things-page": "/things/", "things-api": "/api/things"}
ENGINES = ("sqlite", "postgresql")
PAIR = ("shipshape-things", "flask-things")
TARGET = 2.0  # issue 12: at least 2x the template stack on both


async def seed(url: str) -> None:
    """A migrated database with ``SEEDED`` things, as the example app makes them."""
    engine = make_engine(url, timeout=5, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Migrations(MIGRATIONS, Base.metadata).upgrade)
            for n in range(SEEDED):
                name = f"Thing number {n:03d}"
                description = f"The description of thing {n}, <b>escaped</b> & all. " * 3
                await connection.execute(
                    insert(Thing).values(
                        id=uuid.uuid4(), name=name, name_key=name.casefold(),
                        description=description, created_at=datetime.now(UTC),
                        updated_at=datetime.now(UTC), version=1,
                    )
                )  # fmt: skip
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    """Both scenarios on SQLite, then on PostgreSQL; 1 if a stack failed."""
    require_tools("taskset", "wrk")
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-bench-things-"))
    results: dict[tuple[str, str], Result] = {}
    failed: dict[str, str] = {}
    postgres = PostgresServer()
    try:
        database = run_dir / "things.db"
        measure(run_dir, "sqlite", f"sqlite+aiosqlite:///{database}",
                f"sqlite:///{database}", args, results, failed)  # fmt: skip
        postgres.start()
        # The database beside the load generator, so that the server's core is its own.
        assert postgres.process is not None  # noqa: S101 - started just above
        os.sched_setaffinity(postgres.process.pid, {int(LOAD_CPU)})
        measure(run_dir, "postgresql", postgres.url(),
                postgres.url().replace("+asyncpg", "+psycopg"), args, results, failed)  # fmt: skip
    finally:
        postgres.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "things.md").write_text(report(results, failed, args))
    if failed:
        print(f"{', '.join(sorted(failed))} failed (output above)", file=sys.stderr)
        return 1
    return 0


def measure(
    run_dir: Path,
    engine: str,
    ours: str,
    theirs: str,
    args: argparse.Namespace,
    results: dict[tuple[str, str], Result],
    failed: dict[str, str],
) -> None:
    """Seed the database at ``ours`` (``theirs`` is the same one, for Flask-SQLAlchemy's
    sync driver), then run the scenarios on both stacks in turns."""
    from bench.run import measure_round_robin  # bench.run imports this module for --only

    asyncio.run(seed(ours))
    environ = {"DATABASE_URL": ours, DATABASE_KEY: theirs}
    servers: dict[str, Server] = {}
    try:
        for stack in PAIR:
            try:
                servers[stack] = start(stack, run_dir, environ=environ)
            except StackError as exc:
                report_failure(exc, failed)
        for scenario, path in SCENARIOS.items():
            serving = {s: server for s, server in servers.items() if s not in failed}
            label = f"{scenario}-{engine}"
            for result in measure_round_robin(serving, label, path, "br", args, failed):
                results[result.stack, label] = result
    finally:
        for server in servers.values():
            server.stop()


def report(
    results: dict[tuple[str, str], Result], failed: dict[str, str], args: argparse.Namespace
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# The Things list: Shipshape against the template stack doing the same work\n",
        f"Measured {when} by `python -m bench.things --seconds {args.seconds} --repeats "
        f"{args.repeats} --connections {args.connections}`: wrk with {args.connections} "
        "connections pinned to CPU 0, each server one worker pinned to CPU 1, the rounds "
        "taken in turns. Both stacks read one database seeded with "
        f"{SEEDED} things (a SQLite file, then a PostgreSQL server on CPU 0 beside wrk; "
        "Shipshape through aiosqlite and asyncpg, Flask-SQLAlchemy through sqlite3 and "
        "psycopg) and answer with a count and 25 rows, with `Accept-Encoding: br`. "
        "The machine has 2 cores and is noisy: read the round-by-round ratios.\n",
        "| scenario | `shipshape-things` req/s | `flask-things` req/s | × flask, median "
        "| × flask, round by round | bytes (ours / theirs) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for scenario, path in [(f"{s}-{e}", p) for e in ENGINES for s, p in SCENARIOS.items()]:
        engine = scenario.rsplit("-", 1)[1]
        mine, peer = results.get((PAIR[0], scenario)), results.get((PAIR[1], scenario))
        if mine is None or peer is None:
            reasons = "; ".join(f"`{s}` failed: {r}" for s, r in failed.items())
            lines.append(f"| `{path}`, {engine} | – | – | – | {reasons or 'no result'} | – |")
            continue
        paired = paired_ratios(mine, peer)
        lines.append(
            f"| `{path}`, {engine} | {mine.rps:,.0f} | {peer.rps:,.0f} "
            f"| **{statistics.median(paired):.2f}×** | {', '.join(f'{r:.2f}' for r in paired)} "
            f"| {mine.body_bytes:,} / {peer.body_bytes:,} |"
        )
    lines.append(f"\nTarget (issue 12): at least {TARGET:.0f}× on both.\n")
    return "\n".join(lines) + "\n"


def main() -> int:
    return harness_main(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
