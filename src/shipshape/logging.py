"""One structured log line per request, and the request id.

:class:`RequestLogMiddleware` is plain ASGI so that it sees every response,
including those answered before Quart runs (static files, host checks). It
assigns each request an id (a trusted proxy's ``X-Request-ID`` when one is
sent and well-formed, a fresh one otherwise), echoes it in the response's
``X-Request-ID`` header and logs ``request_id, method, path, status,
duration_ms, client`` when the response ends. The id is also this request's
:func:`current_request_id`, and every other line logged while the request
runs (a 500's traceback, a CSP report, the app's own logs) carries it, so
that each can be matched to its request line. :func:`configure_logging` picks
JSON lines in production and readable lines elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import multiprocessing.util
import os
import random
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _escape
from operator import itemgetter
from typing import Any

from shipshape.scope import header
from shipshape.typing import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("shipshape.request")

REQUEST_ID_HEADER = b"x-request-id"
#: A client's id kept behind a trusted proxy: logged and echoed, so only characters no
#: header or JSON string must escape, and a sane length.
_INBOUND_ID_RE = re.compile(r"[A-Za-z0-9._\-]{8,128}")
_name = itemgetter(0)  # a header's name


#: Where request ids come from: 128 random bits a request, without a system call.
#: ``secrets.token_hex`` asked the kernel for every id (``getrandom``), and a
#: system call lets the server's own threads take the GIL mid-request: under
#: load, a hand-over of the GIL per request for an id that only has to be unique,
#: not unguessable. Seeded from the OS, and again in every forked worker so that
#: no two workers share a sequence; its own instance, so that an app seeding
#: :mod:`random` for its own ends cannot make ids repeat. Predictable from
#: enough earlier ids (a Mersenne Twister): nothing may trust an id as a secret.
_ids = random.Random()  # noqa: S311 - an id must be unique, not unguessable
os.register_at_fork(after_in_child=_ids.seed)


def new_request_id() -> str:
    """A fresh request id: 32 lowercase hex digits, like ``secrets.token_hex(16)``."""
    return _ids.getrandbits(128).to_bytes(16, "big").hex()  # half the time of a format


# Set for the task that handles one request; Quart's request task copies it.
_request_id: ContextVar[str | None] = ContextVar("shipshape_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled, or ``None`` outside a request."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while a request runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = _request_id.get()
            if request_id is not None:
                record.request_id = request_id
        return True


# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# json.dumps(data, default=str) builds an encoder per call; one serves every line.
_ENCODER = json.JSONEncoder(default=str)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, extras.

    Written here rather than taken from python-json-logger: that formatter's
    generality cost 54 µs a line in the request path, this one about 10 µs,
    and a request line is written for every request.
    """

    def format(self, record: logging.LogRecord) -> str:
        data = self.head(record.created, record.levelname, record.name, record.getMessage())
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS:
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return _ENCODER.encode(data)

    @staticmethod
    def head(created: float, level: str, name: str, message: str) -> dict[str, Any]:
        """The fields every line starts with; the extras follow in the order they were given."""
        return {
            "time": _iso_time(created),
            "level": level,
            "logger": name,
            "message": message,
        }


def _iso_time(created: float) -> str:
    """A line's time: ISO 8601, in UTC: ``datetime.fromtimestamp(created, UTC).isoformat()``.

    The text up to the second is made once a second (a request line is written
    for every request, and making a datetime and its text was a tenth of the
    line); the microseconds are rounded as ``fromtimestamp`` rounds them, half
    to even, and left out when they are zero, as ``isoformat`` does.
    """
    if not created >= 0:  # before 1970 (or not a number): not worth a cache
        return datetime.fromtimestamp(created, UTC).isoformat()
    fraction, whole = math.modf(created)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    second = _second
    if second[0] != whole:
        second = _set_second(whole)
    return f"{second[1]}.{micro:06d}+00:00" if micro else f"{second[1]}+00:00"


def _set_second(whole: float) -> tuple[float, str]:
    global _second
    _second = (whole, datetime.fromtimestamp(whole, UTC).isoformat()[: -len("+00:00")])
    return _second


_second: tuple[float, str] = (math.nan, "")  # the last second a line was written in, as text


_REQUEST_NOTES = frozenset({"disconnected", "app_status", "incomplete"})


class ReadableFormatter(logging.Formatter):
    """``INFO shipshape.request GET /path 200 3.1ms client=… id=…`` for humans.

    Other records show their extra fields as ``name=value`` (JSON for
    structures), so a CSP report's details read the same as in production.
    Control characters in a line's text (a path's ``%0a``, a terminal's ESC)
    are written as ``\\xNN``, so a request cannot forge a line or colour the
    terminal; the JSON lines of production escape them as JSON does.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        # Escaped before a traceback is added: a message may hold a request's path.
        return printable(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        if "status" in fields and "request_id" in fields:
            # A client that went away or an unfinished response adds its own fields.
            notes = "".join(
                f" {key}={value}" for key, value in fields.items() if key in _REQUEST_NOTES
            )
            line = (
                f" {fields['method']} {fields['path']} {fields['status']}"
                f" {fields['duration_ms']}ms client={fields['client']} id={fields['request_id']}"
            )
            return printable(super().format(record) + line + notes)
        message = super().format(record)
        first, newline, rest = message.partition("\n")  # the (escaped) message, its traceback
        extras = [
            f"{key}={json.dumps(value, default=str) if isinstance(value, dict | list) else value}"
            for key, value in fields.items()
            if key not in _RECORD_FIELDS and key != "request_id"
        ]
        if "request_id" in fields:
            extras.append(f"id={fields['request_id']}")
        return " ".join([first, *map(printable, extras)]) + newline + rest


#: C0 controls, DEL and C1 controls: what a terminal acts on instead of showing.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` on one line, with each control character written as ``\\xNN``."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    """Send ``shipshape`` and ``app`` logs to stderr, as JSON or readable lines.

    A library's ``warnings.warn`` goes the same way (``py.warnings``), so that
    production's stderr stays JSON lines: Python would print it as two raw lines.
    """
    global _json_handler
    handler: logging.StreamHandler[Any]
    if json_lines:
        handler = _json_handler = JsonLineHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
    else:
        handler, _json_handler = logging.StreamHandler(sys.stderr), None
        handler.setFormatter(ReadableFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RequestIdFilter())
    for name in ("shipshape", "app", "py.warnings"):
        log = logging.getLogger(name)
        log.handlers = [handler]
        log.setLevel(level)
        log.propagate = False
    logging.captureWarnings(True)


#: A request line's parts as :meth:`JsonLineHandler.write_later` queues them: the time,
#: the level, the values of :data:`_LINE_FIELDS` and the notes.
_LineFields = tuple[float, int, tuple[Any, ...], dict[str, bool | int]]


class JsonLineHandler(logging.StreamHandler[Any]):
    """The JSON lines' handler: the request lines of one event-loop turn go out in one write.

    A write per request line was a system call per request, and a system call
    releases the GIL: under load, granian's threads took it at every one, and
    the request waited to get it back. :meth:`write_later` queues a finished
    request line, as its fields, and formats and writes the turn's lines
    together when the loop gets to it, which is before it waits for anything
    (a callback queued with ``call_soon``). Every other line this handler writes (``shipshape``'s,
    the app's, a warning) goes out at once, after the lines queued before it,
    so its lines keep the order in which they were logged. Lines that other
    handlers write to the same stream (the server's own, ``print``) are not
    ordered with the queued ones.

    What is still queued is written by :meth:`flush`: at the app's shutdown
    (:func:`flush_request_lines`), when a worker process exits
    (:func:`flush_at_worker_exit`; a forked worker ends with ``os._exit``, so
    ``logging.shutdown`` never runs there), and by ``logging.shutdown`` in a
    process that exits normally. A forked child drops the lines its parent
    had queued: the parent writes them.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.queued: list[str | _LineFields] = []
        #: The loop a flush is queued on; another loop (the first one stopped
        #: with the flush still queued) queues its own.
        self.flush_on: asyncio.AbstractEventLoop | None = None

    def write_later(self, line: str | _LineFields) -> None:
        """Queue a whole line (its terminator included) to be written this loop turn, or
        a request line's fields, which :meth:`flush` writes as :func:`_json_line` does."""
        with self.lock:  # type: ignore[union-attr]  # a thread's record may be flushing
            self.queued.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no asyncio loop runs this (trio): written at once
            self.write_queued()
            return
        if self.flush_on is not loop:
            self.flush_on = loop
            loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self.flush_on = None
        self.write_queued()

    def flush(self) -> None:
        """Write the queued lines and flush the stream; raises what the stream raises,
        as ``StreamHandler.flush`` does (``logging.shutdown`` expects that)."""
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            lines, self.queued = self.queued, []
            if lines:
                self.stream.write("".join(map(self._formatted, lines)))
            super().flush()

    def _formatted(self, line: str | _LineFields) -> str:
        """One queued line as written, or ``""`` for one whose value cannot be, reported
        as logging reports a record that fails to format (the turn's others are written)."""
        if isinstance(line, str):
            return line
        try:
            return _json_line(*line) + self.terminator
        except Exception:
            self.handleError(
                logger.makeRecord(logger.name, line[1], __file__, 0, "request", (), None)
            )
            return ""

    def write_queued(self) -> None:
        """:meth:`flush`, with a failing stream reported as logging reports it, never raised:
        a log call, a request or a loop turn must not fail because stderr did."""
        try:
            self.flush()
        except Exception:
            self.handleError(
                logger.makeRecord(logger.name, logging.INFO, __file__, 0, "request lines", (), None)
            )

    def emit(self, record: logging.LogRecord) -> None:
        if self.queued:
            self.write_queued()  # the lines logged before this one go first
        super().emit(record)

    def _forget_queued(self) -> None:
        self.queued, self.flush_on = [], None


def flush_request_lines() -> None:
    """Write the request lines still queued (the app is stopping)."""
    if _json_handler is not None and _json_handler.queued:
        _json_handler.write_queued()


def flush_at_worker_exit() -> None:
    """Write the queued request lines when this worker process exits.

    Called when serving starts, in the worker: a process that
    :mod:`multiprocessing` forked (granian's workers) runs its finalizers at
    exit, then ``os._exit``, and never ``atexit``; the main process runs them
    from ``atexit``. Registered once per process.
    """
    global _exit_flush_pid
    if _exit_flush_pid != os.getpid():
        _exit_flush_pid = os.getpid()
        multiprocessing.util.Finalize(None, flush_request_lines, exitpriority=0)


_exit_flush_pid = 0


def _forget_queued_in_child() -> None:
    if _json_handler is not None:
        _json_handler._forget_queued()


os.register_at_fork(after_in_child=_forget_queued_in_child)


#: The JSON handler :func:`configure_logging` installed, if it did: while it is the
#: only handler the request logger reaches, the request line is written to it directly.
_json_handler: JsonLineHandler | None = None


def _direct_handler(level: int) -> JsonLineHandler | None:
    """The handler to write the request line to without a record, if nothing else would see it.

    Building the ``LogRecord`` and passing it through ``Logger.handle`` took
    16 µs of CPU a line here, writing the same line 7 µs, and a static file's
    whole response is about 45 µs: the record was a fifth of it, for a line
    whose every field is already known. The shortcut is taken only while the
    request logger has no filters, no record factory has been installed, and
    the one handler its records would reach is the JSON handler that
    :func:`configure_logging` installed, with its request-id filter alone:
    then the line written is the one the formatter would write. Any other
    handler, formatter, filter or record factory (an app's own, a test's)
    gets the record as usual.
    """
    handler = _json_handler
    if (
        handler is None
        or logger.filters
        # A record factory of the app's (OpenTelemetry's adds trace ids) must see it.
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return None
    handlers: list[logging.Handler] = []  # every handler the record would reach
    current: logging.Logger | None = logger
    while current is not None:
        handlers += current.handlers
        current = current.parent if current.propagate else None
    if (
        len(handlers) != 1
        or handlers[0] is not handler
        or len(handler.filters) != 1
        or type(handler.filters[0]) is not RequestIdFilter
        or type(handler.formatter) is not JsonLineFormatter
        or level < handler.level
    ):
        return None
    return handler


def _json_line(created: float, level: int, values: tuple[Any, ...], notes: dict[str, Any]) -> str:
    """The request line as :class:`JsonLineFormatter` formats the request record.

    The six fields of a complete response go into a template, each string
    escaped by the JSON encoder's own C function, in a third of the time of
    building the dict and encoding it (2.5 against 7 µs here; the line of a
    static file's response was a fifth of its CPU). A line with notes (a
    client gone, a response unfinished) is encoded whole. A test compares
    the lines of both paths with the formatter's.
    """
    if not notes:
        line = _request_line(created, level, *values)
        if line is not None:
            return line
    head = JsonLineFormatter.head(created, logging.getLevelName(level), logger.name, "request")
    return _ENCODER.encode(head | dict(zip(_LINE_FIELDS, values, strict=True)) | notes)


def _request_line(
    created: float,
    level: int,
    request_id: str,
    method: Any,
    path: Any,
    status: Any,
    duration_ms: float,
    client: Any,
) -> str | None:
    """:func:`_json_line`'s template for the six fields of a complete response, or ``None``
    for values of another type than an ASGI server gives (an ``IntEnum`` status from a raw
    component, a ``None`` path), which the formatter's encoder must write."""
    if (
        type(status) is not int
        or type(method) is not str
        or type(path) is not str
        or not (client is None or type(client) is str)
    ):
        return None
    middle = _LINE_MIDDLES.get(level) or _line_middle(level)
    return (
        f'{{"time": "{_iso_time(created)}{middle}'
        f'{_escape(request_id)}, "method": {_escape(method)}, '
        f'"path": {_escape(path)}, "status": {status!r}, '
        f'"duration_ms": {duration_ms!r}, '
        f'"client": {"null" if client is None else _escape(client)}}}'
    )


def _line_middle(level: int) -> str:
    """The line's text between the time and the request id, for ``level``."""
    return (
        f'", "level": "{logging.getLevelName(level)}", '
        f'"logger": "{logger.name}", "message": "request", "request_id": '
    )


#: The middles of a request line's two levels, made once.
_LINE_MIDDLES = {level: _line_middle(level) for level in (logging.INFO, logging.ERROR)}

#: The fields of a complete response's line, in the formatter's order after its head.
_LINE_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "client")


class RequestLogMiddleware:
    """Logs one line per HTTP request or WebSocket and sets ``X-Request-ID``.

    Arguments:
        app: the ASGI app to wrap.
        trust_inbound_id: accept a well-formed ``X-Request-ID`` from the
            client; only true behind a trusted proxy that sets it.
    """

    def __init__(self, app: ASGIApp, *, trust_inbound_id: bool = False) -> None:
        self.app = app
        self.trust_inbound_id = trust_inbound_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await _RequestLog(scope, self.trust_inbound_id).run(self.app, receive, send)
        elif scope["type"] == "websocket":
            await _RequestLog(scope, self.trust_inbound_id).run_websocket(self.app, receive, send)
        else:
            await self.app(scope, receive, send)


# nginx's "client closed request": the client went away before the response ended.
CLIENT_CLOSED = 499
#: The scope key a layer sets when it answered a request whose body the server could
#: not deliver (:class:`shipshape.request.RequestBodyMiddleware`): its line gives the
#: status sent, with ``unreadable_body``, not 499.
UNREADABLE_BODY = "shipshape.unreadable_body"


class _RequestLog:
    """One request's line, which says what the client was actually sent.

    The status is the app's only if its response ended while the client was
    still there. A client that went away first (the server's
    ``http.disconnect``, or an ``OSError`` from ``send`` as ASGI 2.4 servers
    raise) is logged as 499 with ``disconnected`` and the ``app_status`` the
    app had started, if any; a response the app began but did not finish is
    logged with ``incomplete`` at ERROR.
    """

    __slots__ = (
        "complete", "disconnected", "logged", "request_id", "scope", "start", "status",
    )  # fmt: skip

    def __init__(self, scope: Scope, trust_inbound_id: bool) -> None:
        self.scope = scope
        self.start = time.perf_counter()
        self.status = 0  # the status the app started, 0 before it does
        self.complete = False  # the last body chunk went out to a connected client
        self.disconnected = False
        self.logged = False
        inbound = header(scope, REQUEST_ID_HEADER) if trust_inbound_id else None
        valid = inbound is not None and _INBOUND_ID_RE.fullmatch(inbound)
        self.request_id = inbound if valid and inbound is not None else new_request_id()

    async def run(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                headers = list(message.get("headers", ()))
                if REQUEST_ID_HEADER in map(_name, headers):  # the app's: ours wins
                    headers = [(k, v) for k, v in headers if k != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, self.request_id.encode("ascii")))
                message["headers"] = headers
            try:
                await send(message)
            except OSError:
                self.disconnected = True
                raise
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.complete = not self.disconnected
                self.log()

        token = _request_id.set(self.request_id)
        try:
            await app(self.scope, receive_wrapper, send_wrapper)
        finally:
            _request_id.reset(token)
            if not self.logged:  # the app raised, or the client went away first
                self.log()

    async def run_websocket(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        """A WebSocket's line, when it ends: 101 for a socket the app accepted (however
        it closed later), 403 for a handshake it closed unanswered, else the status it
        sent instead (ASGI's ``websocket.http.response``)."""

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnected = True  # before the handshake's answer: a 499
            return message

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind in ("websocket.accept", "websocket.http.response.start"):
                self.status = 101 if kind == "websocket.accept" else message["status"]
                headers = [
                    *message.get("headers", ()),
                    (REQUEST_ID_HEADER, self.request_id.encode()),
                ]
                message = {**message, "headers": headers}
            elif kind == "websocket.close" and not self.status:
                self.status = 403  # what the server answers a handshake closed unaccepted
            await send(message)
            if kind in ("websocket.accept", "websocket.close") or (
                kind == "websocket.http.response.body" and not message.get("more_body")
            ):
                self.complete = True  # the handshake is answered; a later disconnect is its end

        token = _request_id.set(self.request_id)
        try:
            await app(self.scope, receive_wrapper, send_wrapper)
        finally:
            _request_id.reset(token)
            self.log()

    def log(self) -> None:
        self.logged = True
        status, level, notes = self._outcome()
        if not logger.isEnabledFor(level):
            return  # no fields, no record: nobody would read them
        scope = self.scope
        client = scope.get("client")
        values = (
            self.request_id,
            scope.get("method", "GET"),  # a WebSocket's handshake is a GET
            scope.get("path", ""),
            status,
            round((time.perf_counter() - self.start) * 1000, 2),
            client[0] if client else None,
        )
        handler = _direct_handler(level)
        if handler is None:
            fields = dict(zip(_LINE_FIELDS, values, strict=True))
            logger.handle(self._record(level, fields | notes))
            return
        # Formatted when the loop turn's lines are written, not in the request: under
        # load, 1.05x the SPA index's requests a second (pinned, interleaved rounds).
        handler.write_later((time.time(), level, values, notes))

    def _outcome(self) -> tuple[int, int, dict[str, bool | int]]:
        """The status the line gives, its level, and its notes (none for a response that
        completed)."""
        status, level = self.status, logging.INFO
        notes: dict[str, bool | int] = {}  # a client gone, or an unfinished response
        if self.disconnected and self.scope.get(UNREADABLE_BODY):
            # The server said the client left while its chunked body came in, and the app
            # answered 400: a broken body (granian says so of one) or a client gone.
            status, notes["unreadable_body"] = self.status, True
        elif self.disconnected and not self.complete:
            status = CLIENT_CLOSED
            notes["disconnected"] = True
            if self.status:
                notes["app_status"] = self.status
        elif not self.complete:  # the app raised before or during its response
            status = self.status or 500
            if self.status:
                notes["incomplete"] = True
            level = logging.ERROR
        elif self.status >= 500:
            level = logging.ERROR
        return status, level, notes

    @staticmethod
    def _record(level: int, fields: dict[str, Any]) -> logging.LogRecord:
        # Made and handed to the logger directly: Logger.log would first walk the
        # whole middleware stack (findCaller) for a source line that is this one
        # for every request.
        return logger.makeRecord(
            logger.name, level, __file__, 0, "request", (), None, "log", fields
        )


def first_line(error: BaseException) -> str:
    """An error's message, first line only, for a one-line log entry; else its class name.

    SQLAlchemy's errors are read through to the driver's (``orig``), without
    their "(Background on this error…)" tail.
    """
    message = str(getattr(error, "orig", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__
