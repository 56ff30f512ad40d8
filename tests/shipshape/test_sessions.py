from __future__ import annotations

import pytest
from quart import Quart, session
from quart.sessions import SecureCookieSessionInterface

from shipshape import Shipshape
from shipshape.sessions import CachedSerializerSessionInterface
from tests.conftest import client_of
from tests.shipshape.conftest import MakeApp

OLD_KEY = "old-" + "o" * 40
NEW_KEY = "new-" + "n" * 40


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    app = make_app(SHIPSHAPE_HEALTH=False, SHIPSHAPE_ASSETS=False, SECRET_KEY=OLD_KEY)

    @app.get("/set/<value>")
    async def set_value(value: str) -> str:
        session["value"] = value
        return "set"

    @app.get("/get")
    async def get_value() -> str:
        return str(session.get("value", "-"))

    return app


def test_installed_by_default(app: Quart) -> None:
    assert isinstance(app.session_interface, CachedSerializerSessionInterface)


def test_an_apps_own_interface_is_kept() -> None:
    class Custom(SecureCookieSessionInterface):
        pass

    app = Quart(__name__, static_folder=None)
    app.session_interface = custom = Custom()
    app.config.update(APP_ENV="testing", SHIPSHAPE_HEALTH=False, SHIPSHAPE_ASSETS=False)
    Shipshape(app)
    assert app.session_interface is custom


def test_one_serializer_while_the_keys_stay(app: Quart) -> None:
    interface = app.session_interface
    assert isinstance(interface, CachedSerializerSessionInterface)
    first = interface.get_signing_serializer(app)
    assert first is not None
    assert interface.get_signing_serializer(app) is first
    app.secret_key = NEW_KEY
    assert interface.get_signing_serializer(app) is not first
    app.config["SECRET_KEY_FALLBACKS"] = [OLD_KEY]
    rotated = interface.get_signing_serializer(app)
    assert rotated is not None
    assert rotated.secret_keys == [OLD_KEY.encode(), NEW_KEY.encode()]


def test_cookies_match_quarts_own_interface(app: Quart) -> None:
    ours = app.session_interface.get_signing_serializer(app)
    theirs = SecureCookieSessionInterface().get_signing_serializer(app)
    assert ours is not None and theirs is not None
    assert ours.loads(theirs.dumps({"a": 1})) == {"a": 1}
    assert theirs.loads(ours.dumps({"a": 1})) == {"a": 1}


def test_no_secret_key_means_no_serializer(app: Quart) -> None:
    app.secret_key = None
    assert app.session_interface.get_signing_serializer(app) is None


async def test_session_round_trip_and_key_rotation(app: Quart) -> None:
    client = client_of(app)
    await client.get("/set/kept")
    assert await (await client.get("/get")).get_data(as_text=True) == "kept"

    # A new key alone drops the old cookie; with the old key as a fallback it still reads.
    app.secret_key = NEW_KEY
    assert await (await client.get("/get")).get_data(as_text=True) == "-"
    app.secret_key = OLD_KEY
    await client.get("/set/rotated")
    app.secret_key = NEW_KEY
    app.config["SECRET_KEY_FALLBACKS"] = [OLD_KEY]
    assert await (await client.get("/get")).get_data(as_text=True) == "rotated"
