"""Every scenario of ``make bench``, the stacks each runs on, and the targets they are held to.

Scenarios come in groups. A group's stacks are started together, with the
environment the group prepares (the captured page and index the peers send,
a Redis server, a seeded database), its scenarios are measured, and its
stacks are stopped; then the next group. Within a scenario the stacks are
measured in turns, round after round, so that the ratios read round by
round compare stacks measured seconds apart. Scenarios that share a
``batch`` are measured in the same rounds (S6 compares a 429 with a 200 on
one server).

The scenario keys are the report's row names; the targets name them.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.peers.common import BODY_FILE_KEY, REDIS_URL_KEY, STATIC_DIR_KEY
from bench.peers.flask_things import DATABASE_KEY
from bench.peers.raw_spa import INDEX_KEY
from bench.peers.shipshape_ratelimit import REFUSED_PATH
from bench.peers.tozo_spa import BUILD
from bench.redis_server import RedisServer
from bench.stacks import DIST, LOAD_CPU, PINNED, Server, Setup, StackError, launch, ready
from tests.servers import PostgresServer

BROWSER_ENCODINGS = "gzip, deflate, br, zstd"  # what current Chrome and Firefox send
#: What current Chrome sends when it navigates to a page.
NAVIGATION = {
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}
BROWSER = {**NAVIGATION, "Accept-Encoding": BROWSER_ENCODINGS}
BR = {"Accept-Encoding": "br"}
API_CLIENT = {"Accept": "application/json", "Accept-Encoding": BROWSER_ENCODINGS}
SEEDED = 100  # things in the seeded database: four pages of 25
#: The server comparison: Shipshape on each server, in the scenarios the issue names.
SERVERS = ("shipshape", "shipshape-uvicorn", "shipshape-hypercorn")


@dataclass(frozen=True)
class Scenario:
    key: str  # the report's name for it: S1 br, S3, S6 429 json, ...
    title: str
    path: str
    headers: Mapping[str, str]
    stacks: tuple[str, ...]  # Shipshape's first, then the peers it is compared with
    status: int = 200  # what every measured request must be answered
    cost: bool = False  # read the server's CPU and Redis's counts around each run
    batch: str = ""  # scenarios measured in the same rounds; the key by default
    setups: tuple[str, ...] = ("pinned", "shared")

    @property
    def rounds_with(self) -> str:
        return self.batch or self.key


@dataclass
class Group:
    """Scenarios whose stacks run together, in an environment made for them."""

    name: str
    needs: str  # what environment() makes for it: pages, redis, sqlite or postgresql
    scenarios: list[Scenario]
    environ: dict[str, str] = field(default_factory=dict)
    redis: RedisServer | None = None  # set while the group runs, if it uses Redis

    @property
    def stacks(self) -> list[str]:
        return list(dict.fromkeys(s for scenario in self.scenarios for s in scenario.stacks))


@dataclass(frozen=True)
class Target:
    """What the issue asks of a scenario: ``mine`` against ``other``, round by round."""

    key: str  # the scenario
    measure: str  # "rps", "bytes", "cpu" (per request) or "round trips"
    mine: tuple[str, str]  # (scenario, stack)
    other: tuple[str, str] | None  # None: an absolute figure (round trips)
    least: float | None = None  # the ratio must be at least this
    most: float | None = None  # or at most this

    def met(self, value: float) -> bool:
        """Judged as reported, to two places: 0.998 round trips per request is 1.00
        (the requests served are wrk's count plus one in flight per connection)."""
        value = round(value, 2)
        return (self.least is None or value >= self.least) and (
            self.most is None or value <= self.most
        )

    @property
    def wanted(self) -> str:
        if self.least is not None and self.least == self.most:
            return f"= {self.least:g}"
        sign = "≥" if self.least is not None else "≤"
        bound = self.least if self.least is not None else self.most
        unit = "" if self.measure == "round trips" else "×"
        return f"{sign} {bound:g}{unit}"


def ceilings() -> list[Target]:
    """What a bare app doing only a scenario's own work reads against the target's peer,
    round by round: how far the target is within reach of the stack it is built on.
    No verdict: a ceiling under a target says no layer on that stack can meet it."""
    return [
        Target("S3", "rps", ("S3", "spa-index"), ("S3", "raw-spa")),
        *(
            Target(key, "rps", (key, "quart-things"), (key, "flask-things"))
            for key in ("S7 api SQLite", "S7 api PostgreSQL")
        ),
    ]


def manifest_path(name: str) -> str:
    manifest = json.loads((DIST / "manifest.json").read_text())
    return "/static/" + str(manifest[name]["path"])


def bundle_path() -> str:
    [bundle] = sorted((BUILD / "assets").glob("index-*.js"))
    return f"/app/assets/{bundle.name}"


def groups() -> list[Group]:
    pages = ("shipshape", "flask-template")
    deep_link = f"/app/things/{uuid.uuid4()}"
    web = Group("pages and the single-page frontend", "pages", [
        Scenario("S1 br", "home page, br", "/", BR, (*SERVERS, "flask-template")),
        Scenario("S1 browser", "home page, a browser's headers", "/", BROWSER, pages),
        Scenario("S2 br", "the `/cookies` form, br", "/cookies", BR, pages),
        Scenario("S2 browser", "the `/cookies` form, a browser's headers", "/cookies", BROWSER,
                 pages),
        Scenario("S3", f"SPA deep link `{deep_link}`, navigation, br", deep_link,
                 {**NAVIGATION, **BR}, (*SERVERS, "tozo", "raw-spa", "spa-index")),
        Scenario("S4", "the hashed JS bundle, br", bundle_path(), BR,
                 ("shipshape", "tozo", "raw-spa")),
        Scenario("CSS", "the hashed Bootstrap CSS, br", manifest_path("bootstrap.css"), BR,
                 ("shipshape", "raw-asgi", "flask-template")),
        # Where a page's time goes: the same captured bytes through less and less of a stack.
        # (Diagnostic rows: the pinned set-up only.)
        Scenario("layer", "the captured home page from a bare view, br", "/", BR,
                 ("shipshape-layer", "flask", "quart", "raw-asgi"), setups=("pinned",)),
        Scenario("compression", "compression alone on the captured page, br", "/", BR,
                 ("shipshape-compression", "flask-compress"), setups=("pinned",)),
    ])  # fmt: skip
    limits = ("shipshape-ratelimit", "quart-rate-limiter", "flask-limiter")
    refusing = ("shipshape-refusing",)
    json = {"Accept": "application/json"}
    ratelimit = Group("rate limiting over Redis", "redis", [
        Scenario("S5", "a rate-limited route, admitted", "/", json, limits, cost=True),
        # The same apps without their limiters, in S5's rounds: the limiter's own cost.
        Scenario("S5 baseline", "the same route, no limiter", "/", json,
                 ("shipshape-exempt", "quart-unlimited"), cost=True, batch="S5",
                 setups=("pinned",)),
        Scenario("S6 200", "the home page, 200", "/", BROWSER, refusing, cost=True, batch="S6"),
        Scenario("S6 429 html", "a refused request, browser headers", REFUSED_PATH, BROWSER,
                 refusing, status=429, cost=True, batch="S6"),
        Scenario("S6 429 json", "a refused request, `Accept: application/json`", REFUSED_PATH,
                 API_CLIENT, refusing, status=429, cost=True, batch="S6"),
    ])  # fmt: skip
    things = ("shipshape", "flask-things")
    by_engine = [
        Group(
            f"Things over {engine}",
            engine.lower(),
            [
                Scenario(f"S7 page {engine}", f"`/things/`, {engine}, br", "/things/", BR, things),
                Scenario(
                    f"S7 api {engine}",
                    f"`/api/things`, {engine}, br",
                    "/api/things",
                    BR,
                    (*things, "quart-things"),
                ),
            ],
        )  # fmt: skip
        for engine in ("SQLite", "PostgreSQL")
    ]
    return [web, ratelimit, *by_engine]


def targets() -> list[Target]:
    return [
        *(Target(key, "rps", (key, "shipshape"), (key, "flask-template"), least=3)
          for key in ("S1 br", "S1 browser", "S2 br", "S2 browser")),
        Target("S3", "rps", ("S3", "shipshape"), ("S3", "tozo"), least=3),
        Target("S3", "rps", ("S3", "shipshape"), ("S3", "raw-spa"), least=0.5),
        Target("S4", "rps", ("S4", "shipshape"), ("S4", "tozo"), least=10),
        Target("S4", "bytes", ("S4", "shipshape"), ("S4", "tozo"), most=0.3),
        Target("S5", "rps", ("S5", "shipshape-ratelimit"), ("S5", "quart-rate-limiter"), least=1.5),
        Target("S5", "round trips", ("S5", "shipshape-ratelimit"), None, least=1, most=1),
        *(Target(key, "cpu", (key, "shipshape-refusing"), ("S6 200", "shipshape-refusing"),
                 most=0.2) for key in ("S6 429 html", "S6 429 json")),
        *(Target(key, "rps", (key, "shipshape"), (key, "flask-things"), least=2)
          for key in ("S7 page SQLite", "S7 api SQLite", "S7 page PostgreSQL",
                      "S7 api PostgreSQL")),
        Target("CSS", "rps", ("CSS", "shipshape"), ("CSS", "raw-asgi"), least=0.6),
        # Issue 5's, kept: the compression middleware against Flask-Compress.
        Target("compression", "rps", ("compression", "shipshape-compression"),
               ("compression", "flask-compress"), least=2),
    ]  # fmt: skip


@contextmanager
def environment(group: Group, run_dir: Path, setup: Setup) -> Iterator[None]:
    """What ``group``'s stacks read: captured bytes, a Redis server or a seeded database.

    Redis and PostgreSQL run beside wrk in the pinned set-up (as if on another
    host), so that the server core serves only the stack under test.
    """
    cpus = LOAD_CPU if setup is PINNED else None
    if group.needs == "pages":
        capture(run_dir, setup, group)
        yield
    elif group.needs == "redis":
        with RedisServer(cpus) as redis:
            group.redis = redis
            group.environ = {REDIS_URL_KEY: redis.url}
            try:
                yield
            finally:
                group.redis = None
    elif group.needs == "sqlite":
        database = run_dir / f"things-{setup.name}.db"
        asyncio.run(seed(f"sqlite+aiosqlite:///{database}"))
        group.environ = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            DATABASE_KEY: f"sqlite:///{database}",
        }
        yield
    else:
        postgres = PostgresServer()
        try:
            seeded_postgres(postgres, cpus)
            group.environ = {
                "DATABASE_URL": postgres.url(),
                DATABASE_KEY: postgres.url().replace("+asyncpg", "+psycopg"),
            }
            yield
        finally:
            postgres.close()


def seeded_postgres(postgres: PostgresServer, cpus: str | None) -> None:
    """Start ``postgres``, pinned to ``cpus`` if given (beside wrk), and seed it as S7's."""
    postgres.start()
    if cpus is not None and postgres.process is not None:
        os.sched_setaffinity(postgres.process.pid, {int(cpus)})
    asyncio.run(seed(postgres.url()))


def capture(run_dir: Path, setup: Setup, group: Group) -> None:
    """Shipshape's home page and SPA index, once: the bytes the same-bytes peers send."""
    files = {"home.html": ("/", {}), "index.html": (f"/app/things/{uuid.uuid4()}", NAVIGATION)}
    try:
        server: Server = ready(launch("shipshape", run_dir, setup))
    except StackError as exc:
        raise SystemExit(f"could not capture the pages the peers send: {exc}") from exc
    try:
        for name, (path, headers) in files.items():
            request = urllib.request.Request(server.url + path, headers=headers)  # noqa: S310
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                (run_dir / name).write_bytes(response.read())
    finally:
        server.stop()
    group.environ = {
        BODY_FILE_KEY: str(run_dir / "home.html"),
        INDEX_KEY: str(run_dir / "index.html"),
        STATIC_DIR_KEY: str(DIST),
    }


async def seed(url: str) -> None:
    """A migrated database with ``SEEDED`` things, as the example app makes them."""
    from sqlalchemy import insert

    from app import MIGRATIONS
    from app.models import Base, Thing
    from shipshape.database import Migrations, make_engine

    engine = make_engine(url, timeout=5, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Migrations(MIGRATIONS, Base.metadata).upgrade)
            now = datetime.now(UTC)
            await connection.execute(
                insert(Thing),
                [
                    {
                        "id": uuid.uuid4(), "name": f"Thing number {n:03d}",
                        "name_key": f"thing number {n:03d}",
                        "description": f"The description of thing {n}, <b>escaped</b> & all. " * 3,
                        "created_at": now, "updated_at": now, "version": 1,
                    }
                    for n in range(SEEDED)
                ],
            )  # fmt: skip
    finally:
        await engine.dispose()
