"""SQLite through aiosqlite, with one hand-off to aiosqlite's thread per statement.

aiosqlite runs each SQLite connection in a thread of its own, and every call
on it is a hand-off: queue the call, wake the thread, then wake the event
loop with the result. SQLAlchemy's aiosqlite adapter makes one hand-off per
DBAPI call, so a query is four (open a cursor, execute, fetch the rows, close
the cursor), and the end of a request that only read is a fifth (a rollback
of a transaction SQLite never began). On a worker pinned to one core each
hand-off is two thread switches and a fight for the GIL; they were a quarter
of ``GET /api/things`` on SQLite (``docs/performance.md``, S7).

This module keeps SQLAlchemy's adapter and changes two things, through
``create_async_engine(module=...)``, SQLAlchemy's setting for a DBAPI of
one's own:

* a statement (cursor, execute, rows, close) is one function run in
  aiosqlite's thread, so one hand-off; its description, row count, last row
  id and rows come back together, as SQLAlchemy's adapter would have read
  them;
* ``rollback`` and ``commit`` make no hand-off when SQLite has no
  transaction open (``sqlite3.Connection.in_transaction``, which SQLite
  itself answers): both would do nothing. A request that wrote is in a
  transaction, so its commit or rollback goes through as before.

aiosqlite has no public call that runs a function in its thread, so this
uses ``Connection._execute`` (and ``_connection``, the ``sqlite3``
connection), as SQLAlchemy's adapter already uses aiosqlite's ``_tx`` and
``_conn`` for its isolation level. Server-side cursors (:meth:`Database.stream
<shipshape.database.Database.stream>`) are SQLAlchemy's, unchanged.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

#: What a statement leaves behind: description, row count, last row id, rows.
Outcome = tuple[Any, int, int | None, Sequence[Any]]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, *, many: bool) -> Outcome:
    """One statement, start to end, in aiosqlite's thread."""
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
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._connection, operation, parameters, many=many
            )
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's cursor closed in the thread."""


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection, with :class:`OneHopCursor` and no idle hand-offs."""

    __slots__ = ()

    _cursor_cls = OneHopCursor  # type: ignore[assignment]

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
            super().commit()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module that SQLAlchemy's aiosqlite dialect is given: its connections are
    :class:`OneHopConnection`."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)
