"""SQLite through aiosqlite, with a short read run on the event loop's thread, any other
statement in one hand-off to aiosqlite's thread, and the database file watched under
the running app (:class:`WatchedFile`).

aiosqlite runs each SQLite connection in a thread of its own, and every call
on it is a hand-off: queue the call, wake the thread, then wake the event
loop with the result. SQLAlchemy's aiosqlite adapter makes one hand-off per
DBAPI call, so a query is four (open a cursor, execute, fetch the rows, close
the cursor), and the end of a request that only read is a fifth (a rollback
of a transaction SQLite never began). On a worker pinned to one core each
hand-off is two thread switches and a fight for the GIL; they were a quarter
of ``GET /api/things`` on SQLite (``docs/performance.md``, S7).

This module keeps SQLAlchemy's adapter and changes three things, through
``create_async_engine(module=...)``, SQLAlchemy's setting for a DBAPI of
one's own:

* a ``SELECT`` runs on the event loop's own thread, as long as it is short:
  SQLite interrupts it after :data:`READ_BUDGET` steps of its virtual
  machine (about 0.4 ms here), and it runs again, whole, in aiosqlite's
  thread (so a function with side effects that it calls may run twice). A
  read whose plan has a step no budget stops (a bare ``count(*)``, which
  SQLite answers from a whole table in one step; a virtual table's filter)
  goes to the thread, as does every read of an in-memory database, whose one
  connection every request shares. The budget counts steps, not time: a
  step that waits for the disk (a page not in any cache) holds the loop as
  long. It never waits on the loop for another connection's lock either:
  SQLite's busy timeout is 0 while it runs (set once, and again only after a
  hand-off set it back), and a busy database sends the read to the thread,
  which waits the engine's timeout; and none runs on the loop while a
  statement handed to the thread still runs there (a cancelled request's),
  as it would wait for SQLite's mutex. In WAL mode a read is busy only while
  another connection recovers the file after a crash, or holds it in
  exclusive locking mode. Under load the hand-off of the read cost more
  than the read: ``GET /api/things`` on SQLite served 1.05x the requests a
  second with it gone (``docs/performance.md``, the fifteenth round);
* any other statement (cursor, execute, rows, close) is one function run in
  aiosqlite's thread, so one hand-off; its description, row count, last row
  id and rows come back together, as SQLAlchemy's adapter would have read
  them; it waits for a lock as long as the engine's timeout says, as do a
  commit and a server-side cursor's query (the timeout is set back first
  when a read on the loop left it at 0), and an app's own ``PRAGMA
  busy_timeout`` is kept;
* ``rollback`` and ``commit`` make no hand-off when SQLite has no
  transaction open (``sqlite3.Connection.in_transaction``, which SQLite
  itself answers): both would do nothing. A request that wrote is in a
  transaction, so its commit or rollback goes through as before.

aiosqlite has no public call that runs a function in its thread, so this
uses ``Connection._execute`` (and ``_connection``, the ``sqlite3``
connection), as SQLAlchemy's adapter already uses aiosqlite's ``_tx`` and
``_conn`` for its isolation level. Server-side cursors (:meth:`Database.stream
<shipshape.database.Database.stream>`) are SQLAlchemy's, but for the busy timeout.
"""

from __future__ import annotations

import collections
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.request import pathname2url

import aiosqlite
from sqlalchemy import Engine, event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    AsyncAdapt_aiosqlite_ss_cursor,
)
from sqlalchemy.util.concurrency import await_

#: What a statement leaves behind: description, row count, last row id, rows.
Outcome = tuple[Any, int, int | None, Sequence[Any]]

#: Steps of SQLite's virtual machine a read may take on the event loop's thread
#: (20 ns a step here: 0.4 ms) before it is interrupted and run in aiosqlite's thread.
#: A page of the Things list takes about 430.
READ_BUDGET = 20_000
#: The errors that send a read from the loop to the thread: over its budget, or busy.
_NOT_ON_THE_LOOP = ("SQLITE_INTERRUPT", "SQLITE_BUSY", "SQLITE_LOCKED")


def _run(
    connection: sqlite3.Connection,
    operation: str,
    parameters: Any,
    *,
    many: bool,
    busy_timeout: int | None = None,
) -> Outcome:
    """One statement, start to end, in aiosqlite's thread (or a read on the loop's);
    ``busy_timeout`` (milliseconds) is set first, when given."""
    if busy_timeout is not None:
        _set_busy_timeout(connection, busy_timeout)
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else ()
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, with each statement run in one hand-off."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor: each statement opens and closes its own in the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._arraysize = 1
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(operation, seq_of_parameters, many=True)

    def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        try:
            await_(self._run_async(operation, parameters, many=many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _run_async(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapted: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        async with adapted._execute_mutex:
            outcome = None if many else adapted.read_on_loop(operation, parameters)
            if outcome is None:
                outcome = await adapted.hand_off(operation, parameters, many=many)
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's cursor closed in the thread."""


class WaitingServerSideCursor(AsyncAdapt_aiosqlite_ss_cursor):
    """SQLAlchemy's server-side cursor (``Database.stream``), whose query runs in
    aiosqlite's thread with the connection's busy timeout."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        adapted: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        adapted.wait_for_locks()
        return super().execute(operation, parameters)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection, with :class:`OneHopCursor`, short reads on the
    event loop's thread, and no idle hand-offs.

    Arguments:
        dbapi: the DBAPI module, which keeps what each read's plan allows.
        connection: aiosqlite's connection.
        busy_timeout: how long (milliseconds) a statement in aiosqlite's thread waits
            for another connection's lock, as the connection was opened with.
    """

    __slots__ = ("_busy_timeout", "_in_thread", "_wait")

    _cursor_cls = OneHopCursor  # type: ignore[assignment]
    _ss_cursor_cls = WaitingServerSideCursor

    def __init__(self, dbapi: OneHopDBAPI, connection: Any, busy_timeout: int) -> None:
        super().__init__(dbapi, connection)
        #: How long a statement in aiosqlite's thread waits for a lock (the app may
        #: set its own with ``PRAGMA busy_timeout``, read back after it runs).
        self._wait = busy_timeout
        #: SQLite's busy timeout on this connection now, or ``None`` when not known.
        self._busy_timeout: int | None = busy_timeout
        #: A statement of :meth:`hand_off` has not ended in aiosqlite's thread. Its wait
        #: can be cancelled (a client gone) while the thread runs on with it; a read on
        #: the loop would then wait for SQLite's mutex, and hold the loop, for as long.
        self._in_thread = False

    def read_on_loop(self, operation: str, parameters: Any) -> Outcome | None:
        """A ``SELECT``'s outcome, run here on the event loop's thread; ``None`` for any
        other statement, a read whose plan has a step the budget cannot stop, and a read
        over :data:`READ_BUDGET` or held up by a lock, which aiosqlite's thread then runs."""
        connection: sqlite3.Connection | None = self._connection._connection
        dbapi: OneHopDBAPI = self.dbapi
        if (
            connection is None
            or self._in_thread
            or not dbapi.loop_reads
            or operation.lstrip()[:6].upper() != "SELECT"
        ):
            return None
        if self._busy_timeout != 0:  # a lock is never waited for here
            self._busy_timeout = None
            _set_busy_timeout(connection, 0)
            self._busy_timeout = 0
        connection.set_progress_handler(_interrupt, READ_BUDGET)
        try:
            if not dbapi.steps_bounded(connection, operation, parameters):
                return None
            return _run(connection, operation, parameters, many=False)
        except sqlite3.OperationalError as error:
            if str(getattr(error, "sqlite_errorname", "")).startswith(_NOT_ON_THE_LOOP):
                return None
            raise
        finally:
            connection.set_progress_handler(None, 0)

    async def hand_off(self, operation: str, parameters: Any, *, many: bool) -> Outcome:
        """The statement's outcome, run in aiosqlite's thread, where it waits for a lock
        as long as the connection's busy timeout says."""
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        wait = None if self._busy_timeout == self._wait else self._wait
        self._busy_timeout = None  # until the statement is through
        self._in_thread = True
        outcome, now = await connection._execute(  # type: ignore[no-untyped-call]
            self._run_in_thread, connection._connection, operation, parameters, many, wait
        )
        self._busy_timeout = self._wait = now
        return outcome  # type: ignore[no-any-return]

    def _run_in_thread(
        self,
        connection: sqlite3.Connection,
        operation: str,
        parameters: Any,
        many: bool,
        busy_timeout: int | None,
    ) -> tuple[Outcome, int]:
        """The statement's outcome, and the busy timeout it leaves (an app's ``PRAGMA
        busy_timeout`` sets its own, read back here)."""
        try:
            outcome = _run(connection, operation, parameters, many=many, busy_timeout=busy_timeout)
            if "busy_timeout" not in operation.lower():
                return outcome, self._wait
            (now,) = connection.execute("PRAGMA busy_timeout").fetchone()
            return outcome, now
        finally:
            self._in_thread = False

    def wait_for_locks(self) -> None:
        """SQLite's busy timeout back to the connection's, before a statement that
        SQLAlchemy's adapter hands to aiosqlite's thread itself (a commit, a server-side
        cursor's query) after a read on the loop set it to 0."""
        if self._busy_timeout != self._wait:
            self._busy_timeout = None
            connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            await_(connection._execute(_set_busy_timeout, connection._connection, self._wait))  # type: ignore[no-untyped-call]
            self._busy_timeout = self._wait

    def _open_transaction(self) -> bool:
        """SQLite's own answer, read from the event loop's thread: SQLAlchemy uses a
        connection for one thing at a time, so aiosqlite's thread is idle on it now."""
        connection: sqlite3.Connection | None = self._connection._connection
        return connection is not None and connection.in_transaction

    def rollback(self) -> None:
        if self._open_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._open_transaction():
            self.wait_for_locks()  # a rollback journal's commit waits for readers
            super().commit()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module that SQLAlchemy's aiosqlite dialect is given: its connections are
    :class:`OneHopConnection`.

    Arguments:
        loop_reads: run short reads on the event loop's thread. Only where each
            connection serves one request at a time (a pool of a file's
            connections): an in-memory database's one connection is shared, and a
            read there could meet another request's commit in aiosqlite's thread.
    """

    def __init__(self, *, loop_reads: bool = True) -> None:
        super().__init__(aiosqlite, sqlite3)
        self.loop_reads = loop_reads
        #: Whether each read's plan (by its SQL) has only steps the budget can stop.
        self._bounded: dict[str, bool] = {}

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        # Used from two threads, never at once: aiosqlite's, and the loop's for reads.
        adapted = super().connect(*arg, **{**kw, "check_same_thread": False})
        busy_timeout = round(kw.get("timeout", DEFAULT_TIMEOUT) * 1000)
        return OneHopConnection(self, adapted._connection, busy_timeout)

    def steps_bounded(
        self, connection: sqlite3.Connection, operation: str, parameters: Any
    ) -> bool:
        """Whether every step of the read's plan is bounded, so that :data:`READ_BUDGET`
        bounds the read: SQLite counts a whole table in one step (a bare ``count(*)``),
        and a virtual table's filter may do a search's work in one. Read once per SQL
        text with ``EXPLAIN`` (tens of microseconds), and kept for :data:`PLANS_KEPT` texts."""
        bounded = self._bounded.get(operation)
        if bounded is None:
            plan = connection.execute(f"EXPLAIN {operation}", parameters or ())
            bounded = _UNBOUNDED_STEPS.isdisjoint(step[1] for step in plan)
            if len(self._bounded) >= PLANS_KEPT:
                self._bounded.clear()
            self._bounded[operation] = bounded
        return bounded


#: ``sqlite3.connect``'s own busy timeout, in seconds, when none is given.
DEFAULT_TIMEOUT = 5.0
#: Opcodes that can do unbounded work in one step of SQLite's virtual machine.
_UNBOUNDED_STEPS = frozenset({"Count", "VFilter"})
#: SQL texts whose plans are kept (an app's statements are few; SQLAlchemy caches them).
PLANS_KEPT = 1024


def _interrupt() -> int:
    """SQLite's progress handler: non-zero interrupts the statement."""
    return 1


def _set_busy_timeout(connection: sqlite3.Connection, milliseconds: int) -> None:
    connection.execute(f"PRAGMA busy_timeout = {milliseconds:d}")


#: A file as the operating system knows it: its device and inode, not its path.
FileIdentity = tuple[int, int]


class WatchedFile:
    """The file a SQLite database lives in, and whether it is still the one the app opened.

    A SQLite connection holds the file it opened, not its path: deleted or moved
    under the running app, the pool's connections went on reading and writing the
    unlinked file, their writes answered 201 and lost. SQLite cannot say so (the
    old file is still a good file), so :meth:`state` compares the path's file with
    the one the connections opened: one ``stat`` (about a microsecond) when a
    request starts using the database and again before it commits.
    :class:`~shipshape.database.Database` answers 503 while it is not the same.

    A file replaced (a backup moved into place) is not opened by the running app:
    a connection to the new file would share the ``-wal`` and ``-shm`` files of
    the old one, which another worker's idle connections still hold, and SQLite
    would read the old database's pages over the new one's. It takes a restart.

    :meth:`watch` fits an engine to it: each new connection records the file it
    opened, and once the file exists connections open it with ``mode=rw``, so
    SQLite never makes an empty file where one was deleted.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The file the engine's connections opened; ``None`` before the file exists.
        self.opened: FileIdentity | None = self.identity()

    def identity(self) -> FileIdentity | None:
        """The file now at the path, or ``None`` when there is none (or it cannot be seen)."""
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def state(self) -> Literal["same", "gone", "replaced"]:
        """``same`` as opened (or none opened yet), ``gone`` from the path, or
        ``replaced`` by another file."""
        if self.opened is None:
            return "same"  # the first connection makes it, and records it
        now = self.identity()
        if now is None:
            return "gone"
        return "same" if now == self.opened else "replaced"

    def watch(self, engine: Engine) -> None:
        """Hooks ``engine``'s connections to this file (see the class docstring)."""
        event.listen(engine, "do_connect", self._connect)
        event.listen(engine, "connect", self._connected)

    def _connect(self, dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> Any:
        if self.opened is None:
            return None  # SQLAlchemy's own connect, which makes the file
        uri = f"file:{pathname2url(str(self.path))}?mode=rw"
        return dialect.connect(uri, **{**cparams, "uri": True})

    def _connected(self, _dbapi_connection: Any, _record: Any) -> None:
        now = self.identity()
        if self.opened is None:
            self.opened = now
        elif now != self.opened:  # replaced between the request's check and this connection
            raise sqlite3.OperationalError(f"the database file {self.path} was replaced")
