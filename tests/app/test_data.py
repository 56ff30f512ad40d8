"""The data layer (shipshape.database) under the example app: transactions,
migrations on both engines, readiness, check --deploy and the db commands."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from quart import Quart
from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import MIGRATIONS, PROJECT_ROOT, create_app
from app.models import Base, Thing
from shipshape import database
from shipshape.config import Settings
from shipshape.database import (
    MIGRATION_LOCK,
    BrokenForeignKeysError,
    IncompleteStreamError,
    Migrations,
    RowStream,
    current_database,
    current_session,
    is_unreachable,
    make_engine,
    resolve_url,
)
from tests.conftest import UNLIMITED, Client, client_of, migrate
from tests.servers import PostgresServer


async def things_in(url: str) -> int:
    engine = make_engine(url, timeout=5, pool_size=1)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(Thing)) or 0)
    finally:
        await engine.dispose()


def add_routes(app: Quart) -> None:
    """Views that write, then fail or forget to commit."""

    @app.post("/_test/write-then-fail")
    async def write_then_fail() -> str:
        session = await current_session()
        session.add(Thing(name="first", name_key="first"))
        await session.flush()  # the row is written inside the transaction...
        session.add(Thing(name="second", name_key="second"))
        await session.flush()
        raise RuntimeError("...and the view fails before it commits")

    @app.post("/_test/forget-to-commit")
    async def forget() -> str:
        session = await current_session()
        session.add(Thing(name="lost", name_key="lost"))
        await session.flush()
        return "ok"

    @app.get("/_test/asyncpg-unwrapped/<kind>")
    async def asyncpg_unwrapped(kind: str) -> str:
        """What a stream's start raised when PostgreSQL killed its connection: asyncpg's
        own errors, which SQLAlchemy had not wrapped."""
        if kind == "gone":
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 16; another operation (2) is in progress"
        )

    @app.get("/_test/own-errors/<kind>")
    async def own_errors(kind: str) -> str:
        if kind == "file":
            Path("/nonexistent/shipshape/x").read_text()
        elif kind == "timeout":
            await asyncio.wait_for(asyncio.sleep(1), 0.001)
        else:
            session = await current_session()
            await session.execute(text("SELEC 1"))  # a bug in the app's SQL
        return "unreachable"

    @app.get("/_test/terminate")
    async def terminate() -> str:
        """PostgreSQL ends this request's connection mid-query (57P01, "admin shutdown")."""
        session = await current_session()
        await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return "unreachable"

    @app.post("/_test/commit")
    async def commit() -> str:
        session = await current_session()
        session.add(Thing(name="kept", name_key="kept"))
        await current_database().commit()
        return "ok"


@pytest.fixture
def database_url(on_both_engines: str) -> str:
    return on_both_engines


@pytest.fixture
def app_config(database_url: str) -> dict[str, Any]:
    return {
        "APP_ENV": "testing",
        "RATELIMIT_DEFAULT": UNLIMITED,
        "DATABASE_URL": database_url,
        "SHIPSHAPE_CSRF": False,  # these routes are about transactions
        "PROPAGATE_EXCEPTIONS": False,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Quart]:
    application = create_app(app_config)
    add_routes(application)
    yield application


async def test_one_transaction_per_request_nothing_is_half_saved(
    app: Quart, database_url: str
) -> None:
    async with app.test_app():
        client = client_of(app)
        assert (await client.post("/_test/write-then-fail")).status_code == 500
        assert await things_in(database_url) == 0  # neither row, though both were flushed
        assert (await client.post("/_test/forget-to-commit")).status_code == 200
        assert await things_in(database_url) == 0  # not committed: rolled back at the end
        assert (await client.post("/_test/commit")).status_code == 200
        assert await things_in(database_url) == 1


@pytest.mark.parametrize("kind", ["gone", "mid-operation"])
async def test_asyncpgs_own_errors_of_a_lost_connection_are_503s(app: Quart, kind: str) -> None:
    """Regression (PostgreSQL probe): a CSV download whose connection was killed as it
    started answered 500 with a traceback: asyncpg's errors reached no handler."""
    async with app.test_app():
        response = await client_of(app).get(f"/_test/asyncpg-unwrapped/{kind}")
    assert response.status_code == 503


@pytest.mark.parametrize("kind", ["file", "timeout", "sql"])
async def test_the_apps_own_errors_stay_500s_not_database_503s(app: Quart, kind: str) -> None:
    """An OSError, a TimeoutError or a SQL syntax error of the app's own is a bug to see."""
    async with app.test_app():
        response = await client_of(app).get(f"/_test/own-errors/{kind}")
    assert response.status_code == 500


async def test_a_connection_postgres_ends_mid_query_is_a_503_then_recovers(
    postgres_url: str,
) -> None:
    app = create_app(
        {"APP_ENV": "testing", "RATELIMIT_DEFAULT": UNLIMITED, "DATABASE_URL": postgres_url}
    )
    add_routes(app)
    async with app.test_app():
        client = client_of(app)
        ended = await client.get("/_test/terminate", headers={"Accept": "application/json"})
        assert ended.status_code == 503
        assert (await ended.get_json())["code"] == "database_unavailable"
        assert (await client.get("/things/")).status_code == 200  # a new connection


async def empty_database(
    database_url: str, tmp_path: Path, postgres_server: PostgresServer, name: str
) -> str:
    """A new, empty database on the engine of ``database_url``."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"
    return await postgres_server.fresh_database(name)


async def test_migrations_run_from_an_empty_database_and_back(
    database_url: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = await empty_database(database_url, tmp_path, postgres_server, "empty_db")
    migrations = Migrations(MIGRATIONS, Base.metadata)
    engine = make_engine(url, timeout=5, pool_size=1)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(migrations.current) == set()
            reason = await connection.run_sync(migrations.behind)
            assert reason == "the database has no migrations applied; the code needs 0002"
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade)
        async with engine.connect() as connection:
            assert await connection.run_sync(migrations.behind) is None
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            assert "things" in tables
            # The migrations build exactly what the models describe: Alembic's own
            # autogenerate comparison finds nothing to add, drop or alter.
            differences = await connection.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
            assert differences == []
        async with engine.begin() as connection:
            await connection.run_sync(migrations.downgrade, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            assert "things" not in tables
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade)
    finally:
        await engine.dispose()


async def test_migration_0002_rekeys_names_and_keeps_look_alikes_that_existed(
    database_url: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """0002 gives every name its normalised key; of two things that existed before and
    read the same, the one that holds the new key already, else the older, gets it, and
    the other keeps its own: both stay."""
    url = await empty_database(database_url, tmp_path, postgres_server, "rekey_db")
    migrations = Migrations(MIGRATIONS, Base.metadata)
    engine = make_engine(url, timeout=5, pool_size=1)
    names = ["Café", "Cafe\u0301", "\u212bngstr\u00f6m", "ﬁle", "Pla\u200bin", "Plain",
             "\ufdfa" * 15]  # fmt: skip
    things = Base.metadata.tables["things"]
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade, "0001")
            now = datetime.now(UTC)
            await connection.execute(
                insert(things),
                [{"id": uuid.uuid4(), "name": n, "name_key": n.casefold(), "description": "",
                  "created_at": now.replace(microsecond=i), "updated_at": now, "version": 1}
                 for i, n in enumerate(names)],
            )  # fmt: skip

        async def keys() -> dict[str, str]:
            async with engine.connect() as connection:
                rows = await connection.execute(select(things.c.name, things.c.name_key))
                return {row.name: row.name_key for row in rows}

        rekeyed = {
            "Café": "café",
            "Cafe\u0301": "cafe\u0301",  # the later look-alike keeps its key
            "\u212bngstr\u00f6m": "\u00e5ngstr\u00f6m",
            "ﬁle": "file",
            # Regression (review): the older one keeps its key when the later already
            # holds the new one (the docs said the older always got it).
            "Pla\u200bin": "pla\u200bin",
            "Plain": "plain",
            "\ufdfa" * 15: "\ufdfa" * 15,  # written out, too long for the column
        }
        for _ in range(2):  # there and back, twice
            async with engine.begin() as connection:
                await connection.run_sync(migrations.upgrade)
            assert await keys() == rekeyed
            async with engine.begin() as connection:
                await connection.run_sync(migrations.downgrade, "0001")
            assert await keys() == {n: n.casefold() for n in names}
    finally:
        await engine.dispose()


def revision(number: str, down: str | None, upgrade: str, downgrade: str = "pass") -> str:
    """The source of an Alembic revision file with these two functions' bodies."""

    def body(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip(), "    ")

    return (
        f"import sqlalchemy as sa\nfrom alembic import op\n\nrevision = {number!r}\n"
        f"down_revision = {down!r}\n\n\ndef upgrade():\n{body(upgrade)}\n\n\n"
        f"def downgrade():\n{body(downgrade)}\n"
    )


def migrations_in(folder: Path, revisions: dict[str, str]) -> Migrations:
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text((MIGRATIONS / "env.py").read_text())
    for name, source in revisions.items():
        (folder / "versions" / name).write_text(source)
    return Migrations(folder, Base.metadata)


HALFWAY_REVISIONS = {
    "0001_first.py": revision(
        "0001",
        None,
        """
        op.create_table("first", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("INSERT INTO first (id) VALUES (1)")
        """,
        'op.drop_table("first")',
    ),
    "0002_second.py": revision(
        "0002",
        "0001",
        """
        op.create_table("second", sa.Column("id", sa.Integer, primary_key=True))
        op.add_column("first", sa.Column("label", sa.Text))
        raise RuntimeError("the migration fails halfway")
        """,
    ),
}


async def test_a_migration_that_fails_halfway_leaves_the_database_as_it_was(
    database_url: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """An upgrade is one transaction on both engines: on SQLite too, where pysqlite
    would otherwise commit each DDL statement by itself and leave ``first`` behind,
    with no revision recorded, so that the next upgrade fails on a table that exists."""
    folder = tmp_path / "migrations"
    migrations = migrations_in(folder, HALFWAY_REVISIONS)
    url = await empty_database(database_url, tmp_path, postgres_server, "halfway_db")
    engine = make_engine(url, timeout=5, pool_size=1)
    try:
        with pytest.raises(RuntimeError, match="fails halfway"):
            async with engine.begin() as connection:
                await connection.run_sync(migrations.upgrade)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            assert set(tables) - {"alembic_version"} == set()
            assert await connection.run_sync(migrations.current) == set()
        # Fixed, the same upgrade runs from the start.
        (folder / "versions" / "0002_second.py").write_text(
            HALFWAY_REVISIONS["0002_second.py"].replace(
                'raise RuntimeError("the migration fails halfway")', ""
            )
        )
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade)
        async with engine.connect() as connection:
            assert await connection.run_sync(migrations.current) == {"0002"}
            assert (await connection.execute(text("SELECT id, label FROM first"))).all() == [
                (1, None)
            ]
        async with engine.begin() as connection:  # and back, in one transaction too
            await connection.run_sync(migrations.downgrade, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            assert set(tables) - {"alembic_version"} == {"second"}  # 0002 drops nothing
    finally:
        await engine.dispose()


FOREIGN_KEY_REVISIONS = {
    "0001_parent_child.py": revision(
        "0001",
        None,
        """
        op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("name", sa.Text, nullable=True))
        op.create_table("child", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("parent_id", sa.Integer,
                                  sa.ForeignKey("parent.id", ondelete="CASCADE"), nullable=False))
        op.execute("INSERT INTO parent (id, name) VALUES (1, 'one')")
        op.execute("INSERT INTO child (id, parent_id) VALUES (1, 1)")
        """,
        """
        op.drop_table("child")
        op.drop_table("parent")
        """,
    ),
    # SQLite cannot make a column NOT NULL in place: batch mode copies the table,
    # drops the old one and renames the copy, which with foreign keys on would
    # delete the child row through its ON DELETE CASCADE.
    "0002_rebuild_parent.py": revision(
        "0002",
        "0001",
        """
        with op.batch_alter_table("parent") as batch:
            batch.alter_column("name", existing_type=sa.Text, nullable=False)
        """,
        """
        with op.batch_alter_table("parent") as batch:
            batch.alter_column("name", existing_type=sa.Text, nullable=True)
        """,
    ),
}


async def test_a_migration_that_rebuilds_a_table_keeps_the_rows_pointing_at_it(
    database_url: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = await empty_database(database_url, tmp_path, postgres_server, "rebuild_db")
    migrations = migrations_in(tmp_path / "migrations", FOREIGN_KEY_REVISIONS)
    engine = make_engine(url, timeout=5, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade)
        async with engine.connect() as connection:
            assert await connection.run_sync(migrations.current) == {"0002"}
            assert (await connection.execute(text("SELECT id, parent_id FROM child"))).all() == [
                (1, 1)
            ]
            if url.startswith("sqlite"):  # on again for the requests that use the connection
                assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_sqlite_migration_that_leaves_a_row_pointing_at_nothing_changes_nothing(
    tmp_path: Path,
) -> None:
    orphaning = {
        **FOREIGN_KEY_REVISIONS,
        "0002_rebuild_parent.py": FOREIGN_KEY_REVISIONS["0002_rebuild_parent.py"].replace(
            'batch.alter_column("name", existing_type=sa.Text, nullable=False)',
            'batch.alter_column("name", existing_type=sa.Text, nullable=False)\n'
            '    op.execute("DELETE FROM parent")',
        ),
    }
    migrations = migrations_in(tmp_path / "migrations", orphaning)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'orphans.db'}", timeout=5, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade, "0001")
        with pytest.raises(BrokenForeignKeysError, match=r"1 row\(s\) .* 1 in child, into parent"):
            async with engine.begin() as connection:
                await connection.run_sync(migrations.upgrade)
        async with engine.connect() as connection:
            assert await connection.run_sync(migrations.current) == {"0001"}
            assert (await connection.execute(text("SELECT id FROM parent"))).all() == [(1,)]
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        # Migrations must come first on their connection: after an INSERT, SQLite's
        # transaction has begun and foreign keys could not be turned off for them.
        with pytest.raises(RuntimeError, match="run SQLite migrations first"):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO parent (id, name) VALUES (2, 'two')"))
                await connection.run_sync(migrations.upgrade)
        async with engine.connect() as connection:
            assert await connection.run_sync(migrations.current) == {"0001"}
            assert (await connection.execute(text("SELECT count(*) FROM parent"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_rows_that_pointed_at_nothing_before_are_not_blamed_on_the_migrations(
    tmp_path: Path,
) -> None:
    migrations = migrations_in(tmp_path / "migrations", FOREIGN_KEY_REVISIONS)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", timeout=5, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade, "0001")
        async with engine.connect() as connection:  # a row orphaned long ago, by hand
            await connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            await connection.exec_driver_sql("INSERT INTO child (id, parent_id) VALUES (2, 99)")
            await connection.commit()
            await connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade)
        async with engine.connect() as connection:
            assert await connection.run_sync(migrations.current) == {"0002"}
            rows = (await connection.execute(text("SELECT id, parent_id FROM child"))).all()
            assert sorted(rows) == [(1, 1), (2, 99)]
    finally:
        await engine.dispose()


async def test_a_stream_reads_at_the_databases_pace_and_always_gives_its_connection_back(
    app: Quart,
) -> None:
    async with app.test_app():
        database = app.extensions["database"]
        names = [f"name {n:03d}" for n in range(250)]
        async with database.engine.begin() as connection:
            await connection.execute(
                insert(Thing),
                [{"id": uuid.uuid4(), "name": n, "name_key": n, "description": "",
                  "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC), "version": 1}
                 for n in names],
            )  # fmt: skip
        pool = database.engine.pool
        batches: list[int] = []

        def encode(rows: Any) -> bytes:
            batches.append(len(rows))
            return "".join(f"{row.name}\n" for row in rows).encode()

        async def stream() -> RowStream:
            stream: RowStream = await database.stream(
                select(Thing.name).order_by(Thing.name_key), encode, head=b"names\n", batch=100
            )
            return stream

        expected = "\n".join(["names", *names, ""]).encode()
        body = await stream()
        assert pool.checkedout() == 1  # the query ran before the first byte is asked for
        assert await body.__anext__() == b"names\n"
        assert b"names\n" + b"".join([chunk async for chunk in body]) == expected
        assert batches == [100, 100, 50]
        assert pool.checkedout() == 0
        # A client that reads nothing for a while does not hold the connection.
        slow = await stream()
        await slow.reading
        assert pool.checkedout() == 0
        assert b"".join([chunk async for chunk in slow]) == expected
        # Cut short after the first chunk: the reading stops, the connection is back.
        batches.clear()
        cut_short = await stream()
        await cut_short.__anext__()
        await cut_short.aclose()
        assert pool.checkedout() == 0
        assert len(batches) <= 1
        with pytest.raises(StopAsyncIteration):
            await cut_short.__anext__()
        never_read = await stream()  # a response that is never sent: aclose is never called
        await never_read.reading
        assert pool.checkedout() == 0
        closed_twice = await stream()
        await closed_twice.aclose()
        await closed_twice.aclose()
        assert pool.checkedout() == 0
        # Serving stops only after the streams still reading have given theirs back,
        # and a body whose rows were not all read then fails instead of ending short.
        counting = text(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000)"
            " SELECT x FROM n"
        )
        left_reading = await database.stream(counting, lambda rows: b"x" * len(rows), batch=10)
        await app.shutdown()
        assert left_reading.reading.done()
        assert pool.checkedout() == 0
        with pytest.raises(IncompleteStreamError, match="stopped before its last row"):
            async for _ in left_reading:
                pass
        await app.startup()  # for test_app's own shutdown


async def test_readiness_reports_a_database_that_is_behind(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": url})
    async with app.test_app():
        response = await client_of(app).get("/readyz")
        body = await response.get_json()
    assert response.status_code == 503
    assert body["checks"]["database"]["error"] == (
        "MigrationsBehindError: the database has no migrations applied; the code needs 0002"
    )


async def test_libpq_sslmode_and_a_unix_socket_url_connect(postgres_server: PostgresServer) -> None:
    """Regression (PostgreSQL probe): ``?sslmode=`` passed the settings check and then
    failed every connection with a TypeError; a unix socket's URL was refused."""
    port, folder = postgres_server.port, postgres_server.folder
    for raw in (
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres?sslmode=prefer",
        f"postgresql+asyncpg://postgres@/postgres?host={folder}&port={port}",
    ):
        url = Settings.from_mapping({"DATABASE_URL": raw}).database_url
        engine = make_engine(url, timeout=5, pool_size=1)
        try:
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        finally:
            await engine.dispose()


async def _terminated(url: str, pid: int) -> None:
    """End PostgreSQL backend ``pid`` from another connection, and wait until it is gone."""
    admin = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        running = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
        for _ in range(500):
            if not await admin.fetchval(running, pid):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"backend {pid} still runs")
    finally:
        await admin.close()


async def test_a_pooled_connection_is_pinged_only_after_it_sat_unused(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pool_pre_ping's round trip at every checkout cost a third of the list's database
    work; now only a connection unused for PING_AFTER_IDLE is pinged."""
    engine = make_engine(postgres_url, timeout=5, pool_size=1)
    pings: list[object] = []
    do_ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return do_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    try:
        for _ in range(10):  # back to back, as under load: never pinged
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert pings == []
        await asyncio.sleep(database.PING_AFTER_IDLE + 0.1)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        assert len(pings) == 1
    finally:
        await engine.dispose()


async def test_a_connection_dropped_while_unused_is_replaced_before_a_request_uses_it(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url, timeout=5, pool_size=1)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
        await _terminated(postgres_url, first)  # a restart, a proxy's idle timeout
        await asyncio.sleep(database.PING_AFTER_IDLE + 0.1)
        async with engine.connect() as connection:  # no error: the ping found it gone
            assert await connection.scalar(text("SELECT pg_backend_pid()")) not in (first, None)
    finally:
        await engine.dispose()


async def test_a_connection_dropped_within_the_window_fails_one_statement_then_recovers(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bargain, as documented: the next statement finds the loss, and the pool is new."""
    monkeypatch.setattr(database, "PING_AFTER_IDLE", 60.0)  # however slow this machine is
    engine = make_engine(postgres_url, timeout=5, pool_size=2)
    try:
        async with engine.connect() as one, engine.connect() as two:
            pids = [await c.scalar(text("SELECT pg_backend_pid()")) for c in (one, two)]
        for pid in pids:
            await _terminated(postgres_url, pid)
        with pytest.raises(DBAPIError) as lost:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert lost.value.connection_invalidated and is_unreachable(lost.value)
        for _ in range(2):  # the other pooled connection went with the first: no second error
            async with engine.connect() as connection, engine.connect() as other:
                assert await connection.scalar(text("SELECT pg_backend_pid()")) not in pids
                assert await other.scalar(text("SELECT pg_backend_pid()")) not in pids
    finally:
        await engine.dispose()


async def test_two_upgrades_at_once_both_succeed_one_after_the_other(
    postgres_server: PostgresServer,
) -> None:
    """Regression (PostgreSQL probe): two hosts starting together each ran the migrations,
    and one failed on a type the other had just made (UniqueViolation), so it never served."""
    for attempt in range(3):  # the race was lost about one time in two
        url = await postgres_server.fresh_database(f"racing_{attempt}")
        apps = [create_app({"APP_ENV": "testing", "DATABASE_URL": url}) for _ in range(2)]
        await asyncio.gather(*(app.extensions["database"].upgrade() for app in apps))
        engine = make_engine(url, timeout=5, pool_size=1)
        try:
            async with engine.connect() as connection:
                migrations = Migrations(MIGRATIONS, Base.metadata)
                assert await connection.run_sync(migrations.behind) is None
        finally:
            await engine.dispose()


async def test_an_upgrade_waits_for_the_lock_longer_than_the_command_timeout(
    postgres_server: PostgresServer,
) -> None:
    """Regression (review): the lock was waited for in one statement, which the driver's
    command timeout cut off behind any migration longer than it (5 s by default)."""
    url = await postgres_server.fresh_database("held_lock")
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": url, "SHIPSHAPE_DB_TIMEOUT": 0.5})
    holder = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        async with holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            upgrade = asyncio.ensure_future(app.extensions["database"].upgrade())
            await asyncio.sleep(1.2)  # "another host's migration", past the 0.5 s timeout
            assert not upgrade.done()
        await upgrade  # the lock is free: it runs
    finally:
        await holder.close()
    assert await things_in(url) == 0  # the table exists


async def test_an_unmigrated_database_answers_503_on_both_engines(
    database_url: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Regression (PostgreSQL probe): PostgreSQL's missing table (42P01) was a 500 with
    a traceback where SQLite's "no such table" was a 503."""
    url = await empty_database(database_url, tmp_path, postgres_server, "unmigrated")
    app = create_app({"APP_ENV": "testing", "RATELIMIT_DEFAULT": UNLIMITED, "DATABASE_URL": url})
    async with app.test_app():
        client = client_of(app)
        api = await client.get("/api/things")
        page = await client.get("/things/")
        download = await client.get("/things/download")
    assert (api.status_code, page.status_code, download.status_code) == (503, 503, 503)
    assert (await api.get_json())["code"] == "database_unavailable"


async def test_development_applies_the_migrations_when_serving_starts(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"
    app = create_app({"APP_ENV": "development", "DATABASE_URL": url})
    async with app.test_app():
        response = await client_of(app).get("/readyz")
        assert (await response.get_json())["checks"]["database"]["ok"] is True
    assert await things_in(url) == 0  # the table exists


async def test_a_wait_for_a_pooled_connection_is_bounded_by_the_timeout(
    database_url: str,
) -> None:
    """``SHIPSHAPE_DB_TIMEOUT`` bounds the wait for a pooled connection on both engines:
    a worker whose connections are all in use answers 503 after it, not 30 s later."""
    engine = make_engine(database_url, timeout=0.3, pool_size=1)
    loop = asyncio.get_running_loop()
    held = []
    try:
        for _ in range(50):  # the pool's size and overflow, then one more
            started = loop.time()
            try:
                held.append(await engine.connect())
            except PoolTimeout as exc:
                assert is_unreachable(exc)  # so the page is the 503
                break
        else:
            pytest.fail("the pool never ran out")
        assert 0.3 <= loop.time() - started < 2
    finally:
        for connection in held:
            await connection.close()
        await engine.dispose()


@pytest.mark.filterwarnings("ignore:Selection of the StaticPool:DeprecationWarning")
@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:",
     "sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true"],
)  # fmt: skip
async def test_an_in_memory_sqlite_database_has_no_pool_to_time_out(url: str) -> None:
    engine = make_engine(url, timeout=0.3, pool_size=1)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


def test_a_relative_sqlite_path_is_taken_from_the_instance_folders_parent(
    tmp_path: Path,
) -> None:
    instance = tmp_path / "project" / "instance"
    url = resolve_url("sqlite+aiosqlite:///instance/app.db", str(instance))
    assert url == f"sqlite+aiosqlite:///{instance / 'app.db'}"
    assert instance.is_dir()  # made, so SQLite can create the file
    absolute = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert resolve_url(absolute, str(instance)) == absolute
    assert resolve_url("sqlite+aiosqlite:///:memory:", str(instance)).endswith(":memory:")
    pg = "postgresql+asyncpg://u:p@db/app"
    assert resolve_url(pg, str(instance)) == pg


def test_the_example_app_keeps_sqlite_in_the_projects_instance_folder() -> None:
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": "sqlite+aiosqlite:///instance/x.db"})
    assert app.extensions["database"].url == (
        f"sqlite+aiosqlite:///{PROJECT_ROOT / 'instance' / 'x.db'}"
    )


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quart", "--app", "app", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "APP_ENV": "production", "SECRET_KEY": "9f2c" * 16,
             "ALLOWED_HOSTS": "example.com", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "url",  # (DATABASE_URL refuses sqlite+aiosqlite:// itself: it names no path)
    ["sqlite+aiosqlite:///:memory:",
     "sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true"],
)  # fmt: skip
def test_check_deploy_refuses_a_database_in_memory(url: str) -> None:
    deploy = run_cli("check", "--deploy", DATABASE_URL=url)
    assert "shipshape.E019  the database is in memory" in deploy.stdout
    assert "fix: set DATABASE_URL to a SQLite file or a PostgreSQL server" in deploy.stdout
    assert "shipshape.E015" not in deploy.stdout  # not "behind": there is nothing to keep
    assert deploy.returncode == 1


def test_the_db_commands_upgrade_report_and_downgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    behind = run_cli("db", "status", DATABASE_URL=url)
    assert behind.returncode == 2
    assert "the database has no migrations applied; the code needs 0002" in behind.stderr
    assert "Traceback" not in behind.stderr

    deploy = run_cli("check", "--deploy", DATABASE_URL=url)
    assert "shipshape.E015  the database is behind the code's migrations" in deploy.stdout
    assert "fix: run `quart --app app db upgrade` (make db-upgrade)" in deploy.stdout
    assert deploy.returncode == 1

    upgraded = run_cli("db", "upgrade", DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database upgraded to head" in upgraded.stdout
    assert run_cli("db", "status", DATABASE_URL=url).stdout.strip() == "the database is up to date"
    deploy = run_cli("check", "--deploy", DATABASE_URL=url)
    assert "shipshape.E01" not in deploy.stdout

    for command in ("upgrade", "downgrade"):  # Regression: Alembic's 100-line traceback
        unknown = run_cli("db", command, "nonexistent", DATABASE_URL=url)
        assert unknown.returncode == 2
        assert unknown.stderr.strip().splitlines()[-1] == (
            "Error: Can't locate revision identified by 'nonexistent'"
        )
        assert "Traceback" not in unknown.stderr

    downgraded = run_cli("db", "downgrade", "base", DATABASE_URL=url)
    assert downgraded.returncode == 0, downgraded.stderr
    assert run_cli("db", "status", DATABASE_URL=url).returncode == 2


def assert_commands_name_an_unreachable_database(url: str) -> None:
    """``db upgrade`` says so in one line, exit 2; ``check --deploy`` reports E014."""
    upgrade = run_cli("db", "upgrade", DATABASE_URL=url)
    assert upgrade.returncode == 2
    assert upgrade.stderr.startswith("Error: the database cannot be reached:")
    assert "Traceback" not in upgrade.stderr
    deploy = run_cli("check", "--deploy", DATABASE_URL=url)
    assert "shipshape.E014  the database cannot be reached" in deploy.stdout
    assert "Traceback" not in deploy.stdout + deploy.stderr


def test_the_db_commands_and_check_name_an_unreachable_database() -> None:
    # Port 9: discard, never listening.
    assert_commands_name_an_unreachable_database("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")


#: What a stream raises when PostgreSQL shuts down under it, depending on timing: asyncpg's
#: own errors come through SQLAlchemy's server-side cursor unwrapped.
STREAM_FAILURES = (
    DBAPIError,
    asyncpg.PostgresError,
    asyncpg.exceptions.InternalClientError,
)


async def test_an_unreachable_database_is_a_503_page_or_json_then_recovers() -> None:
    """A server of its own, stopped and started under the app."""
    server = PostgresServer()
    server.start()
    try:
        await migrate(server.url())
        app = create_app(
            {"APP_ENV": "testing", "DATABASE_URL": server.url(), "RATELIMIT_DEFAULT": UNLIMITED,
             "SHIPSHAPE_DB_TIMEOUT": 1}
        )  # fmt: skip
        handler = Recorder()
        records = handler.records
        logging.getLogger("shipshape.database").addHandler(handler)
        try:
            async with app.test_app():
                client: Client = client_of(app)
                assert (await client.get("/things/")).status_code == 200
                server.stop()
                page = await client.get("/things/")
                html = await page.get_data(as_text=True)
                assert page.status_code == 503
                assert page.headers["Retry-After"] == "5"
                assert "The database is unavailable right now; please try again" in html
                api = await client.get("/api/things")
                assert api.status_code == 503 and api.headers["Retry-After"] == "5"
                assert (await api.get_json())["code"] == "database_unavailable"
                token = (await (await client.get("/api/csrf-token")).get_json())["csrf_token"]
                write = await client.post(
                    "/api/things", json={"name": "x"}, headers={"X-CSRF-Token": token}
                )
                assert write.status_code == 503
                assert "Nothing was saved" in (await write.get_json())["message"]
                download = await client.get("/things/download")  # before any CSV is sent
                assert download.status_code == 503
                assert download.headers["Content-Type"].startswith("text/html")
                ready = await (await client.get("/readyz")).get_json()
                assert ready["checks"]["database"]["ok"] is False
                server.start()
                assert (await client.get("/things/")).status_code == 200  # by itself
                assert (await client.get("/api/things")).status_code == 200
                assert (await client.get("/things/download")).status_code == 200
                # A stream the database leaves halfway raises (the server then breaks
                # the connection: a failed download, not a short file), and lets go.
                database = app.extensions["database"]
                numbers = await database.stream(
                    text("SELECT generate_series(1, 10000000) AS n"), lambda rows: b"x", batch=10
                )
                assert set(await numbers.__anext__()) == {ord("x")}
                await asyncio.to_thread(server.stop)  # the reading goes on meanwhile
                with pytest.raises(STREAM_FAILURES):
                    for _ in range(1_000_000):  # past the rows the driver has buffered
                        await numbers.__anext__()
                assert database.engine.pool.checkedout() == 0
                with pytest.raises(StopAsyncIteration):
                    await numbers.__anext__()
                server.start()
        finally:
            logging.getLogger("shipshape.database").removeHandler(handler)
        warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
        assert len(warnings) == 5  # one line per failed request, and the stream's
        assert all(m.startswith("database unavailable: ") for m in warnings[:4])
        # asyncpg says ConnectionDoesNotExistError when the shutdown reaches it during
        # a fetch, and InternalClientError when it arrives between two.
        assert warnings[4].startswith(
            ("database unavailable mid-stream: ", "stream stopped mid-stream: cannot switch")
        )
        assert all(r.exc_info is None for r in records if r.levelno == logging.WARNING)
    finally:
        server.close()


@pytest.mark.parametrize("fault", ["no such database", "no such role"])
async def test_a_database_postgresql_will_not_serve_is_a_503_and_one_line(
    postgres_server: PostgresServer, fault: str
) -> None:
    """A login PostgreSQL refuses (SQLSTATE 28: a rotated password, a role that is
    gone) and a database that does not exist (3D000) are outages too: a 503 and one
    warning line each, never a 500 with a traceback, and the commands name the cause
    in one line."""
    port = postgres_server.port
    url = {
        "no such database": postgres_server.url("nosuchdb"),
        "no such role": f"postgresql+asyncpg://nosuchrole@127.0.0.1:{port}/postgres",
    }[fault]
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": url, "RATELIMIT_DEFAULT": UNLIMITED})
    handler = Recorder()
    logging.getLogger("shipshape.database").addHandler(handler)
    try:
        async with app.test_app():
            client: Client = client_of(app)
            api = await client.get("/api/things")
            assert api.status_code == 503
            assert (await api.get_json())["code"] == "database_unavailable"
            page = await client.get("/things/")
            assert page.status_code == 503
            assert "Traceback" not in await page.get_data(as_text=True)
    finally:
        logging.getLogger("shipshape.database").removeHandler(handler)
    warnings = [r for r in handler.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(r.exc_info is None for r in warnings)
    assert not [r for r in handler.records if r.levelno >= logging.ERROR]
    assert_commands_name_an_unreachable_database(url)


def _immutable(path: Path, on: bool) -> None:
    """``chattr ±i``: read-only even for root, which file modes are not (tests run as root)."""
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)


async def test_a_sqlite_file_made_read_only_or_deleted_is_reported_and_recovered_from(
    tmp_path: Path,
) -> None:
    """Regression (newcomer run): a worker that opened the file while it was read-only
    stayed read-only after it was writable again (every write a 503), and /readyz said
    ready; a deleted file took writes into the unlinked file, with 201s."""
    from tests.app.test_things_api import csrf_headers

    file = tmp_path / "app.db"
    url = f"sqlite+aiosqlite:///{file}"
    app = create_app(
        {"APP_ENV": "development", "DATABASE_URL": url, "RATELIMIT_DEFAULT": UNLIMITED}
    )
    async with app.test_app():
        client = client_of(app)
        headers = await csrf_headers(client)
        database = app.extensions["database"]
        await database.engine.dispose()  # the next connection opens the file as it is then
        _immutable(file, True)
        try:
            refused = await client.post("/api/things", json={"name": "One"}, headers=headers)
            assert refused.status_code == 503
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert (await ready.get_json())["checks"]["database"]["error"] == (
                f"DatabaseFileError: the database file {file} cannot be written"
            )
        finally:
            _immutable(file, False)
        # Recovered by itself, without a restart: a connection opened while the file was
        # read-only (by the readiness probe above) fails one more write, which drops them all.
        statuses = [
            (await client.post("/api/things", json={"name": name}, headers=headers)).status_code
            for name in ("Two", "Three")
        ]
        assert statuses in ([201, 201], [503, 201]), statuses
        assert (await client.get("/readyz")).status_code == 200


async def _names(client: Client) -> list[str]:
    listed = await client.get("/api/things?sort=created")
    assert listed.status_code == 200, await listed.get_data(as_text=True)
    return [item["name"] for item in (await listed.get_json())["items"]]


async def test_a_sqlite_file_deleted_moved_or_replaced_under_the_app_loses_no_write(
    tmp_path: Path,
) -> None:
    """Regression (probe): deleted or moved under the running app, the pool's connections
    went on writing the unlinked file, answering 201 for writes that were lost. Gone or
    replaced, it is a 503 that saves nothing; moved back, it is served again by itself;
    a backup moved into place is opened by a restart (not before: review, a connection
    to it would share the old file's -wal and -shm with another worker's)."""
    from tests.app.test_things_api import csrf_headers

    file = tmp_path / "app.db"
    app = create_app(
        {
            "APP_ENV": "development",
            "DATABASE_URL": f"sqlite+aiosqlite:///{file}",
            "RATELIMIT_DEFAULT": UNLIMITED,
        }
    )

    @app.post("/_test/write-while-deleted")
    async def write_while_deleted() -> str:
        """A request that read, then took its time (a slow upload) while the file went."""
        session = await current_session()
        session.add(Thing(name="Slow"))
        file.unlink()
        await current_database().commit()
        return "saved"

    replaced = (
        f"DatabaseFileError: the database file {file} was replaced under the running app; "
        "restart the app to open the new one"
    )
    async with app.test_app():
        client = client_of(app)
        headers = await csrf_headers(client)

        async def post(name: str) -> int:
            answer = await client.post("/api/things", json={"name": name}, headers=headers)
            if answer.status_code == 503:
                assert (await answer.get_json())["code"] == "database_unavailable"
            return answer.status_code

        async def readiness() -> str | None:
            ready = await client.get("/readyz")
            error: str | None = (await ready.get_json())["checks"]["database"].get("error")
            assert (ready.status_code == 200) is (error is None)
            return error

        assert await post("One") == 201
        with sqlite3.connect(file) as live, sqlite3.connect(tmp_path / "backup.db") as copy:
            live.backup(copy)  # SQLite's online backup: a file of its own
        copy.close()
        assert await post("Two") == 201

        # Moved away: every request is a 503 and saves nothing; moved back, it is served.
        file.rename(tmp_path / "moved.db")
        assert await post("Three") == 503
        assert (await client.get("/api/things")).status_code == 503
        assert (await client.get("/things/")).status_code == 503
        assert await readiness() == f"DatabaseFileError: the database file {file} is gone"
        (tmp_path / "moved.db").rename(file)
        assert await post("Three") == 201
        assert await _names(client) == ["One", "Two", "Three"]
        assert await readiness() is None

        # Deleted between a request's first read and its commit: a 503 all the same.
        deleted = await client.post("/_test/write-while-deleted", headers=headers)
        assert deleted.status_code == 503
        # The old file's -wal stays at the path (SQLite keeps it for a file that moved),
        # emptied into the old file, or a file opened there later would read its pages.
        assert (tmp_path / "app.db-wal").stat().st_size == 0
        assert await post("Four") == 503
        assert await readiness() == f"DatabaseFileError: the database file {file} is gone"
        assert not file.exists()  # no empty file made in its place

        # A backup moved into place: a 503 until the app restarts.
        (tmp_path / "backup.db").rename(file)
        assert await post("Five") == 503
        assert await readiness() == replaced

    async with app.test_app():  # the restart
        client = client_of(app)
        headers = await csrf_headers(client)
        assert await _names(client) == ["One"]
        created = await client.post("/api/things", json={"name": "Five"}, headers=headers)
        assert created.status_code == 201
    with sqlite3.connect(file) as reader:
        rows = reader.execute("SELECT name FROM things ORDER BY created_at").fetchall()
    reader.close()
    assert rows == [("One",), ("Five",)]  # in the file at the path, and none of the old
