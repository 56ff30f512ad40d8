"""Shared fixtures: an isolated environment, the example app and its client."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from quart import Quart
from quart.testing import QuartClient

from app import MIGRATIONS, create_app
from app.models import Base
from shipshape.config import ENV_NAMES
from shipshape.database import Migrations, make_engine
from tests.servers import PostgresServer, RedisServer

# The concrete client: quart.typing's protocol declares `open(json=...)` without
# its default, so calls through the protocol would have to pass a JSON body.
Client = QuartClient

CSRF_INPUT_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = "s" * 8 + "0123456789abcdef0123456789abcdef"  # 40 bytes, test only


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[None]:
    """No test sees the developer's or CI's APP_ENV, SECRET_KEY, PORT and so on, and
    none touches the developer's database: every app, and every process a test
    starts, gets a migrated SQLite copy of its own unless the test says otherwise."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    yield


#: A default limit no test reaches, for tests about something else.
UNLIMITED = "100000/second"


async def migrate(url: str) -> None:
    """Apply the example app's migrations to the database at ``url``."""
    engine = make_engine(url, timeout=5, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Migrations(MIGRATIONS, Base.metadata).upgrade)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once; each test gets a copy (a copy costs less
    than running the migrations again)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    asyncio.run(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session", autouse=True)
def session_database(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated SQLite copy in ``DATABASE_URL`` for the whole session, so that a
    server a module-scoped fixture starts never touches the project's own
    ``instance/app.db``; each test then gets a copy of its own (``clean_environ``)."""
    path = tmp_path_factory.mktemp("session-db") / "app.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "app.db"  # not in tmp_path: tests list that
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session."""
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A migrated database on the session's server, made once."""
    asyncio.run(migrate(postgres_server.url()))
    return postgres_server.url()


@pytest.fixture
async def postgres_url(postgres_template: str) -> str:
    """The session's migrated PostgreSQL database, emptied for this test."""
    connection = await asyncpg.connect(postgres_template.replace("+asyncpg", ""))
    try:
        await connection.execute("TRUNCATE things")
    finally:
        await connection.close()
    return postgres_template


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The app's database; modules about data run on both engines (``on_both_engines``)."""
    return sqlite_url


#: Use as a module's ``database_url`` fixture to run each of its tests on SQLite and PostgreSQL.
@pytest.fixture(params=["sqlite", "postgres"])
def on_both_engines(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def app_config(database_url: str) -> dict[str, Any]:
    # Tests send bursts; the default limits have tests of their own.
    return {"APP_ENV": "testing", "RATELIMIT_DEFAULT": UNLIMITED, "DATABASE_URL": database_url}


@pytest.fixture
async def app(app_config: dict[str, Any]) -> AsyncIterator[Quart]:
    application = create_app(app_config)
    async with application.test_app():
        yield application


def client_of(app: Quart) -> Client:
    return cast(Client, app.test_client())


@pytest.fixture
def client(app: Quart) -> Client:
    return client_of(app)


def csrf_from(html: str) -> str:
    match = CSRF_INPUT_RE.search(html)
    if match is None:
        raise AssertionError("no csrf_token field in the page")
    return match[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server (or valkey-server) for the session."""
    server = RedisServer()
    server.start()
    yield server
    server.close()
