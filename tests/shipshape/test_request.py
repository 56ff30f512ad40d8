"""shipshape.request: a JSON body that cannot be read is a 400, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import escape
from quart import Blueprint, Quart, request
from quart.wrappers import Request as QuartRequest

from shipshape import Shipshape
from shipshape.request import Request

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
