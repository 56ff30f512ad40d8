from __future__ import annotations

import asyncio
import io
import json
import logging
import multiprocessing
import os
import random
import re
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pytest
from quart import Quart, request, websocket
from quart.testing.connections import WebsocketDisconnectError

from shipshape.csrf import csrf_exempt
from shipshape.logging import (
    _LINE_FIELDS,
    JsonLineFormatter,
    JsonLineHandler,
    RequestLogMiddleware,
    _iso_time,
    _json_line,
    _LineFields,
    _RequestLog,
    configure_logging,
    current_request_id,
    flush_at_worker_exit,
    flush_request_lines,
    new_request_id,
)
from shipshape.typing import ASGIApp, Message, Receive, Scope, Send
from tests.conftest import SECRET
from tests.shipshape.conftest import MakeApp


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    app = make_app(SHIPSHAPE_ASSETS=False, PROPAGATE_EXCEPTIONS=True, TRUSTED_PROXIES=0)

    @app.get("/hello")
    async def hello() -> str:
        return str(current_request_id())

    @app.get("/crash")
    async def crash() -> str:
        raise RuntimeError("boom")

    @app.post("/upload")
    @csrf_exempt
    async def upload() -> str:
        return str(len(await request.get_data()))

    @app.get("/stream")
    async def stream() -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            await asyncio.Event().wait()  # until the client goes away
            yield b"never"  # pragma: no cover - cancelled before

        return chunks()

    return app


def request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shipshape.request"]


async def test_one_line_per_request_with_its_fields(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "shipshape.request")
    async with app.test_app():
        response = await app.test_client().get(
            "/hello?x=1", scope_base={"client": ("192.0.2.7", 51000)}
        )
    request_id = await response.get_data(as_text=True)
    assert response.headers["X-Request-ID"] == request_id
    assert len(request_id) == 32
    records = request_records(caplog)
    (record,) = records
    fields = record.__dict__
    assert fields["request_id"] == request_id
    assert (fields["method"], fields["path"], fields["status"]) == ("GET", "/hello", 200)
    assert fields["duration_ms"] >= 0
    assert fields["client"] == "192.0.2.7"


async def test_a_level_above_info_gets_no_request_records_but_still_errors(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "shipshape.request")
    async with app.test_app():
        client = app.test_client()
        response = await client.get("/hello")
        with pytest.raises(RuntimeError):
            await client.get("/crash")
    assert response.headers["X-Request-ID"]  # the id is still echoed
    (record,) = request_records(caplog)
    fields = record.__dict__
    assert (record.levelno, fields["status"], fields["path"]) == (logging.ERROR, 500, "/crash")


async def test_request_ids_are_unique_and_inbound_ids_ignored_without_proxy(app: Quart) -> None:
    async with app.test_app():
        client = app.test_client()
        spoofed = {"X-Request-ID": "attacker-chosen-id"}
        ids = {
            (await client.get("/hello", headers=spoofed)).headers["X-Request-ID"] for _ in range(5)
        }
    assert len(ids) == 5 and "attacker-chosen-id" not in ids


@pytest.mark.parametrize(
    ("inbound", "kept"),
    [("req-12345678", True), ("short", False), ("bad id with spaces!", False)],
)
async def test_inbound_id_kept_behind_a_trusted_proxy(
    make_app: MakeApp, inbound: str, kept: bool
) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, TRUSTED_PROXIES=1)
    async with app.test_app():
        response = await app.test_client().get("/healthz", headers={"X-Request-ID": inbound})
    assert (response.headers["X-Request-ID"] == inbound) is kept


@pytest.mark.parametrize("inbound", ["req-12345678\n", "req-12345678\r\nx-evil: 1", "é" * 8])
def test_an_inbound_id_is_whole_or_refused(inbound: str) -> None:
    # `$` alone would let a trailing newline through into the header and the log line.
    scope = {"type": "http", "headers": [(b"x-request-id", inbound.encode("latin-1", "replace"))]}
    request_id = _RequestLog(scope, trust_inbound_id=True).request_id
    assert request_id != inbound and re.fullmatch(r"[0-9a-f]{32}", request_id)


async def test_crash_is_logged_as_500(app: Quart, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "shipshape.request")
    async with app.test_app():
        with pytest.raises(RuntimeError):
            await app.test_client().get("/crash")
    (record,) = request_records(caplog)
    assert record.__dict__["status"] == 500
    assert record.levelno == logging.ERROR


async def test_a_client_gone_before_the_body_arrived_is_499_not_500(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the view was cancelled, and the line said 500 at ERROR."""
    caplog.set_level(logging.INFO, "shipshape.request")
    client = app.test_client()
    async with app.test_app(), client.request("/upload", method="POST") as connection:
        await connection.send(b"part of a body")
        await connection.disconnect()
    (record,) = request_records(caplog)
    fields = record.__dict__
    assert (fields["status"], fields["disconnected"], record.levelno) == (499, True, logging.INFO)
    assert "app_status" not in fields and "incomplete" not in fields


async def test_a_client_gone_mid_response_is_499_with_the_apps_status(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "shipshape.request")
    async with app.test_app(), app.test_client().request("/stream") as connection:
        await connection.send_complete()
        assert await connection.receive() == b"first"
        await connection.disconnect()
    (record,) = request_records(caplog)
    fields = record.__dict__
    assert (fields["status"], fields["app_status"], fields["disconnected"]) == (499, 200, True)


async def test_a_finished_response_keeps_its_status(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "shipshape.request")
    async with app.test_app():
        response = await app.test_client().post("/upload", data=b"12345")
    assert await response.get_data() == b"5"
    (record,) = request_records(caplog)
    assert record.__dict__["status"] == 200
    assert "disconnected" not in record.__dict__


async def _call(inner: ASGIApp, send: Send, messages: list[Message] | None = None) -> None:
    queue = list(messages or [{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> Message:
        return queue.pop(0)

    scope: Scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    await RequestLogMiddleware(inner)(scope, receive, send)


async def test_a_server_that_raises_on_a_closed_connection_is_logged_as_499(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ASGI 2.4: ``send`` may raise an ``OSError`` once the client has gone."""
    caplog.set_level(logging.INFO, "shipshape.request")

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 303, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def closed(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        await _call(inner, closed)
    (record,) = request_records(caplog)
    assert (record.__dict__["status"], record.__dict__["app_status"]) == (499, 303)


async def test_a_disconnect_seen_before_the_last_chunk_means_it_never_arrived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server such as granian lets ``send`` succeed after the client has gone."""
    caplog.set_level(logging.INFO, "shipshape.request")

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        assert (await receive())["type"] == "http.disconnect"
        await send({"type": "http.response.start", "status": 303, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def accept(message: Message) -> None:
        sent.append(message)

    messages: list[Message] = [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]
    await _call(inner, accept, messages)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    (record,) = request_records(caplog)
    assert (record.__dict__["status"], record.__dict__["app_status"]) == (499, 303)


async def test_a_response_the_app_did_not_finish_is_incomplete_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "shipshape.request")

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise RuntimeError("boom")

    async def accept(message: Message) -> None:
        pass

    with pytest.raises(RuntimeError):
        await _call(inner, accept)
    (record,) = request_records(caplog)
    assert (record.__dict__["status"], record.__dict__["incomplete"]) == (200, True)
    assert record.levelno == logging.ERROR and "disconnected" not in record.__dict__


def test_readable_request_lines_show_a_client_that_went_away(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_lines=False)
    fields = {
        "request_id": "abc", "method": "POST", "path": "/cookies", "status": 499,
        "duration_ms": 1.5, "client": "10.0.0.1", "disconnected": True, "app_status": 303,
    }  # fmt: skip
    logging.getLogger("shipshape.request").info("request", extra=fields)
    assert capsys.readouterr().err.strip() == (
        "INFO shipshape.request request POST /cookies 499 1.5ms client=10.0.0.1 id=abc"
        " disconnected=True app_status=303"
    )


def _emit(json_lines: bool, capsys: pytest.CaptureFixture[str]) -> str:
    configure_logging(json_lines=json_lines)
    fields = {
        "request_id": "abc",
        "method": "GET",
        "path": "/",
        "status": 200,
        "duration_ms": 1.5,
        "client": "10.0.0.1",
    }
    logging.getLogger("shipshape.request").info("request", extra=fields)
    return capsys.readouterr().err.strip()


def test_json_lines_in_production(capsys: pytest.CaptureFixture[str]) -> None:
    line = json.loads(_emit(True, capsys))
    assert line["logger"] == "shipshape.request" and line["level"] == "INFO"
    assert line["request_id"] == "abc" and line["status"] == 200 and line["client"] == "10.0.0.1"
    assert datetime.fromisoformat(line["time"]).tzinfo is not None


def test_a_librarys_warning_is_a_json_line_in_production(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Earlier tests' apps captured warnings already, and pytest has put its own
    # hook back since: start from nothing captured, as a new process does.
    logging.captureWarnings(False)
    configure_logging(json_lines=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # the suite turns warnings into errors
            warnings.warn("a library is unhappy", DeprecationWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["logger"] == "py.warnings" and line["level"] == "WARNING"
    assert "DeprecationWarning: a library is unhappy" in line["message"]


def test_readable_lines_in_development(capsys: pytest.CaptureFixture[str]) -> None:
    line = _emit(False, capsys)
    assert line == "INFO shipshape.request request GET / 200 1.5ms client=10.0.0.1 id=abc"


def test_readable_lines_cannot_be_forged_by_a_request(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: a path with ``%0a`` wrote a second, forged line in development, and an
    ESC coloured the terminal; control characters are now written as ``\\xNN``."""
    configure_logging(json_lines=False)
    fields = {
        "request_id": "abc", "method": "GET", "path": "/x\nINFO forged line\r\x1b[31m\x85",
        "status": 404, "duration_ms": 1.5, "client": "10.0.0.1",
    }  # fmt: skip
    logging.getLogger("shipshape.request").info("request", extra=fields)
    logging.getLogger("shipshape.csp").warning("report\x1b[2J", extra={"uri": "/a\nb"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:  # a 500's line names the path, and its traceback follows
        logging.getLogger("shipshape.errors").exception(
            "unhandled on %s", "/x\nINFO shipshape.request request GET /admin 200\x1b[31m"
        )
    lines = capsys.readouterr().err.strip().split("\n")
    assert lines[:3] == [
        "INFO shipshape.request request GET /x\\x0aINFO forged line\\x0d\\x1b[31m\\x85 404"
        " 1.5ms client=10.0.0.1 id=abc",
        "WARNING shipshape.csp report\\x1b[2J uri=/a\\x0ab",
        "ERROR shipshape.errors unhandled on /x\\x0aINFO shipshape.request request GET /admin"
        " 200\\x1b[31m",
    ]
    assert lines[3] == "Traceback (most recent call last):", "the traceback keeps its lines"
    assert lines[-1] == "RuntimeError: boom"


async def test_a_websocket_gets_one_line_with_what_its_handshake_got(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    @app.websocket("/echo")
    async def echo() -> None:
        await websocket.accept()
        await websocket.send(await websocket.receive())

    @app.websocket("/closed")
    async def closed() -> None:
        await websocket.close(1008)

    caplog.set_level(logging.INFO, "shipshape.request")
    async with app.test_app():
        client = app.test_client()
        async with client.websocket("/echo") as socket:
            await socket.send("hi")
            assert await socket.receive() == "hi"
        with pytest.raises(WebsocketDisconnectError):  # no such route: closed, not a 500
            async with client.websocket("/nowhere") as socket:
                await socket.receive()
        with pytest.raises(WebsocketDisconnectError):
            async with client.websocket("/closed") as socket:
                await socket.receive()
    lines = [
        (r.__dict__["method"], r.__dict__["path"], r.__dict__["status"], r.levelname)
        for r in request_records(caplog)
    ]
    assert lines == [
        ("GET", "/echo", 101, "INFO"),
        ("GET", "/nowhere", 403, "INFO"),
        ("GET", "/closed", 403, "INFO"),
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_websocket_client_gone_before_the_handshake_is_answered_is_499(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression (review): it was logged as a 500 at ERROR."""

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        assert (await receive())["type"] == "websocket.disconnect"  # gone before accept

    events: Iterator[Message] = iter(
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1001}]
    )

    async def receive() -> Message:
        return next(events)

    async def send(message: Message) -> None:
        raise AssertionError("nothing to send")

    caplog.set_level(logging.INFO, "shipshape.request")
    scope = {"type": "websocket", "path": "/slow", "headers": [], "client": ("192.0.2.1", 1)}
    await RequestLogMiddleware(slow)(scope, receive, send)
    (record,) = request_records(caplog)
    assert (record.__dict__["status"], record.levelname) == (499, "INFO")
    assert record.__dict__["disconnected"] is True


async def test_non_http_scopes_pass_through(app: Quart) -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def never() -> Message:
        raise AssertionError("not called")

    async def drop(message: Message) -> None:
        raise AssertionError("not called")

    await RequestLogMiddleware(inner)({"type": "lifespan"}, never, drop)
    assert seen == [{"type": "lifespan"}]


def test_json_lines_carry_exceptions_and_odd_values() -> None:
    from shipshape.logging import JsonLineFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("job",), sys.exc_info(),
            extra={"when": datetime(2026, 1, 2, tzinfo=UTC)},
        )  # fmt: skip
    line = json.loads(JsonLineFormatter().format(record))
    assert line["message"] == "failed job" and line["level"] == "ERROR"
    assert "ValueError: boom" in line["exc_info"]
    assert line["when"] == "2026-01-02 00:00:00+00:00"


async def _served(path: str = "/x") -> None:
    """One 200 through the bare request-log middleware."""

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [],
        "client": ("10.0.0.1", 1),
    }
    await RequestLogMiddleware(inner)(scope, receive, send)


async def _request_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The line the request log writes for one 200 through the bare middleware."""
    await _served()
    await asyncio.sleep(0)  # one loop turn: the queued line is written
    return capsys.readouterr().err


async def test_the_request_line_written_without_a_record_is_the_formatters_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging(json_lines=True)
    request_logger = logging.getLogger("shipshape.request")
    made: list[logging.LogRecord] = []
    make_record = request_logger.makeRecord

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(make_record(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(request_logger, "makeRecord", counting)
    direct = json.loads(await _request_line(capsys))
    assert made == []  # written straight to the handler's stream
    keep_all = logging.Filter()  # any filter sends the line through a record
    request_logger.addFilter(keep_all)
    try:
        recorded = json.loads(await _request_line(capsys))
    finally:
        request_logger.removeFilter(keep_all)
    assert len(made) == 1  # that one went through a record
    assert list(direct) == list(recorded) == [
        "time", "level", "logger", "message", "request_id", "method", "path", "status",
        "duration_ms", "client",
    ]  # fmt: skip
    for line in (direct, recorded):
        assert datetime.fromisoformat(line.pop("time")).tzinfo is not None
        assert isinstance(line.pop("duration_ms"), float)
        assert len(line.pop("request_id")) == 32
    assert direct == recorded == {
        "level": "INFO", "logger": "shipshape.request", "message": "request",
        "method": "GET", "path": "/x", "status": 200, "client": "10.0.0.1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("level", "fields"),
    [
        (logging.INFO, {"method": "GET", "path": "/x", "status": 200, "client": "10.0.0.1"}),
        (  # what a client may put in a path: quotes, backslashes, control and non-ASCII
            logging.INFO,
            {"method": "GET", "path": '/\u00e9"\\\n\x00\u2028', "status": 404, "client": "::1"},
        ),
        (logging.ERROR, {"method": "POST", "path": "/", "status": 503, "client": None}),
        (logging.INFO, {"method": "GET", "path": "/", "status": HTTPStatus.OK, "client": None}),
        (logging.INFO, {"method": b"GET", "path": None, "status": 200, "client": "10.0.0.1"}),
        (  # notes follow the six fields
            logging.INFO,
            {"method": "GET", "path": "/", "status": 499, "client": "10.0.0.1",
             "disconnected": True, "app_status": 200},
        ),
    ],
)  # fmt: skip
def test_the_direct_line_is_the_formatters_byte_for_byte(
    level: int, fields: dict[str, Any]
) -> None:
    fields = {"request_id": "ab" * 16, "duration_ms": 12.5, **fields}
    ordered = {k: fields[k] for k in ("request_id", "method", "path", "status", "duration_ms")}
    ordered |= {k: v for k, v in fields.items() if k not in ordered}
    record = logging.getLogger("shipshape.request").makeRecord(
        "shipshape.request", level, __file__, 0, "request", (), None, extra=ordered
    )
    values = tuple(ordered[name] for name in _LINE_FIELDS)
    notes = {k: v for k, v in ordered.items() if k not in _LINE_FIELDS}
    line = _json_line(record.created, level, values, notes)
    assert line == JsonLineFormatter().format(record)


async def test_an_apps_own_filter_or_handler_still_gets_the_request_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_lines=True)
    request_logger = logging.getLogger("shipshape.request")
    seen: list[logging.LogRecord] = []

    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append(record)
            return False

    drop = Drop()
    request_logger.addFilter(drop)
    try:
        assert await _request_line(capsys) == ""
    finally:
        request_logger.removeFilter(drop)
    assert [record.status for record in seen] == [200]  # type: ignore[attr-defined]

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    request_logger.addHandler(keep)
    try:
        assert json.loads(await _request_line(capsys))["status"] == 200  # ours still writes
    finally:
        request_logger.removeHandler(keep)
    assert len(seen) == 2


async def test_an_apps_record_factory_still_adds_its_fields_to_the_request_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_lines=True)
    factory = logging.getLogRecordFactory()

    def with_trace(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.trace_id = "4bf92f3577b34da6"  # as OpenTelemetry's instrumentation adds
        return record

    logging.setLogRecordFactory(with_trace)
    try:
        line = json.loads(await _request_line(capsys))
    finally:
        logging.setLogRecordFactory(factory)
    assert line["trace_id"] == "4bf92f3577b34da6" and line["status"] == 200


async def test_a_log_stream_that_fails_never_fails_the_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_lines=True)
    handler = logging.getLogger("shipshape").handlers[0]
    assert isinstance(handler, logging.StreamHandler)

    class Broken:
        def write(self, text: str) -> int:
            raise OSError("disk full")

        def flush(self) -> None:
            pass

    handler.setStream(Broken())
    try:
        reported = await _request_line(capsys)  # would raise if the error escaped
    finally:
        configure_logging(json_lines=True)
    assert "OSError: disk full" in reported  # on stderr, as logging reports its own errors


class _Writes:
    """A stream that records each write it is given."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


async def test_one_loop_turns_request_lines_are_one_write_in_order_with_other_lines() -> None:
    configure_logging(json_lines=True)
    handler = logging.getLogger("shipshape").handlers[0]
    assert isinstance(handler, JsonLineHandler)
    stream = _Writes()
    handler.setStream(stream)
    try:
        await asyncio.gather(_served("/a"), _served("/b"), _served("/c"))  # one turn's
        [write] = stream.writes  # three lines, one write
        assert [json.loads(line)["path"] for line in write.splitlines()] == ["/a", "/b", "/c"]

        await _served("/d")
        assert len(stream.writes) == 1  # queued: this turn is not over
        logging.getLogger("app").warning("after /d")  # written at once, after /d's line
        assert [json.loads(w)["message"] for w in stream.writes[1:]] == ["request", "after /d"]
        await _served("/e")
        flush_request_lines()  # what the app's shutdown does
        assert json.loads(stream.writes[-1])["path"] == "/e"
        await asyncio.sleep(0)  # the turn's own flush then finds nothing to write
        assert len(stream.writes) == 4
    finally:
        configure_logging(json_lines=True)


async def test_the_request_lines_still_queued_are_written_when_the_app_stops(
    make_app: MakeApp, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(  # production: JSON lines, queued
        SHIPSHAPE_ASSETS=False, APP_ENV="production", SECRET_KEY=SECRET, ALLOWED_HOSTS="a.test"
    )
    capsys.readouterr()
    async with app.test_app() as test_app:
        handler = logging.getLogger("shipshape").handlers[0]
        assert isinstance(handler, JsonLineHandler)
        handler.queued.append('{"queued": true}\n')  # as if the last turn ended with the app
        await test_app.shutdown()
        assert handler.queued == []
        assert '{"queued": true}' in capsys.readouterr().err


def test_request_ids_are_32_hex_digits_and_differ_in_a_forked_child() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, as a forked worker would draw it
        try:
            os.write(write, new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != new_request_id()  # not the parent's next one


def test_a_request_line_queued_with_no_event_loop_running_is_written_at_once() -> None:
    handler = JsonLineHandler(_Writes())
    handler.write_later('{"line": 1}\n')  # no asyncio loop here, as under trio
    assert handler.stream.writes == ['{"line": 1}\n'] and handler.queued == []


class _Broken(_Writes):
    """A stream whose every write and flush fails, as a closed pipe or a full disk."""

    def write(self, text: str) -> int:
        raise BrokenPipeError("the reader went away")

    def flush(self) -> None:
        raise BrokenPipeError("the reader went away")


def test_a_queued_line_that_cannot_be_written_loses_no_other_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value whose text cannot be made (a raw component's odd path object) fails its
    own line, reported as logging reports a record that fails to format, not the turn's."""

    class Unwritable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    stream = io.StringIO()
    handler = JsonLineHandler(stream)
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    good: _LineFields = (1.0, logging.INFO, ("a" * 32, "GET", "/a", 200, 1.0, "10.0.0.1"), {})
    bad: _LineFields = (1.0, logging.INFO, ("b" * 32, "GET", Unwritable(), 200, 1.0, None), {})
    handler.queued += [good, bad, '{"plain": true}\n', good]
    handler.write_queued()
    lines = stream.getvalue().splitlines()
    assert [json.loads(line).get("path") for line in lines] == ["/a", None, "/a"]
    assert len(reported) == 1 and handler.queued == []


async def test_a_broken_log_stream_fails_no_log_call_and_no_loop_turn(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_lines=True)
    handler = logging.getLogger("shipshape").handlers[0]
    assert isinstance(handler, JsonLineHandler)
    handler.setStream(_Broken())
    failed: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: failed.append(context))
    try:
        handler.write_later('{"queued": true}\n')
        logging.getLogger("app").warning("hello")  # flushes the queue first; must not raise
        handler.write_later('{"queued": true}\n')
        await asyncio.sleep(0)  # the turn's flush, which must not raise either
        flush_request_lines()
    finally:
        loop.set_exception_handler(None)
        configure_logging(json_lines=True)
    assert failed == [] and handler.queued == []
    assert "BrokenPipeError" in capsys.readouterr().err  # reported as logging reports


def test_with_no_loop_a_broken_stream_still_never_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = JsonLineHandler(_Broken())
    handler.write_later('{"line": 1}\n')  # as under trio: written at once, and fails
    assert handler.queued == [] and "BrokenPipeError" in capsys.readouterr().err


async def test_a_loop_that_stopped_with_a_flush_queued_does_not_strand_the_next_lines() -> None:
    handler = JsonLineHandler(_Writes())
    stopped = asyncio.new_event_loop()
    handler.queued.append('{"line": 1}\n')
    handler.flush_on = stopped  # its flush was queued there, and that loop never ran again
    stopped.close()
    handler.write_later('{"line": 2}\n')  # on this test's loop: a flush of its own
    await asyncio.sleep(0)
    assert handler.stream.writes == ['{"line": 1}\n{"line": 2}\n']


def test_a_forked_child_drops_the_lines_its_parent_queued(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_lines=True)
    handler = logging.getLogger("shipshape").handlers[0]
    assert isinstance(handler, JsonLineHandler)
    try:
        handler.queued.append('{"parent": true}\n')  # a line queued when a view forks
        pid = os.fork()
        if pid == 0:
            try:
                logging.getLogger("app").warning("child")  # would write the parent's line
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        flush_request_lines()
    finally:
        configure_logging(json_lines=True)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert [line.get("message", "parent") for line in lines].count("parent") == 1


def _worker(line: str) -> None:
    """A worker process that queues a line, then exits with the loop's flush never run."""
    configure_logging(json_lines=True)
    flush_at_worker_exit()  # what serving's start does in a worker
    handler = logging.getLogger("shipshape").handlers[0]
    assert isinstance(handler, JsonLineHandler)
    handler.queued.append(line)


def test_a_forked_worker_writes_its_queued_lines_when_it_exits(
    capfd: pytest.CaptureFixture[str],
) -> None:
    worker = multiprocessing.get_context("fork").Process(
        target=_worker, args=('{"worker": "exiting"}\n',)
    )
    worker.start()
    worker.join(10)
    assert worker.exitcode == 0
    assert '{"worker": "exiting"}' in capfd.readouterr().err.splitlines()


async def test_an_apps_own_request_id_header_is_replaced_by_the_logged_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "shipshape.request")
    sent: list[Message] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"x-request-id", b"the-apps"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def collect(message: Message) -> None:
        sent.append(message)

    await _call(inner, collect)
    (record,) = request_records(caplog)
    assert sent[0]["headers"] == [
        (b"content-type", b"text/plain"),
        (b"x-request-id", record.__dict__["request_id"].encode()),
    ]


@pytest.mark.parametrize(
    "created",
    [
        1_800_000_000.0,  # no fraction: isoformat leaves the microseconds out
        1_800_000_000.9999995,  # rounds up into the next second
        1_800_000_000.9999994,
        1_800_000_000.0000005,  # half a microsecond: to even
        1_800_000_000.0000015,
        1_764_645_093.123456,
        0.5,
        -1.25,  # before 1970
    ],
)
def test_the_lines_time_is_isoformat_in_utc(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat()
    assert _iso_time(created) == expected
    assert _iso_time(created + 1) == datetime.fromtimestamp(created + 1, UTC).isoformat()
    assert _iso_time(created) == expected, "from the kept second and after another"


def test_the_lines_time_over_many_instants() -> None:
    rng = random.Random(11)  # noqa: S311 - test instants, reproducible
    for _ in range(20_000):
        created = rng.uniform(0, 4e9)
        assert _iso_time(created) == datetime.fromtimestamp(created, UTC).isoformat()
