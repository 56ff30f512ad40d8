from __future__ import annotations

import pytest
from quart import Quart, abort
from werkzeug.exceptions import TooManyRequests

from shipshape.responses import TITLES
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


async def test_api_prefix_root_is_json(app: Quart) -> None:
    async with app.test_app():
        response = await app.test_client().get("/api", headers={"Accept": "text/html"})
        assert response.content_type == "application/json"
