"""shipshape.sqlite: aiosqlite with one hand-off per statement, on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shipshape.database import make_engine
from shipshape.sqlite import READ_BUDGET, OneHopConnection, WatchedFile

SCHEMA = (
    "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, size REAL)",
    "INSERT INTO item (name, size) VALUES ('a', 1.5), ('b', NULL), ('c', 3)",
)


@pytest.fixture
async def ours(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ours.db'}", timeout=5, pool_size=1)
    yield engine
    await engine.dispose()


@pytest.fixture
async def theirs(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """SQLAlchemy's own aiosqlite adapter, for comparison."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'theirs.db'}")
    yield engine
    await engine.dispose()


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls queued to aiosqlite's thread, by name."""
    calls: list[str] = []
    queue = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Callable[..., Any], *a: Any, **k: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await queue(self, fn, *a, **k)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def fill(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for statement in SCHEMA:
            await connection.execute(text(statement))


async def outcomes(connection: AsyncConnection) -> list[Any]:
    """What SQLAlchemy reads back from a range of statements."""
    seen: list[Any] = []
    result = await connection.execute(text("SELECT id, name, size FROM item ORDER BY id"))
    seen += [list(result.keys()), [tuple(row) for row in result]]
    result = await connection.execute(text("INSERT INTO item (name) VALUES ('d')"))
    seen.append(result.lastrowid)
    result = await connection.execute(text("UPDATE item SET size = 0 WHERE size IS NOT NULL"))
    seen.append(result.rowcount)
    result = await connection.execute(
        text("INSERT INTO item (name, size) VALUES (:name, :size) RETURNING id, name"),
        {"name": "e<'\"", "size": 2},
    )
    seen.append([tuple(row) for row in result])
    result = await connection.execute(
        text("INSERT INTO item (name) VALUES (:name)"), [{"name": "f"}, {"name": "g"}]
    )
    seen.append(result.rowcount)
    seen.append((await connection.execute(text("SELECT count(*) FROM item"))).scalar_one())
    result = await connection.execute(text("DELETE FROM item WHERE name IN ('f', 'g', 'zz')"))
    seen.append(result.rowcount)
    for bad, error in (
        ("INSERT INTO item (name) VALUES ('a')", exc.IntegrityError),
        ("SELEC 1", exc.OperationalError),
        ("SELECT * FROM nowhere", exc.OperationalError),
    ):
        with pytest.raises(error) as raised:
            await connection.execute(text(bad))
        seen.append((type(raised.value.orig), str(raised.value.orig)))
    return seen


async def test_statements_read_back_as_with_sqlalchemys_adapter(
    ours: AsyncEngine, theirs: AsyncEngine
) -> None:
    found = []
    for engine in (ours, theirs):
        await fill(engine)
        async with engine.connect() as connection:
            found.append(await outcomes(connection))
    assert found[0] == found[1]
    assert found[0][5] == 2  # executemany's rowcount
    assert found[0][-3][0] is sqlite3.IntegrityError
    async with ours.connect() as connection:
        assert isinstance(connection.sync_connection.connection.dbapi_connection, OneHopConnection)  # type: ignore[union-attr]


async def test_a_read_makes_no_hand_off_and_its_end_none(
    ours: AsyncEngine, theirs: AsyncEngine, hand_offs: list[str]
) -> None:
    for engine in (ours, theirs):
        await fill(engine)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))  # the pool's first checkout
        hand_offs.clear()
        async with engine.begin() as connection:  # a request's transaction, then its end
            rows = (await connection.execute(text("SELECT name FROM item"))).all()
        assert [row.name for row in rows] == ["a", "b", "c"]
        if engine is ours:
            assert hand_offs == []  # read on the event loop's thread, and no transaction
        else:  # SQLAlchemy's own: at least a cursor, the statement and its rows
            assert len(hand_offs) > 2


def with_thread_function(engine: AsyncEngine) -> AsyncEngine:
    """``thread()`` in SQL: the id of the thread that runs the statement."""

    def connected(dbapi_connection: OneHopConnection, _record: Any) -> None:
        raw = dbapi_connection._connection._connection
        raw.create_function("thread", 0, threading.get_ident)

    event.listen(engine.sync_engine, "connect", connected)
    return engine


async def test_a_short_read_runs_on_the_loops_thread_and_a_write_in_aiosqlites(
    ours: AsyncEngine, hand_offs: list[str]
) -> None:
    await fill(with_thread_function(ours))
    loop_thread = threading.get_ident()
    async with ours.begin() as connection:
        hand_offs.clear()
        read = (await connection.execute(text("SELECT thread()"))).scalar_one()
        assert read == loop_thread
        assert hand_offs == []
        await connection.execute(text("INSERT INTO item (name, size) VALUES ('t', thread())"))
        assert hand_offs == ["_run_in_thread"]
        written = await connection.execute(text("SELECT size FROM item WHERE name = 't'"))
        assert written.scalar_one() not in (None, loop_thread)


async def test_a_long_read_is_interrupted_and_run_again_in_aiosqlites_thread(
    ours: AsyncEngine, hand_offs: list[str]
) -> None:
    await fill(with_thread_function(ours))
    rows = 200  # a join of 40,000 rows: well over the budget
    async with ours.begin() as connection:
        await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"),
            [{"name": f"n{i}"} for i in range(rows)],
        )
    loop_thread = threading.get_ident()
    long_read = text("SELECT thread(), (SELECT count(*) FROM item AS a, item AS b)")
    async with ours.connect() as connection:
        hand_offs.clear()
        ran_on, pairs = (await connection.execute(long_read)).one()
        assert (rows + 3) ** 2 > READ_BUDGET
        assert pairs == (rows + 3) ** 2  # the whole answer, from the second run
        assert ran_on != loop_thread
        assert hand_offs == ["_run_in_thread"]
        # The budget is the loop's alone: the next short read is back on the loop.
        assert (await connection.execute(text("SELECT thread()"))).scalar_one() == loop_thread


async def test_a_read_is_not_run_on_the_loop_while_the_thread_runs_a_cancelled_statement(
    ours: AsyncEngine,
) -> None:
    """A request cancelled while its statement runs in aiosqlite's thread (a client
    gone) leaves the statement running there; a read on the loop would wait for it."""
    await fill(with_thread_function(ours))
    long = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT count(*) FROM c"
    )
    async with ours.connect() as connection:
        raw: OneHopConnection = (await connection.get_raw_connection()).dbapi_connection  # type: ignore[assignment]
        statement = asyncio.create_task(raw.hand_off(long, None, many=False))
        await asyncio.sleep(0.05)  # the thread has begun it
        statement.cancel()
        with pytest.raises(asyncio.CancelledError):
            await statement
        start = time.monotonic()
        assert raw.read_on_loop("SELECT thread()", None) is None  # left to the thread
        assert time.monotonic() - start < 0.02
        outcome = await raw.hand_off("SELECT thread()", None, many=False)  # after the long one
        assert outcome[3][0][0] != threading.get_ident()
        assert raw.read_on_loop("SELECT thread()", None) is not None  # the thread is done


async def test_a_read_with_a_step_no_budget_stops_runs_in_aiosqlites_thread(
    ours: AsyncEngine, hand_offs: list[str]
) -> None:
    """SQLite counts a whole table in one step (a bare ``count(*)``): short here, but
    unbounded on a big table, so its plan keeps it off the loop."""
    await fill(with_thread_function(ours))
    loop_thread = threading.get_ident()
    async with ours.connect() as connection:
        hand_offs.clear()
        read = text("SELECT thread(), (SELECT count(*) FROM item)")
        assert (await connection.execute(read)).one() != (loop_thread, 3)
        assert hand_offs == ["_run_in_thread"]
        read = text("SELECT thread(), (SELECT count(name) FROM item)")  # a step a row
        assert (await connection.execute(read)).one() == (loop_thread, 3)
        assert hand_offs == ["_run_in_thread"]


async def test_an_in_memory_database_reads_in_aiosqlites_thread() -> None:
    """Its one connection serves every request: a read on the loop could meet another
    request's commit in aiosqlite's thread."""
    engine = with_thread_function(make_engine("sqlite+aiosqlite://", timeout=5, pool_size=1))
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT thread()"))
            assert found.scalar_one() != threading.get_ident()
    finally:
        await engine.dispose()


async def test_a_file_opened_with_check_same_thread_still_reads_on_the_loop(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'checked.db'}?check_same_thread=true"
    engine = with_thread_function(make_engine(url, timeout=5, pool_size=1))
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT thread()"))
            assert found.scalar_one() == threading.get_ident()
    finally:
        await engine.dispose()


async def test_an_apps_own_busy_timeout_is_kept(ours: AsyncEngine) -> None:
    await fill(ours)
    async with ours.connect() as connection:
        await connection.execute(text("PRAGMA busy_timeout = 60000"))
        await connection.execute(text("SELECT count(name) FROM item"))  # on the loop: 0
        await connection.execute(text("INSERT INTO item (name) VALUES ('x')"))
        assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one() == 60000


class Ticker:
    """Counts how often the event loop ran another task (every 10 ms) inside ``with``."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


@asynccontextmanager
async def filled(path: Path, *, timeout: float) -> AsyncIterator[AsyncEngine]:
    """Our engine over a filled file at ``path``, waiting ``timeout`` for a lock."""
    engine = make_engine(f"sqlite+aiosqlite:///{path}", timeout=timeout, pool_size=1)
    try:
        await fill(engine)
        yield engine
    finally:
        await engine.dispose()


async def test_a_read_never_waits_for_a_lock_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    async with filled(path, timeout=0.5) as engine, engine.connect() as connection:
        # A rollback journal, where a writer's EXCLUSIVE lock keeps readers out
        # (in WAL mode a read waits only for a crashed writer's recovery).
        await connection.execute(text("PRAGMA journal_mode = DELETE"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        start = time.monotonic()
        async with Ticker() as ticker:
            with pytest.raises(exc.OperationalError, match="locked"):
                await connection.execute(text("SELECT count(*) FROM item"))
        # The engine's timeout was waited once, in aiosqlite's thread, while the loop
        # ran on; a read that waited on the loop first would have taken it twice.
        waited = time.monotonic() - start
        assert 0.45 <= waited < 0.9
        assert ticker.ticks >= 0.5 * waited / 0.01
        other.rollback()
        other.close()
        found = await connection.execute(text("SELECT count(*) FROM item"))
        assert found.scalar_one() == 3


async def test_a_write_after_a_read_on_the_loop_still_waits_for_a_lock(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    async with filled(path, timeout=5) as engine, engine.connect() as connection:
        await connection.execute(text("SELECT count(*) FROM item"))  # busy timeout 0
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # the write lock, for 0.3 s
        threading.Timer(0.3, other.execute, ("COMMIT",)).start()
        start = time.monotonic()
        await connection.execute(text("INSERT INTO item (name) VALUES ('waited')"))
        await connection.commit()
        assert time.monotonic() - start >= 0.25  # it waited, not failed
        other.close()


async def rollback_journal(connection: AsyncConnection) -> None:
    """A rollback journal, where readers and a writer keep each other out (WAL keeps
    them apart), and a loop read's busy timeout of 0 in place."""
    await connection.execute(text("PRAGMA journal_mode = DELETE"))
    await connection.execute(text("SELECT count(name) FROM item"))


async def test_a_commit_after_a_read_on_the_loop_waits_for_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "commit.db"
    async with filled(path, timeout=5) as engine, engine.connect() as connection:
        await rollback_journal(connection)
        await connection.execute(text("INSERT INTO item (name) VALUES ('mine')"))
        await connection.execute(text("SELECT count(name) FROM item"))  # on the loop: 0
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN")
        other.execute("SELECT count(*) FROM item").fetchall()  # a reader, for 0.3 s
        threading.Timer(0.3, other.execute, ("COMMIT",)).start()
        start = time.monotonic()
        await connection.commit()  # waits for the reader, not "database is locked"
        assert time.monotonic() - start >= 0.25
        other.close()


async def test_a_streamed_read_after_a_read_on_the_loop_waits_for_a_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stream.db"
    async with filled(path, timeout=5) as engine, engine.connect() as connection:
        await rollback_journal(connection)
        await connection.commit()
        await connection.execute(text("SELECT count(name) FROM item"))  # on the loop: 0
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")  # a writer, for 0.3 s
        threading.Timer(0.3, other.execute, ("ROLLBACK",)).start()
        start = time.monotonic()
        result = await connection.stream(text("SELECT name FROM item ORDER BY name"))
        assert [row.name async for row in result] == ["a", "b", "c"]
        assert time.monotonic() - start >= 0.25
        other.close()


async def test_a_write_is_rolled_back_or_committed_whole(
    ours: AsyncEngine, hand_offs: list[str]
) -> None:
    await fill(ours)
    async with ours.connect() as connection:
        await connection.execute(text("INSERT INTO item (name) VALUES ('x')"))
        await connection.execute(text("UPDATE item SET size = 9"))
        hand_offs.clear()
        await connection.rollback()
        assert hand_offs == ["rollback"]
    async with ours.begin() as connection:
        names = (await connection.execute(text("SELECT name FROM item WHERE size = 9"))).all()
        assert names == []
        await connection.execute(text("INSERT INTO item (name) VALUES ('y')"))
    async with ours.connect() as connection:
        total = (await connection.execute(text("SELECT count(*) FROM item"))).scalar_one()
        assert total == 4


async def test_a_failed_statement_leaves_the_connection_usable(ours: AsyncEngine) -> None:
    await fill(ours)
    async with ours.connect() as connection:
        with pytest.raises(exc.IntegrityError):
            await connection.execute(text("INSERT INTO item (name) VALUES ('a')"))
        await connection.rollback()
        assert (await connection.execute(text("SELECT count(*) FROM item"))).scalar_one() == 3


async def test_server_side_cursors_still_stream(ours: AsyncEngine) -> None:
    await fill(ours)
    async with ours.connect() as connection:
        result = await connection.stream(text("SELECT name FROM item ORDER BY name"))
        assert [row.name async for row in result] == ["a", "b", "c"]


async def nested_and_autocommit(engine: AsyncEngine) -> list[Any]:
    """Savepoints, and AUTOCOMMIT: what each leaves in the table."""
    await fill(engine)
    async with engine.connect() as connection:
        async with connection.begin():
            await connection.execute(text("INSERT INTO item (name) VALUES ('kept')"))
            savepoint = await connection.begin_nested()
            await connection.execute(text("INSERT INTO item (name) VALUES ('undone')"))
            await savepoint.rollback()
            async with connection.begin_nested():
                await connection.execute(text("INSERT INTO item (name) VALUES ('released')"))
        async with connection.begin():
            await connection.execute(text("INSERT INTO item (name) VALUES ('rolled back')"))
            async with connection.begin_nested():
                await connection.execute(text("UPDATE item SET size = 7"))
            await connection.rollback()
    async with engine.connect() as connection:
        auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("INSERT INTO item (name) VALUES ('auto')"))
        await auto.rollback()  # nothing to undo: each statement committed itself
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT name, size FROM item ORDER BY name"))
        return [tuple(row) for row in rows]


async def test_savepoints_and_autocommit_as_with_sqlalchemys_adapter(
    ours: AsyncEngine, theirs: AsyncEngine
) -> None:
    found = [await nested_and_autocommit(engine) for engine in (ours, theirs)]
    assert found[0] == found[1]
    assert [name for name, _ in found[0]] == ["a", "auto", "b", "c", "kept", "released"]


async def test_a_watched_file_is_the_one_its_connections_opened(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    watched = WatchedFile(path)
    assert watched.state() == "same"  # not made yet: the first connection makes it
    engine = make_engine(f"sqlite+aiosqlite:///{path}", timeout=5, pool_size=1)
    watched.watch(engine.sync_engine)

    async def connect() -> None:
        await engine.dispose()  # a new connection, as after a restart of the pool
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await connect()  # the first connection makes the file, and it is recorded
        assert watched.opened == watched.identity() == (path.stat().st_dev, path.stat().st_ino)
        path.rename(tmp_path / "moved.db")
        assert watched.state() == "gone"
        with pytest.raises(exc.OperationalError, match="unable to open database file"):
            await connect()  # opened with mode=rw: SQLite makes no empty file in its place
        assert not path.exists()
        (tmp_path / "moved.db").rename(path)
        assert watched.state() == "same"  # the same file, back at its path
        await connect()

        sqlite3.connect(tmp_path / "other.db").close()
        (tmp_path / "other.db").rename(path)
        assert watched.state() == "replaced"
        with pytest.raises(exc.OperationalError, match="was replaced"):
            await connect()  # a connection to another file, next to the old one's: refused
    finally:
        await engine.dispose()
