"""A SQL database for a Quart app: one engine per worker, one transaction per request,
Alembic migrations, and a clear 503 (never a 500) while the database is away.

SQLAlchemy 2's asyncio engine does the work; this module only fits it to the
app's life cycle, as Flask-SQLAlchemy does for Flask, but async and with the
operational parts that a production app needs:

* ``DATABASE_URL`` chooses the engine: SQLite through aiosqlite (a relative
  path is taken from the directory that holds the app's ``instance/`` folder,
  which is created) or PostgreSQL through asyncpg. Each worker process makes
  its engine when serving starts and disposes of it when serving stops.
* :meth:`Database.session` gives the request's one session, in one
  transaction. The view calls :meth:`Database.commit` once its work is
  complete; whatever was not committed is rolled back when the request ends,
  so a failed request saves nothing (not half of anything). On SQLite the
  transaction begins at the first write (pysqlite's own rule), so a request's
  reads before it see the latest committed data, not a snapshot.
* A database that cannot be reached (refused, timed out, restarted) answers
  503 with the app's error page or JSON, and one warning line without a
  traceback; the pool pings a connection that sat unused before it hands it
  out (:func:`_ping_after_idle`), and replaces the pool at a failed ping or a
  lost connection, so the app recovers by itself when the database is back.
* :meth:`Database.stream` reads a long query's rows in batches from a
  server-side cursor, as a streamed response body (a CSV export), so that
  neither the worker's memory nor one turn of its event loop grows with the
  table. It runs the query before the response starts, so a database that is
  away is the same 503; its connection goes back to the pool once the rows
  are read, however slowly the client takes them.
* Migrations are Alembic's, run over the app's own engine. Development applies
  them when serving starts (``SHIPSHAPE_DB_MIGRATE``); production runs
  ``quart --app app db upgrade`` once per deploy. ``/readyz`` and
  ``check --deploy`` report a database that is behind the code::

    db = Database(app, metadata=Base.metadata, migrations=Path(__file__).parent / "migrations")

    @app.post("/things")
    async def create():
        session = await db.session()
        session.add(Thing(...))
        await db.commit()
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg.exceptions
import click
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from quart import Quart, current_app, g, request
from quart.typing import ResponseReturnValue
from sqlalchemy import Executable, MetaData, Row, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncResult,
    AsyncSession,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool
from werkzeug.exceptions import ServiceUnavailable

from shipshape.check import Finding
from shipshape.config import Settings
from shipshape.exceptions import ShipshapeError
from shipshape.health import NotReadyError
from shipshape.logging import current_request_id, first_line
from shipshape.options import ON_IN_DEVELOPMENT, Option, apply, flag, is_int, is_seconds
from shipshape.sqlite import OneHopDBAPI, WatchedFile

logger = logging.getLogger("shipshape.database")

OPTIONS: tuple[Option, ...] = (
    flag(
        "SHIPSHAPE_DB_MIGRATE",
        ON_IN_DEVELOPMENT,
        "apply the migrations when serving starts (production runs `quart --app app db upgrade`)",
    ),
    Option(
        "SHIPSHAPE_DB_TIMEOUT",
        5.0,
        "seconds, over 0 and at most 60",
        "the longest wait to connect, for a pooled connection, for SQLite's write lock, "
        "or for one PostgreSQL statement",
        is_seconds(0, 60),
        shown="`5` s",
    ),
    Option(
        "SHIPSHAPE_DB_POOL_SIZE",
        5,
        "an integer from 1 to 100",
        "connections each worker keeps open to PostgreSQL (up to twice as many under load)",
        is_int(1, 100),
    ),
)

#: The errors a database that is away can raise; :func:`is_unreachable` decides.
#: asyncpg's errors that SQLAlchemy did not wrap (a server-side cursor's, a stream's
#: start on a connection killed under it): a server's error with its SQLSTATE, and the
#: client's own about a connection that is gone or left mid-operation by its loss.
ASYNCPG_CLIENT_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,  # its SQLSTATE (08003) says so too
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state …" after the loss
)


class DatabaseFileError(NotReadyError):
    """SQLite's file is gone or cannot be written (deleted, made read-only, a full disk),
    or was replaced under the running app (see :class:`~shipshape.sqlite.WatchedFile`)."""


UNREACHABLE: tuple[type[Exception], ...] = (
    DBAPIError, PoolTimeout, OSError, TimeoutError, asyncpg.exceptions.PostgresError,
    *ASYNCPG_CLIENT_ERRORS, DatabaseFileError,
)  # fmt: skip
#: SQLSTATE classes of a server that is not serving this app now: a connection exception
#: (08), a login it refuses (28: a wrong password, an unknown role), a database that
#: does not exist (3D), insufficient resources such as too many connections (53), and
#: operator intervention such as shutting down or starting up (57P); and a missing table
#: (42P01): migrations not yet applied, as SQLite's "no such table" (a typo in the app's
#: SQL says the same, and is logged with the table's name on every request; a schema
#: behind the code is what ``/readyz`` and ``check --deploy`` report).
UNAVAILABLE_STATES = ("08", "28", "3D", "53", "57P", "42P01")
#: SQLite's codes for a file it cannot use now (busy, locked, missing, full, read-only);
#: a table that is missing means migrations not yet applied, and counts too.
SQLITE_UNAVAILABLE = (
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL",
    "SQLITE_READONLY", "SQLITE_NOTADB",
)  # fmt: skip
#: Where a refused or timed-out connection comes from; the same errors raised by
#: the app's own code (a file, a slow upstream) are not the database's.
DRIVERS = frozenset({"sqlalchemy", "asyncpg", "aiosqlite"})


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` means "the database is not there right now", not "this is wrong".

    SQLite's codes of :data:`SQLITE_UNAVAILABLE` (not its syntax errors, which
    it also calls ``OperationalError``); SQLAlchemy's ``OperationalError`` and
    ``InterfaceError`` from other drivers; a pool that stays empty; any driver
    error with a SQLSTATE of :data:`UNAVAILABLE_STATES` or that cost the
    connection (asyncpg's "the database system is shutting down" arrives as a
    plain ``DBAPIError``), wrapped or not (a server-side cursor's fetch raises
    asyncpg's own); and an ``OSError`` or ``TimeoutError`` raised inside a
    driver (asyncpg's refused connect is not wrapped); and SQLite's file gone from its
    path or replaced under the app (:class:`DatabaseFileError`).
    """
    if isinstance(error, DatabaseFileError):
        return True
    if isinstance(error, DBAPIError):
        sqlite = getattr(error.orig, "sqlite_errorname", None)
        if sqlite is not None:  # SQLite says OperationalError for a syntax error too
            return str(sqlite).startswith(SQLITE_UNAVAILABLE) or "no such table" in str(error.orig)
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        return True
    if isinstance(error, DBAPIError):
        state = str(getattr(error.orig, "sqlstate", None) or "")
        return error.connection_invalidated or state.startswith(UNAVAILABLE_STATES)
    raw_state = getattr(error, "sqlstate", None)
    if isinstance(raw_state, str) and type(error).__module__.split(".")[0] in DRIVERS:
        return raw_state.startswith(UNAVAILABLE_STATES)  # a driver's error SQLAlchemy did not wrap
    if isinstance(error, ASYNCPG_CLIENT_ERRORS):
        return True
    if isinstance(error, OSError | TimeoutError):
        frame = error.__traceback__
        while frame is not None:
            if str(frame.tb_frame.f_globals.get("__name__", "")).split(".")[0] in DRIVERS:
                return True
            frame = frame.tb_next
    return False


_SESSION = "_shipshape_db_session"


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not be reached; nothing was saved."""

    slug = "database_unavailable"
    description = "The database is unavailable right now. Nothing was saved; please try again."
    #: What a read is told: it had nothing to save.
    READ = "The database is unavailable right now; please try again in a moment."
    #: Seconds a client is asked to wait: the pool checks each connection before use, so
    #: the first request after the database returns succeeds.
    RETRY_AFTER = 5


class MigrationsBehindError(NotReadyError):
    """The database's schema is older (or other) than the code's migrations."""


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, or ``None`` (another database, in memory, a URI)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return None if "uri" in parsed.query else Path(str(parsed.database))


#: SQLite's codes for a file that changed under the app (made read-only, replaced, gone):
#: its pooled connections are dropped, so that the next request opens the file anew.
SQLITE_FILE_ERRORS = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB")


def resolve_url(url: str, instance_path: str) -> str:
    """``url`` with a relative SQLite path taken from the instance folder's parent.

    The default ``sqlite+aiosqlite:///instance/app.db`` so names the app's
    ``instance/`` folder wherever the server was started from; that folder is
    created.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    path = Path(parsed.database)
    if parsed.database == ":memory:" or path.is_absolute():
        return url
    path = Path(instance_path).parent / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


def _sqlite_pragmas(timeout: float) -> Callable[[Any, Any], None]:
    """Foreign keys on, and a writer waits up to ``timeout`` for another instead of failing."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")  # readers don't block the writer
        cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        cursor.close()

    return on_connect


def _sqlite_file_changed(context: Any) -> None:
    """A file error counts as a lost connection, so SQLAlchemy drops the pool's connections.

    A connection opened while the file was read-only stays read-only for good
    (SQLite falls back to it silently), and one to a file replaced or deleted
    keeps the old one: with the connections dropped, the next request opens the
    file as it is then, and the app recovers by itself.
    """
    name = str(getattr(context.original_exception, "sqlite_errorname", ""))
    if name.startswith(SQLITE_FILE_ERRORS):
        context.is_disconnect = True


def in_memory(url: str) -> bool:
    """Whether ``url`` is a SQLite database in memory, however named (``sqlite://``,
    ``:memory:``, a ``mode=memory`` URI): as SQLAlchemy tells, by giving it one shared
    connection and no pool."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    dialect: Any = parsed.get_dialect()  # DefaultDialect's, as create_engine asks it
    return not issubclass(dialect.get_pool_class(parsed), QueuePool)


def make_engine(url: str, *, timeout: float, pool_size: int) -> AsyncEngine:
    """The engine for ``url``, with short timeouts so a dead database cannot hold a worker."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # A file's pool (SQLAlchemy's default size) waits no longer than the timeout; an
        # in-memory database has one shared connection and no pool.
        pooled = not in_memory(url)
        engine = create_async_engine(
            url,
            connect_args={"timeout": timeout},
            # aiosqlite with one hand-off to its thread per statement, and short reads on
            # the loop where each connection serves one request (see shipshape.sqlite).
            **(
                {"module": OneHopDBAPI(loop_reads=pooled)}
                if parsed.get_driver_name() == "aiosqlite"
                else {}
            ),
            **({"pool_timeout": timeout} if pooled else {}),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(timeout))
        event.listen(engine.sync_engine, "handle_error", _sqlite_file_changed)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout,
        connect_args={"timeout": timeout, "command_timeout": timeout},
    )
    _ping_after_idle(engine)  # a connection the server dropped is replaced, not used
    return engine


#: Seconds a pooled connection may sit unused and still be handed out without a ping.
PING_AFTER_IDLE = 0.5
_LAST_USED = "shipshape.last_used"  # the connection record's info key: when it came back


def _ping_after_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only when it sat unused for ``PING_AFTER_IDLE``.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip that
    cost a third of the Things list's database work on PostgreSQL (CPU
    0.94–0.96 against 0.61–0.65 ms a list, in-process). Under load a
    connection comes back to the pool within milliseconds of its last use,
    and such a connection is handed out as it is; one that waited (a quiet
    hour, a server restart, a proxy's idle timeout) is pinged first, and a
    failed ping replaces every connection in the pool, as ``pool_pre_ping``'s
    does. HikariCP makes the same bargain (``aliveBypassWindowMs``, 500 ms).

    A connection the server drops within the window (a restart that takes
    less than half a second, between two requests) is found by the next
    request's first statement instead: SQLAlchemy reads its error as a
    disconnect and replaces the pool, and that request answers 503.
    """
    dialect = engine.dialect

    def stamp(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < PING_AFTER_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool retries with a new connection, and drops the ones older than it.
            raise InvalidatePoolError(f"ping after {PING_AFTER_IDLE} s idle: {error}") from error

    event.listen(engine.sync_engine, "connect", stamp)
    event.listen(engine.sync_engine, "checkin", stamp)
    event.listen(engine.sync_engine, "checkout", on_checkout)


#: The advisory lock that migrations take on PostgreSQL ("Shipshap" as a number).
MIGRATION_LOCK = 0x5368697073686170


#: Seconds a migration run waits for another's lock: long migrations run at deploys.
MIGRATION_LOCK_WAIT = 600.0


async def _one_migration_at_a_time(connection: AsyncConnection) -> None:
    """On PostgreSQL, wait for any other migration run to commit before this one reads
    the schema's version: two hosts starting together each ran the migrations, and one
    failed on a type the other had just made. The lock ends with the transaction. (SQLite
    has one writer at a time already.)

    The lock is tried, not waited for in one statement, which the driver's command
    timeout (``SHIPSHAPE_DB_TIMEOUT``) would cut off behind a migration longer than it."""
    if connection.dialect.name != "postgresql":
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MIGRATION_LOCK_WAIT
    try_lock = text("SELECT pg_try_advisory_xact_lock(:key)")
    while not (await connection.execute(try_lock, {"key": MIGRATION_LOCK})).scalar():
        if loop.time() > deadline:
            raise MigrationLockError(
                f"another migration run has held the lock for {MIGRATION_LOCK_WAIT:.0f} s; "
                "nothing was changed"
            )
        await asyncio.sleep(0.25)


class MigrationLockError(ShipshapeError):
    """Another migration run holds the lock for too long; nothing was changed."""


class BrokenForeignKeysError(ShipshapeError):
    """Migrations that would leave rows pointing at nothing; nothing was changed."""


def _dangling(connection: Connection) -> Counter[tuple[str, str, int]]:
    """Rows whose foreign key points at nothing, counted per table, parent and key."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    return Counter((str(table), str(parent), int(key)) for table, _, parent, key in rows)


@contextmanager
def _schema_change(connection: Connection) -> Iterator[None]:
    """Migrations on SQLite, by SQLite's own procedure for changing a schema.

    Python's ``sqlite3`` (under pysqlite and aiosqlite alike) begins a
    transaction only before an ``INSERT``, ``UPDATE``, ``DELETE`` or ``REPLACE``:
    a ``CREATE`` or ``ALTER`` before them would run in autocommit mode and stay
    when a migration fails later. And Alembic's batch mode rebuilds a table
    (copy, drop, rename), which with foreign keys on deletes or refuses the
    rows that point at it. So, as https://www.sqlite.org/lang_altertable.html
    prescribes: foreign keys off (``PRAGMA foreign_keys`` does nothing inside a
    transaction), ``BEGIN``, the migrations, ``PRAGMA foreign_key_check`` (a
    row the migrations left pointing at nothing rolls all of it back; rows that
    pointed at nothing before are not theirs to answer for), ``COMMIT``, and
    foreign keys as they were. An upgrade is then all or nothing, as on
    PostgreSQL, where DDL is transactional and the caller's transaction is the
    migrations' (Alembic, handed a connection in a transaction, leaves
    committing it to the caller). A migration must not ``COMMIT`` by itself.

    The connection must not be in a transaction yet (foreign keys could not be
    turned off), and if foreign keys cannot be turned back on it is discarded,
    never returned to the pool with them off.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    if driver is None or driver.in_transaction:
        raise RuntimeError(
            "run SQLite migrations first on their connection: its transaction has begun, "
            "so foreign keys can no longer be turned off for them"
        )
    enforced = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
    connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
    done = False
    try:
        connection.exec_driver_sql("BEGIN")
        before = _dangling(connection)
        yield
        if enforced:
            new = _dangling(connection) - before
            if new:
                (table, parent, _), count = next(iter(new.items()))
                raise BrokenForeignKeysError(
                    f"the migrations would leave {new.total()} row(s) whose foreign keys "
                    f"point at nothing (the first: {count} in {table}, into {parent}); "
                    "nothing was changed"
                )
        connection.exec_driver_sql("COMMIT")
        done = True
    finally:
        try:
            if driver.in_transaction:  # the migrations or the COMMIT failed
                connection.exec_driver_sql("ROLLBACK")
            if enforced:
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        except Exception:
            connection.invalidate()  # never back to the pool with foreign keys off
            if done:
                raise
            logger.warning("discarded a migration's connection", exc_info=True)


class Migrations:
    """Alembic's scripts in ``folder``, run over a connection of the app's engine."""

    def __init__(self, folder: Path, metadata: MetaData) -> None:
        self.folder = folder
        self.metadata = metadata
        self._heads: frozenset[str] | None = None

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.folder))
        # env.py runs over this connection and compares against this metadata.
        config.attributes["connection"] = connection
        config.attributes["target_metadata"] = self.metadata
        return config

    def heads(self) -> set[str]:
        """The code's newest revisions, read from the scripts once (``/readyz`` asks often)."""
        if self._heads is None:
            self._heads = frozenset(ScriptDirectory.from_config(self.config()).get_heads())
        return set(self._heads)

    @staticmethod
    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    def upgrade(self, connection: Connection, target: str = "head") -> None:
        """Up to ``target``, all of it or none (see :func:`_schema_change`)."""
        with _schema_change(connection):
            command.upgrade(self.config(connection), target)

    def downgrade(self, connection: Connection, target: str) -> None:
        """Down to ``target``, all of it or none (see :func:`_schema_change`)."""
        with _schema_change(connection):
            command.downgrade(self.config(connection), target)

    def behind(self, connection: Connection) -> str | None:
        """Why the schema does not match the code, or ``None`` when it does."""
        current, heads = self.current(connection), self.heads()
        if current == heads:
            return None
        at = f"is at {', '.join(sorted(current))}" if current else "has no migrations applied"
        return f"the database {at}; the code needs {', '.join(sorted(heads))}"


#: Rows read per batch by :meth:`Database.stream`: a few hundred kilobytes of CSV.
STREAM_BATCH = 500
#: Bytes of a stream's spool kept in memory; the rest waits in a temporary file.
STREAM_MEMORY = 1024 * 1024
#: The most bytes of a stream handed to the server in one piece.
STREAM_CHUNK = 64 * 1024


async def _close_quietly(closeable: AsyncConnection | AsyncResult[Any]) -> None:
    try:
        await closeable.close()
    except Exception:  # noqa: BLE001 - the connection broke; the pool makes a new one
        logger.debug("closing a stream's broken connection", exc_info=True)


class IncompleteStreamError(Exception):
    """A stream's reading stopped before its last row (serving stopped)."""


class RowStream:
    """A query's rows as a response body (see :meth:`Database.stream`).

    The rows are read at the database's pace, not the client's: a task reads
    them a batch at a time from the server-side cursor and writes each encoded
    batch to a spool (memory up to :data:`STREAM_MEMORY`, then an unnamed
    temporary file), and the body sends from the spool. So the connection goes
    back to the pool as soon as the last row is read, whether the client is
    fast, slow or gone, and whether or not the response is ever sent: a slow
    download holds a pooled connection (ten of them would leave none for the
    pages) and keeps SQLite from checkpointing its WAL only for as long as the
    database takes to read the rows.

    ``aclose``, which Quart calls when the body is done or cut short, stops the
    reading after the batch in hand and waits for the connection to be given
    back; it never cancels a fetch, which would make SQLAlchemy throw the
    connection away (and, on SQLite, log an error). A read that fails in the
    middle (the database went away, or ``encode`` raised) logs one warning, and
    the body raises once it has sent the rows read before, so that the server
    breaks the connection and the client sees a failed download, never a
    short file that looks complete.
    """

    def __init__(
        self,
        connection: AsyncConnection,
        result: AsyncResult[Any],
        encode: Callable[[Sequence[Row[Any]]], bytes],
        *,
        head: bytes,
        batch: int,
    ) -> None:
        self._encode = encode
        self._batch = batch
        self._spool = tempfile.SpooledTemporaryFile(max_size=STREAM_MEMORY)  # noqa: SIM115
        # A body that is never read is never closed: its spool goes with the stream.
        weakref.finalize(self, self._spool.close)
        self._written = 0
        self._sent = 0
        self._more = asyncio.Event()
        self._error: Exception | None = None
        self._stopping = False
        self._closed = False
        self._append(head)
        #: The task that reads the rows; done once the connection is back in the pool.
        self.reading = asyncio.ensure_future(self._read(connection, result))

    def _append(self, data: bytes) -> None:
        if data:
            self._spool.seek(self._written)
            self._spool.write(data)
            self._written += len(data)
            self._more.set()

    async def _read(self, connection: AsyncConnection, result: AsyncResult[Any]) -> None:
        try:
            while True:
                if self._stopping:
                    raise IncompleteStreamError("the stream was stopped before its last row")
                rows = await result.fetchmany(self._batch)
                if not rows:
                    break
                self._append(self._encode(rows))
        except Exception as exc:  # the body raises it, after the rows read before it
            # One line here (none when the body itself was closed: the client left); the
            # server logs the traceback when the body raises. A server that ends the
            # connection between two fetches can leave asyncpg out of step ("another
            # operation is in progress") instead of saying so.
            if not self._closed:
                cause = "database unavailable" if is_unreachable(exc) else "stream stopped"
                logger.warning("%s mid-stream: %s", cause, first_line(exc))
            self._error = exc
        except BaseException:  # cancelled: the body must not then end as if complete
            self._error = IncompleteStreamError("the stream's reading was cancelled")
            raise
        finally:
            await _close_quietly(result)
            await _close_quietly(connection)
            self._more.set()

    def __aiter__(self) -> RowStream:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        while self._sent == self._written:
            if self.reading.done():
                error, self._error = self._error, None
                self._spool.close()
                if error is not None:
                    raise error
                raise StopAsyncIteration
            self._more.clear()
            await self._more.wait()
        self._spool.seek(self._sent)
        chunk = self._spool.read(min(self._written - self._sent, STREAM_CHUNK))
        self._sent += len(chunk)
        return chunk

    async def stop(self) -> None:
        """Stop reading after the batch in hand, and return once the connection is back.

        Unless every row was read by then, the body raises
        :class:`IncompleteStreamError` after the rows it has, rather than end as
        if it were complete."""
        self._stopping = True
        await asyncio.wait([self.reading])

    async def aclose(self) -> None:
        """Close the body (its reader ends read: the client is done or gone)."""
        self._closed = True
        await self.stop()
        self._spool.close()


class Database:
    """The app's SQL database (see the module docstring).

    Config: ``DATABASE_URL`` (through :class:`~shipshape.config.Settings`),
    ``SHIPSHAPE_DB_MIGRATE``, ``SHIPSHAPE_DB_TIMEOUT`` and ``SHIPSHAPE_DB_POOL_SIZE``.
    """

    engine: AsyncEngine | None

    def __init__(self, app: Quart | None = None, *, metadata: MetaData, migrations: Path) -> None:
        self.migrations = Migrations(migrations, metadata)
        self.engine = None
        self.url = ""
        self.timeout = 5.0
        self.pool_size = 5
        self.migrate_on_start = False
        #: SQLite's file, watched under the running app; ``None`` for other databases.
        self.file: WatchedFile | None = None
        self._old_wal_emptied = False
        #: Streams still reading their rows; serving stops only once they are done.
        self._streams: set[RowStream] = set()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        apply(app, OPTIONS)
        shipshape = app.extensions.get("shipshape")
        if shipshape is None:
            raise RuntimeError("Database(app) needs Shipshape(app) first")
        settings: Settings = shipshape.settings
        self.url = resolve_url(settings.database_url, app.instance_path)
        self.timeout = float(app.config["SHIPSHAPE_DB_TIMEOUT"])
        self.pool_size = int(app.config["SHIPSHAPE_DB_POOL_SIZE"])
        self.migrate_on_start = bool(app.config["SHIPSHAPE_DB_MIGRATE"])
        app.extensions["database"] = self
        app.before_serving(self.start)
        app.after_serving(self.stop)
        app.teardown_request(self._end_request)
        for error in UNREACHABLE:
            app.register_error_handler(error, self._unreachable)
        app.cli.add_command(self.cli(app))
        if shipshape.health is not None:
            shipshape.health.add_check("database", self.ready)
        shipshape.deploy_checks.append(self.deploy_findings)

    def _make_engine(self) -> AsyncEngine:
        engine = make_engine(self.url, timeout=self.timeout, pool_size=self.pool_size)
        if self.file is not None:
            self.file.watch(engine.sync_engine)
        return engine

    async def start(self) -> None:
        path = sqlite_file(self.url)
        self.file = None if path is None else WatchedFile(path)
        self.engine = self._make_engine()
        if self.migrate_on_start:
            await self.upgrade()

    async def stop(self) -> None:
        for stream in list(self._streams):  # their connections go back before the pool closes
            await stream.stop()
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None

    # -- the request's session ------------------------------------------------

    async def _check_file(self) -> None:
        """A SQLite file gone from its path, or replaced, is a :class:`DatabaseFileError`
        (a 503): moved back, it is served again; replaced, it takes a restart (see
        :class:`~shipshape.sqlite.WatchedFile`). The first time, the old file's WAL is
        emptied into it (:meth:`_empty_old_wal`)."""
        if self.file is None or self.engine is None:
            return
        state = self.file.state()
        if state == "same":
            self._old_wal_emptied = False
            return
        if not self._old_wal_emptied:
            self._old_wal_emptied = True
            await self._empty_old_wal(self.engine, self.file.path)
        if state == "gone":
            raise DatabaseFileError(f"the database file {self.file.path} is gone")
        raise DatabaseFileError(
            f"the database file {self.file.path} was replaced under the running app; "
            "restart the app to open the new one"
        )

    @staticmethod
    async def _empty_old_wal(engine: AsyncEngine, path: Path) -> None:
        """Copy the WAL's pages into the old file (wherever it is now) and empty the WAL.

        The ``-wal`` file at the path is the old file's: its connections keep it, and
        SQLite does not delete it when they close, since the file moved. Left full,
        the file opened at the path after a restart (a backup moved there) would take
        the old database's pages as its own: a restored backup of one row read as the
        old rows. A checkpoint is SQLite's own operation on the old database, on one
        of the pool's connections to it; with none left (or another worker's holding a
        read), it is logged, and the operator's restart must remove the ``-wal`` file.
        """
        try:
            async with engine.connect() as connection:
                result = await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                busy = result.scalar()
        except UNREACHABLE as error:
            busy, reason = 1, first_line(error)
        else:
            reason = "a connection was reading"
        if busy:
            logger.warning(
                "the database file %s moved; its WAL could not be emptied into it (%s): "
                "remove %s-wal before the app opens another file at that path",
                path, reason, path,
            )  # fmt: skip

    async def _checked_engine(self) -> AsyncEngine:
        """The serving engine, once SQLite's file is checked to be the one it opened."""
        if self.engine is None:
            raise RuntimeError("the database is used before serving started")
        await self._check_file()
        return self.engine

    async def session(self) -> AsyncSession:
        """The request's session (one per request; see the module docstring)."""
        session: AsyncSession | None = g.get(_SESSION)
        if session is None:
            session = AsyncSession(await self._checked_engine(), expire_on_commit=False)
            setattr(g, _SESSION, session)
        return session

    async def stream(
        self,
        statement: Executable,
        encode: Callable[[Sequence[Row[Any]]], bytes],
        *,
        head: bytes = b"",
        batch: int = STREAM_BATCH,
    ) -> RowStream:
        """``statement``'s rows as a response body: ``head``, then ``encode(rows)`` for
        each batch of up to ``batch`` rows, read from a server-side cursor.

        The query runs now, on a connection of its own (not the request's
        session, which ends before the body is sent), so a database that is away
        raises here and the view answers 503 before any header goes out. The
        rows are then read at the database's pace, whatever the client's (see
        :class:`RowStream`)::

            body = await db.stream(select(Thing.name), lambda rows: ..., head=b"name\r\n")
            return Response(body, mimetype="text/csv")
        """
        connection = await (await self._checked_engine()).connect()
        try:
            result = await connection.stream(statement)
        except BaseException:
            await _close_quietly(connection)
            raise
        stream = RowStream(connection, result, encode, head=head, batch=batch)
        self._streams.add(stream)
        stream.reading.add_done_callback(lambda _: self._streams.discard(stream))
        return stream

    async def commit(self) -> None:
        """Commit the request's work, all of it at once; SQLite's file is checked again
        first, since a request can take its time between its first read and its commit
        (a slow upload)."""
        session: AsyncSession | None = g.get(_SESSION)
        if session is not None:
            await self._check_file()
            await session.commit()

    async def _end_request(self, _error: BaseException | None) -> None:
        session: AsyncSession | None = g.pop(_SESSION, None)
        if session is not None:
            try:
                await session.close()  # rolls back whatever was not committed
            except UNREACHABLE:
                logger.debug("closing a session of an unreachable database", exc_info=True)

    async def _unreachable(self, error: Exception) -> ResponseReturnValue:
        if not is_unreachable(error):
            raise error  # a real error: the app's 500, with its traceback in the log
        logger.warning(
            "database unavailable: %s",
            first_line(error),
            extra={"request_id": current_request_id()},
        )
        read = request.method in ("GET", "HEAD", "OPTIONS")
        unavailable = DatabaseUnavailable(
            description=DatabaseUnavailable.READ if read else None,
            retry_after=DatabaseUnavailable.RETRY_AFTER,
        )
        return await current_app.handle_http_exception(unavailable)  # type: ignore[return-value]

    # -- migrations and readiness ---------------------------------------------

    async def upgrade(self, target: str = "head") -> None:
        """Apply the migrations up to ``target``, in one transaction on both engines."""
        engine = self.engine or self._make_engine()
        try:
            async with engine.begin() as connection:
                await _one_migration_at_a_time(connection)
                await connection.run_sync(self.migrations.upgrade, target)
        finally:
            if engine is not self.engine:
                await engine.dispose()

    async def downgrade(self, target: str) -> None:
        engine = self._make_engine()
        try:
            async with engine.begin() as connection:
                await _one_migration_at_a_time(connection)
                await connection.run_sync(self.migrations.downgrade, target)
        finally:
            await engine.dispose()

    async def behind(self, engine: AsyncEngine) -> str | None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            return await connection.run_sync(self.migrations.behind)

    async def ready(self) -> None:
        """Readiness: the database answers, its schema matches the code, and a SQLite
        file is still the one the app opened and writable (made read-only, every write
        fails)."""
        reason = await self.behind(await self._checked_engine())
        if reason is not None:
            raise MigrationsBehindError(reason)
        if self.file is not None and not os.access(self.file.path, os.W_OK):
            raise DatabaseFileError(f"the database file {self.file.path} cannot be written")

    async def probe(self) -> str | None:
        """:meth:`behind`, over an engine of its own (outside serving)."""
        engine = self._make_engine()
        try:
            return await self.behind(engine)
        finally:
            await engine.dispose()

    def deploy_findings(self) -> list[Finding]:
        """``check --deploy``'s findings about the database."""
        if in_memory(self.url):
            return [
                Finding(
                    "shipshape.E019",
                    "error",
                    "the database is in memory: each worker has its own, empty at every "
                    "start, and every request of a worker shares its one connection",
                    "set DATABASE_URL to a SQLite file or a PostgreSQL server",
                )
            ]
        try:
            reason = asyncio.run(self.probe())
        except UNREACHABLE as exc:
            if not is_unreachable(exc):
                raise
            return [
                Finding(
                    "shipshape.E014",
                    "error",
                    f"the database cannot be reached: {first_line(exc)}",
                    "check DATABASE_URL and that the database server is running",
                )
            ]
        if reason is None:
            return []
        return [
            Finding(
                "shipshape.E015",
                "error",
                f"the database is behind the code's migrations: {reason}",
                "run `quart --app app db upgrade` (make db-upgrade)",
            )
        ]

    def cli(self, app: Quart) -> click.Group:
        database = self

        @click.group("db", help="Database migrations (Alembic).")
        def group() -> None:
            pass

        def run(action: Callable[[], Any]) -> Any:
            async def in_app() -> Any:
                async with app.app_context():
                    return await action()

            try:
                return asyncio.run(in_app())
            except UNREACHABLE as exc:
                if not is_unreachable(exc):
                    raise
                raise ShipshapeError(f"the database cannot be reached: {first_line(exc)}") from exc
            except CommandError as exc:  # a target no migration has, say
                raise ShipshapeError(first_line(exc)) from exc

        @group.command("upgrade", help="Apply the migrations up to TARGET (the newest by default).")
        @click.argument("target", default="head")
        def upgrade(target: str) -> None:
            run(lambda: database.upgrade(target))
            click.echo(f"database upgraded to {target}")

        @group.command("downgrade", help="Undo migrations down to TARGET (`base` undoes all).")
        @click.argument("target")
        def downgrade(target: str) -> None:
            run(lambda: database.downgrade(target))
            click.echo(f"database downgraded to {target}")

        @group.command("status", help="Say whether the database is behind the code.")
        def status() -> None:
            reason = run(database.probe)
            if reason is not None:
                raise ShipshapeError(reason)
            click.echo("the database is up to date")

        return group


def current_database() -> Database:
    """The current app's :class:`Database`."""
    database: Database = current_app.extensions["database"]
    return database


async def current_session() -> AsyncSession:
    """The current request's session (see :meth:`Database.session`)."""
    return await current_database().session()
