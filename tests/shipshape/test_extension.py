from __future__ import annotations

import pytest
from quart import Quart
from quart import Request as QuartRequest
from quart.asgi import ASGIHTTPConnection

from shipshape import ConfigError, Shipshape
from shipshape.connection import HTTPConnection
from shipshape.request import Request
from tests.conftest import SECRET
from tests.shipshape.conftest import MakeApp


def test_registers_itself_and_parses_settings(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, PORT="8000")
    shipshape = app.extensions["shipshape"]
    assert isinstance(shipshape, Shipshape)
    assert shipshape.settings.port == 8000
    assert app.config["SECRET_KEY"] == shipshape.settings.secret_key
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_app_values_win_over_shipshape_defaults(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False, MAX_CONTENT_LENGTH=10, SESSION_COOKIE_SAMESITE="Strict")
    assert app.config["MAX_CONTENT_LENGTH"] == 10
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Strict"


def test_production_session_cookie_is_host_prefixed(make_app: MakeApp) -> None:
    app = make_app(
        SHIPSHAPE_ASSETS=False, APP_ENV="production", SECRET_KEY=SECRET, ALLOWED_HOSTS="a.test"
    )
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_PATH"] == "/"
    assert app.config["SESSION_COOKIE_DOMAIN"] is None


async def test_production_session_cookie_attributes(make_app: MakeApp) -> None:
    app = make_app(
        SHIPSHAPE_ASSETS=False, APP_ENV="production", SECRET_KEY=SECRET, ALLOWED_HOSTS="localhost"
    )

    @app.get("/")
    async def index() -> str:
        from quart import session

        session["x"] = 1
        return "ok"

    async with app.test_app():
        response = await app.test_client().get("/", scheme="https")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
        assert attribute in cookie
    assert "Domain" not in cookie


@pytest.mark.parametrize(
    ("feature", "present"),
    [
        ("SHIPSHAPE_HEALTH", "/healthz"),
        ("SHIPSHAPE_ERROR_PAGES", None),
        ("SHIPSHAPE_REQUEST_LOG", None),
    ],
)
async def test_every_feature_can_be_turned_off(
    make_app: MakeApp, feature: str, present: str | None
) -> None:
    on = make_app(SHIPSHAPE_ASSETS=False)
    off = make_app(SHIPSHAPE_ASSETS=False, **{feature: False})
    async with on.test_app(), off.test_app():
        on_response = await on.test_client().get(present or "/nowhere")
        off_response = await off.test_client().get(present or "/nowhere")
    if feature == "SHIPSHAPE_HEALTH":
        assert (on_response.status_code, off_response.status_code) == (200, 404)
    elif feature == "SHIPSHAPE_ERROR_PAGES":
        assert "Page not found" in await on_response.get_data(as_text=True)
        assert "Page not found" not in await off_response.get_data(as_text=True)
    else:
        assert "X-Request-ID" in on_response.headers
        assert "X-Request-ID" not in off_response.headers


def test_assets_off_means_no_helper(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False)
    assert app.extensions["shipshape"].assets is None
    assert "asset" not in app.jinja_env.globals


def test_init_twice_is_refused(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_ASSETS=False)
    with pytest.raises(RuntimeError, match="already initialised"):
        Shipshape(app)


def test_deferred_init_and_bad_config() -> None:
    shipshape = Shipshape()
    app = Quart(__name__)
    app.config["PORT"] = "abc"
    with pytest.raises(ConfigError, match="PORT: expected an integer"):
        shipshape.init_app(app)


def test_bad_proxy_networks_fail_with_one_line(make_app: MakeApp) -> None:
    with pytest.raises(ConfigError, match="SHIPSHAPE_TRUSTED_PROXY_NETWORKS: expected IP networks"):
        make_app(SHIPSHAPE_ASSETS=False, SHIPSHAPE_TRUSTED_PROXY_NETWORKS=["10.0.0.0/33"])


@pytest.mark.parametrize(
    ("attribute", "ours", "quarts"),
    [
        ("request_class", Request, QuartRequest),
        ("asgi_http_class", HTTPConnection, ASGIHTTPConnection),
    ],
)
def test_shipshape_installs_its_classes_but_keeps_an_apps_own(
    attribute: str, ours: type, quarts: type
) -> None:
    app = Quart(__name__, static_folder=None)
    app.config.update(APP_ENV="testing", SHIPSHAPE_ASSETS=False)
    assert getattr(app, attribute) is quarts
    Shipshape(app)
    assert getattr(app, attribute) is ours

    mine = type("Mine", (quarts,), {})  # an app's own, made from Quart's
    app = Quart(__name__, static_folder=None)
    setattr(app, attribute, mine)
    app.config.update(APP_ENV="testing", SHIPSHAPE_ASSETS=False)
    Shipshape(app)
    assert getattr(app, attribute) is mine
