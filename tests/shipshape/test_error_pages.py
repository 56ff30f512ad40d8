from __future__ import annotations

import logging

import pytest
from quart import Quart, abort, websocket
from quart.testing.connections import WebsocketDisconnectError
from werkzeug.exceptions import TooManyRequests

from shipshape.error_pages import has_own_description
from shipshape.ratelimit import rate_limit
from shipshape.responses import MESSAGES, TITLES, accept_items, prefers_json
from tests.shipshape.conftest import MakeApp


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    app = make_app(SHIPSHAPE_ASSETS=False, PROPAGATE_EXCEPTIONS=False)

    @app.get("/teapot")
    async def teapot() -> str:
        abort(418)

    @app.get("/missing")
    async def missing() -> str:
        abort(404, "No thing with id 7")

    @app.get("/slow-down")
    async def slow_down() -> str:
        raise TooManyRequests(retry_after=30)

    @app.get("/boom")
    async def boom() -> str:
        raise ValueError("password=hunter2")

    return app


async def test_default_template_renders_without_an_app_template(app: Quart) -> None:
    async with app.test_app():
        response = await app.test_client().get("/nowhere")
        body = await response.get_data(as_text=True)
        assert response.status_code == 404
        assert f"<h1>{TITLES[404]}</h1>" in body


async def test_app_chosen_message_is_kept(app: Quart) -> None:
    async with app.test_app():
        response = await app.test_client().get("/missing", headers={"Accept": "application/json"})
        assert await response.get_json() == {
            "error": 404,
            "code": "not_found",
            "message": "No thing with id 7",
        }


async def test_unlisted_status_uses_werkzeug_name(app: Quart) -> None:
    async with app.test_app():
        response = await app.test_client().get("/teapot", headers={"Accept": "application/json"})
        payload = await response.get_json()
        assert response.status_code == 418
        assert payload["code"] == "im_a_teapot"


async def test_retry_after_survives(app: Quart) -> None:
    async with app.test_app():
        response = await app.test_client().get("/slow-down")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "30"


async def test_500_logs_but_never_shows_the_exception(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    async with app.test_app():
        response = await app.test_client().get("/boom", headers={"Accept": "application/json"})
        body = await response.get_data(as_text=True)
        assert response.status_code == 500
        assert "hunter2" not in body and "ValueError" not in body
        assert any(r.name == "shipshape.errors" and r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        ("text/html", False),
        ("*/*", False),
        ("application/json", True),
        ("application/json, text/html;q=0.5", True),
        ("text/html, application/json;q=0.9", False),
        ("", False),
    ],
)
async def test_negotiation(app: Quart, accept: str, json: bool) -> None:
    async with app.test_app():
        response = await app.test_client().get("/nowhere", headers={"Accept": accept})
        assert (response.content_type == "application/json") is json
        # Regression: a cache in front could serve one shape to the other client.
        assert "accept" in {value.strip().lower() for value in response.vary}


async def test_api_prefix_root_is_json(app: Quart) -> None:
    async with app.test_app():
        response = await app.test_client().get("/api", headers={"Accept": "text/html"})
        assert response.content_type == "application/json"
        assert "accept" not in {value.strip().lower() for value in response.vary}, "one shape"


async def test_the_500_log_line_carries_its_request_lines_id(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the id was put on the scope and never read, so a 500 could not be matched."""
    caplog.set_level(logging.INFO)
    async with app.test_app():
        response = await app.test_client().get("/boom")
    request_id = response.headers["X-Request-ID"]
    # One record of the traceback (regression, newcomer run: Quart's own repeated it).
    (error,) = [r for r in caplog.records if r.exc_info]
    assert error.name == "shipshape.errors"
    (line,) = [r for r in caplog.records if r.name == "shipshape.request"]
    assert error.__dict__["request_id"] == request_id == line.__dict__["request_id"]


@pytest.mark.parametrize(
    ("accept", "message"),
    [
        ("text/html", MESSAGES[429]),
        ("application/json", MESSAGES[429]),
    ],
)
async def test_a_429_says_the_apps_own_words(app: Quart, accept: str, message: str) -> None:
    """Regression: Werkzeug's "This user has exceeded an allotted request count" showed."""
    async with app.test_app():
        response = await app.test_client().get("/slow-down", headers={"Accept": accept})
        body = await response.get_data(as_text=True)
    assert message in body
    assert "allotted" not in body


async def test_rate_limited_page_says_the_apps_own_words(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False)

    @app.get("/once")
    @rate_limit("1/minute")
    async def once() -> str:
        return "ok"

    async with app.test_app():
        client = app.test_client()
        await client.get("/once")
        response = await client.get("/once")
        body = await response.get_data(as_text=True)
    assert response.status_code == 429
    assert MESSAGES[429] in body and "allotted" not in body


@pytest.mark.parametrize(
    ("path", "accept", "message"),
    [
        ("/api/nothing", "application/json", "There is nothing at this address."),
        ("/nothing", "application/json", "There is nothing at this address."),
        ("/nothing", "text/html", MESSAGES[404]),
    ],
)
async def test_json_404s_do_not_send_clients_to_the_home_page(
    app: Quart, path: str, accept: str, message: str
) -> None:
    async with app.test_app():
        response = await app.test_client().get(path, headers={"Accept": accept})
        body = await response.get_data(as_text=True)
    assert response.status_code == 404
    assert message in body
    if accept == "application/json":
        assert "home page" not in body


def test_own_descriptions_are_told_from_werkzeugs_stock_ones() -> None:
    from werkzeug.exceptions import NotFound

    from shipshape.csrf import CSRFError

    assert not has_own_description(TooManyRequests())
    assert not has_own_description(NotFound())
    assert has_own_description(NotFound("No thing with id 7"))
    assert has_own_description(CSRFError("missing token"))


async def test_errors_made_before_the_app_read_as_the_apps_own(make_app: MakeApp) -> None:
    """Regression: errors from the ASGI layers (a refused host, a 406, a 429) were JSON
    with spaces and their own key order, the app's compact and sorted."""
    app = make_app(
        APP_ENV="production", SECRET_KEY="k" * 64, ALLOWED_HOSTS="app.example",
        SHIPSHAPE_ASSETS=False,
    )  # fmt: skip
    async with app.test_app():
        client = app.test_client()
        headers = {"Accept": "application/json", "Host": "app.example"}
        made_by_app = await client.get("/nowhere", headers=headers, scheme="https")
        refused = await client.get("/", headers={**headers, "Host": "evil.example"})
    assert await made_by_app.get_data() == (
        b'{"code":"not_found","error":404,"message":"There is nothing at this address."}\n'
    )
    assert await refused.get_data() == (
        b'{"code":"host_not_allowed","error":400,"message":"This host name is not served here."}'
    )


async def test_websocket_errors_close_the_socket_with_the_errors_code(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression (review): a route that closed its socket and then aborted crashed the
    handler ("Cannot close websocket multiple times"); an error after accept was a 1008."""

    @app.websocket("/closed-then-abort")
    async def closed_then_abort() -> None:
        await websocket.close(1000)
        abort(400)

    @app.websocket("/ws-boom")
    async def ws_boom() -> None:
        await websocket.accept()
        abort(500)

    @app.websocket("/refused")
    async def refused() -> None:
        abort(403)

    async with app.test_app():
        client = app.test_client()
        codes = {}
        for path in ("/closed-then-abort", "/ws-boom", "/refused"):
            with pytest.raises(WebsocketDisconnectError) as closed:
                async with client.websocket(path) as socket:
                    await socket.receive()
            codes[path] = closed.value.args[0]
    assert codes == {"/closed-then-abort": 1000, "/ws-boom": 1011, "/refused": 1008}
    assert "Cannot close" not in caplog.text


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("APPLICATION/JSON; charset=utf-8", True),
        ("text/html, application/json", False),  # a tie is HTML's
        ("application/json, text/html;q=0.9", True),
        ("text/html;q=0.5, */*", True),  # */* gives JSON 1
        ("application/json;q=0, */*", False),  # the named range wins over */*
        ("application/*;q=0.8, text/html;q=0.7", True),
        ("application/*;q=0.8, application/json;q=0.1, text/*;q=0.5", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("*/*", False),
        ("application/json;q=nan, text/html;q=0.1", False),  # not a q-value: left out
        ("application/json;q=2", False),
        ("application/json;q=, text/plain", False),
        ("", False),
        (",,;;,", False),
    ],
)
def test_prefers_json_ranks_by_the_most_specific_range(accept: str, expected: bool) -> None:
    assert prefers_json(accept) is expected


def test_accept_items_reads_a_long_value_in_one_pass() -> None:
    """Regression (SPA probe): werkzeug's parser took 4.5 ms for a fresh 15 KB ``Accept``
    on the layer's unlimited 404, more than a rate-limited page. The items come back in
    order, each once."""
    accept = ", ".join(f"type{n}/sub{n};q=0.{n % 10}" for n in range(600))
    items = accept_items(accept)
    assert len(items) == 600
    assert items[7] == ("type7/sub7", 0.7)
    assert prefers_json(accept + ", application/json") is True
