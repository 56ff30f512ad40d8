"""shipshape.request: a JSON body that cannot be read is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from markupsafe import escape
from quart import Blueprint, Quart, request
from quart.wrappers import Request as QuartRequest

from shipshape import Shipshape
from shipshape.request import NotUTF8Error, Request, RequestBodyMiddleware, parse_urlencoded
from shipshape.typing import Message, Receive, Scope, Send

BAD_BODIES = [
    (b'{"a": "\xff"}', "The request body is not valid UTF-8 text."),
    (b"[" * 50_000 + b"]" * 50_000, "The JSON is nested too deeply."),
    (b'{"a": 1', "The body is not valid JSON: Expecting ',' delimiter, at line 1 column 8."),
    (b'\xef\xbb\xbf{"a": 1}', "The body is not valid JSON: it starts with a byte order mark."),
    (b'{"a": ' + b"1" * 5000 + b"}", "The body is not valid JSON: a number in it is too long."),
    # Regression (newcomer run): the last of two keys won, a wrong-typed first unseen.
    (b'{"name": 5, "name": "x"}',
     'The body is not valid JSON: the key "name" appears twice in one object.'),
    (b'[{"a": {"b": 1, "b": 2}}]',
     'The body is not valid JSON: the key "b" appears twice in one object.'),
    # Regression (hostile-input probe): Python's parser takes what JSON has not.
    (b'{"a": NaN}', "The body is not valid JSON: NaN is not a JSON value."),
    (b'[-Infinity]', "The body is not valid JSON: -Infinity is not a JSON value."),
    (b'{"a": 1e999}', "The body is not valid JSON: the number 1e999 is too large."),
    (b'{"a": "x\x00"}',
     "The body is not valid JSON: Invalid control character, at line 1 column 9."),
]  # fmt: skip


def make() -> Quart:
    app = Quart(__name__, static_folder=None)
    app.config.update(
        APP_ENV="testing", SHIPSHAPE_CSRF=False, SHIPSHAPE_ASSETS=False,
        RATELIMIT_DEFAULT="100000/second",
    )  # fmt: skip
    Shipshape(app)

    @app.post("/loud")
    async def loud() -> dict[str, Any]:
        return {"got": await request.get_json()}

    @app.post("/silent")
    async def silent() -> dict[str, Any]:
        return {"got": await request.get_json(silent=True)}

    return app


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
async def test_an_unreadable_json_body_is_a_400_or_none_when_silent(
    body: bytes, message: str
) -> None:
    app = make()
    client = app.test_client()
    headers = {"Content-Type": "application/json"}
    loud = await client.post("/loud", data=body, headers=headers)
    assert loud.status_code == 400
    assert str(escape(message)) in await loud.get_data(as_text=True)  # an HTML error page
    silent = await client.post("/silent", data=body, headers=headers)
    assert silent.status_code == 200 and await silent.get_json() == {"got": None}
    good = await client.post("/loud", json={"a": 1})
    assert await good.get_json() == {"got": {"a": 1}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/plain", []),  # the app's own view
        ("/outer/inner/deep", ["outer.inner", "outer"]),  # a nested blueprint's view
        ("/nowhere", []),  # no route
    ],
)
async def test_blueprints_are_quarts(path: str, expected: list[str]) -> None:
    app = make()
    outer, inner = Blueprint("outer", __name__), Blueprint("inner", __name__)

    @inner.get("/deep")
    async def deep() -> str:
        return ""

    @app.get("/plain")
    async def plain() -> str:
        return ""

    outer.register_blueprint(inner, url_prefix="/inner")
    app.register_blueprint(outer, url_prefix="/outer")
    async with app.test_request_context(path):
        assert isinstance(request._get_current_object(), Request)  # type: ignore[attr-defined]
        assert request.blueprints == expected
        assert QuartRequest.blueprints.fget(request) == expected  # type: ignore[attr-defined]
        request.blueprints.append("x")  # a caller's copy: the table is not changed
        assert request.blueprints == expected


async def _run_body(
    path: str, headers: list[tuple[bytes, bytes]], *, app_answers: bool
) -> list[Message]:
    """An app that reads the body and, when the server says the client left, stops
    without an answer, as Quart does."""

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if app_answers:  # a response already under way before the disconnect
                    await send({"type": "http.response.start", "status": 200, "headers": []})
                return
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"saved"})

    events: Iterator[Message] = iter(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(events)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    await RequestBodyMiddleware(inner)(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    ("path", "accept", "shape"),
    [
        ("/api/things", b"text/html", b'{"code":"bad_request"'),
        ("/form", b"text/html", b"<!doctype"),
    ],
)
async def test_a_chunked_body_the_server_gave_up_on_is_a_400(
    path: str, accept: bytes, shape: bytes
) -> None:
    headers = [(b"transfer-encoding", b"chunked"), (b"accept", accept)]
    sent = await _run_body(path, headers, app_answers=False)
    assert sent[0]["status"] == 400
    assert dict(sent[0]["headers"])[b"cache-control"] == b"no-store"
    assert sent[1]["body"].startswith(shape)
    assert b"its chunked framing is broken" in sent[1]["body"]


async def test_a_body_with_a_length_or_a_response_under_way_is_left_alone() -> None:
    # A Content-Length body cannot be malformed, only cut short by a client that left.
    assert await _run_body("/form", [(b"content-length", b"9")], app_answers=False) == []
    sent = await _run_body("/form", [(b"transfer-encoding", b"chunked")], app_answers=True)
    assert [m["status"] for m in sent] == [200]  # the app's, not a second start


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ([(b"content-length", b"2"), (b"content-encoding", b"gzip")], 415, b"a Content-Encoding"),
        ([(b"transfer-encoding", b"chunked"), (b"content-encoding", b"br")], 415, b"uncompressed"),
        (
            [(b"content-length", b"2"), (b"content-type", b"application/json"),
             (b"content-type", b"text/plain")],
            400, b"two Content-Type headers",
        ),
    ],
)  # fmt: skip
async def test_a_body_the_app_would_misread_is_refused_before_it_runs(
    headers: list[tuple[bytes, bytes]], status: int, words: bytes
) -> None:
    sent = await _run_body("/api/things", headers, app_answers=False)
    assert sent[0]["status"] == status
    assert words in sent[1]["body"]
    if status == 415:  # which coding it takes (RFC 9110 §12.5.3)
        assert dict(sent[0]["headers"])[b"accept-encoding"] == b"identity"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-encoding", b"gzip")],  # no body: nothing to misread
        [(b"content-length", b"0"), (b"content-type", b"a/b"), (b"content-type", b"c/d")],
        [(b"content-length", b"2"), (b"content-encoding", b"identity")],
    ],
)
async def test_requests_without_a_body_or_coding_pass(headers: list[tuple[bytes, bytes]]) -> None:
    sent = await _run_body("/api/things", headers, app_answers=False)
    assert sent == []  # the app ran; it was not answered here (the fake app's body ended)


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        (b"q=caf%C3%A9&sort=name", [("q", "café"), ("sort", "name")]),
        (b"q=caf\xc3%A9", [("q", "café")]),  # a raw byte and an escape, one character
        (b"a+b=c+d&e&f=&e=2", [("a b", "c d"), ("e", ""), ("f", ""), ("e", "2")]),
        (b"q=%25FF&r=%EF%BF%BD", [("q", "%FF"), ("r", "\ufffd")]),  # as sent, literally
        (b"", []),
    ],
)
def test_urlencoded_text_is_read_as_utf8(raw: bytes, pairs: list[tuple[str, str]]) -> None:
    assert parse_urlencoded(raw) == pairs


@pytest.mark.parametrize(
    ("raw", "name"),
    [(b"q=%ff", "q"), (b"a=1&q=%e2%82", "q"), (b"q=\xff", "q"), (b"%ff=1", None),
     (b"q=%C0%AE", "q")],  # overlong UTF-8
)  # fmt: skip
def test_urlencoded_text_that_is_not_utf8_names_its_parameter(raw: bytes, name: str | None) -> None:
    """Werkzeug's ``request.args`` reads ``%ff`` as the text ``%FF``, Quart's form parser as
    U+FFFD: neither is what was sent."""
    with pytest.raises(NotUTF8Error) as caught:
        parse_urlencoded(raw)
    assert caught.value.name == name
