"""One policy row per endpoint, gathered once when serving starts."""

from __future__ import annotations

import pytest
from quart import Quart
from quart.testing.app import LifespanError
from quart.views import MethodView

from shipshape.csp import csp_exempt, csp_extend
from shipshape.csrf import csrf_exempt
from shipshape.error_pages import json_errors
from shipshape.headers import header_profile, security_headers
from shipshape.pipeline import Pipeline
from shipshape.policy import ViewPolicy, set_columns
from shipshape.ratelimit import rate_limit
from tests.shipshape.conftest import MakeApp


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    app = make_app(SHIPSHAPE_ASSETS=False)

    @app.post("/hook")
    @csrf_exempt
    @json_errors
    @header_profile("api")
    @security_headers(X_Frame_Options=None)
    @security_headers(X_Extra="1")
    @rate_limit("5/minute")
    async def hook() -> str:
        return "ok"

    @app.get("/plain")
    async def plain() -> str:
        return "plain"

    return app


async def test_each_decorator_fills_its_column_of_the_row(app: Quart) -> None:
    async with app.test_app():
        table = Pipeline.of(app).policies
        assert set(table.rows) >= {"hook", "plain"}, "built when serving starts"
        row = table.row("hook")
        plain = table.row("plain")
    assert row.csrf_exempt and row.json_errors
    assert row.header_profile == "api"
    assert dict(row.header_overrides) == {"X-Frame-Options": None, "X-Extra": "1"}
    assert row.rate_limit is not None and str(row.rate_limit.limits[0]) == "5/60s"
    assert plain == ViewPolicy(endpoint="plain")


async def test_unrouted_requests_share_one_row(app: Quart) -> None:
    async with app.test_app():
        table = Pipeline.of(app).policies
        assert table.row(None) is table.unrouted
        assert table.unrouted.endpoint is None and not table.unrouted.csrf_exempt


async def test_a_route_added_after_start_up_gets_its_row_on_first_use(app: Quart) -> None:
    async with app.test_app():

        @app.post("/late")
        @csrf_exempt
        async def late() -> str:
            return "late"

        assert "late" not in Pipeline.of(app).policies.rows
        response = await app.test_client().post("/late")
        assert response.status_code == 200, "the exemption was read from the new row"
        assert Pipeline.of(app).policies.rows["late"].csrf_exempt


def test_csp_changes_compose_in_decorator_order() -> None:
    from shipshape.csp import API_POLICY

    @csp_extend(img_src=["https://a.example"])
    @csp_extend(img_src=["https://b.example"])
    async def view() -> str:
        return ""

    row = ViewPolicy.of("view", view)
    assert row.csp_change is not None
    changed = row.csp_change(API_POLICY)
    assert changed is not None
    assert changed.as_dict()["img-src"] == ("https://b.example", "https://a.example")

    exempt = ViewPolicy.of("exempt", csp_exempt(csp_extend(img_src=["x"])(view)))
    assert exempt.csp_change is not None and exempt.csp_change(API_POLICY) is None


def test_quart_static_routes_get_the_static_profile() -> None:
    async def serve() -> str:
        return ""

    assert ViewPolicy.of("static", serve).header_profile == "static"
    assert ViewPolicy.of("bp.static", serve).header_profile == "static"
    assert ViewPolicy.of("bp.static", header_profile("api")(serve)).header_profile == "api"


def test_unknown_columns_are_refused() -> None:
    async def view() -> str:
        return ""

    with pytest.raises(TypeError, match="unknown view policy columns"):
        set_columns(view, csrf_exmpt=True)


async def test_a_decorator_on_a_class_based_views_method_stops_start_up(
    make_app: MakeApp,
) -> None:
    """Regression (library user's probe): ``@rate_limit`` on a ``MethodView``'s ``get``
    was ignored without a word; the class's ``decorators`` list is what Quart applies."""
    app = make_app(SHIPSHAPE_ASSETS=False, RATELIMIT_DEFAULT="100/minute")

    class Ignored(MethodView):
        @rate_limit("1/minute")
        async def get(self) -> str:
            return "ok"

    class Limited(MethodView):
        decorators = [rate_limit("1/minute")]

        async def get(self) -> str:
            return "ok"

    class Exempt(MethodView):  # no limit of its own: a POST's answer is CSRF's alone
        decorators = [csrf_exempt]

        async def post(self) -> str:
            return "posted"

    app.add_url_rule("/limited", view_func=Limited.as_view("limited"))
    app.add_url_rule("/exempt", view_func=Exempt.as_view("exempt"))
    async with app.test_app():
        client = app.test_client()
        statuses = [(await client.get("/limited")).status_code for _ in range(2)]
        posted = await client.post("/exempt")  # no token: exempt by the class's list
    assert statuses == [200, 429] and posted.status_code == 200

    @csrf_exempt
    class OnTheClass(MethodView):
        async def post(self) -> str:
            return "posted"

    app.add_url_rule("/on-the-class", view_func=OnTheClass.as_view("on_the_class"))
    with pytest.raises(LifespanError, match=r"OnTheClass \(endpoint 'on_the_class'\) has csrf_"):
        async with app.test_app():
            pass
    del app.view_functions["on_the_class"]

    app.add_url_rule("/ignored", view_func=Ignored.as_view("ignored"))
    with pytest.raises(LifespanError, match=r"Ignored\.get \(endpoint 'ignored'\) has rate_"):
        async with app.test_app():
            pass
