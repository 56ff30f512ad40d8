from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from flask.json.tag import JSONTag, TaggedJSONSerializer
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from markupsafe import Markup
from quart import Quart, session
from quart.sessions import SecureCookieSessionInterface, session_json_serializer
from werkzeug.http import dump_cookie

from shipshape import Shipshape
from shipshape.sessions import (
    ZLIB_FROM,
    CachedSerializerSessionInterface,
    CookieSessions,
    _base64,
    _PaddedKey,
    _SessionSigner,
    _TaggedJSON,
)
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


# Cookie compatibility with stock Quart: the same keys, salt and format, so a
# cookie written by one loads in the other.

#: 64 hex digits, as a fresh session's CSRF secret. zlib shortens this by a
#: few bytes through Huffman coding alone, so stock Quart compresses it.
CSRF = hashlib.sha256(b"csrf").hexdigest()
#: 128 URL-safe base64 characters of random bytes, which stock Quart sends uncompressed.
TOKEN = base64.urlsafe_b64encode(
    hashlib.sha512(b"a").digest() + hashlib.sha512(b"b").digest()[:32]
).decode()
#: 139 such characters, whose session zlib shortens by exactly one byte:
#: too little for itsdangerous, which compresses only to save two or more.
ONE_BYTE = base64.urlsafe_b64encode(
    hashlib.sha512(b"0-0").digest() + hashlib.sha512(b"0-1").digest()
).decode()[:139]
NOW = 1_800_000_000  # a fixed signing time, in Unix seconds
EVERY_TAG = {
    "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    "id": UUID(int=7),
    "raw": b"\x00\xff",
    "html": Markup("<b>x</b>"),
    "pair": (1, "two"),
    "nested": {" t": ["a", {"b": None}]},  # a key that looks like a tag
    "text": "é ☃",
}

#: (session, stock Quart compresses it, our cookie is stock's byte for byte)
PAYLOADS = [
    ({"a": 1}, False, True),
    ({"_csrf": CSRF}, True, False),  # under ZLIB_FROM: ours is not compressed
    ({"_csrf": CSRF, "_flashes": [("message", "Saved.")]}, True, False),
    ({"token": TOKEN}, False, True),  # over ZLIB_FROM, but zlib does not pay
    ({"token": ONE_BYTE}, False, True),
    ({"page": "shipshape " * 100}, True, True),  # big: compressed as stock does it
    (EVERY_TAG, True, True),
]


@pytest.fixture
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The signature covers the timestamp: both serializers sign at one instant.
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: NOW)


def serializers(app: Quart) -> tuple[URLSafeTimedSerializer, URLSafeTimedSerializer]:
    ours = CachedSerializerSessionInterface().get_signing_serializer(app)
    stock = SecureCookieSessionInterface().get_signing_serializer(app)
    assert ours is not None and stock is not None
    return ours, stock


@pytest.mark.parametrize(("data", "stock_compresses", "same_bytes"), PAYLOADS)
def test_cookies_load_in_stock_quart_and_back(
    app: Quart, data: dict[str, Any], stock_compresses: bool, same_bytes: bool
) -> None:
    ours, stock = serializers(app)
    ours_cookie, stock_cookie = ours.dumps(data), stock.dumps(data)
    assert stock_cookie.startswith(".") is stock_compresses
    assert stock.loads(ours_cookie) == data
    assert ours.loads(stock_cookie) == data


@pytest.mark.usefixtures("fixed_time")
@pytest.mark.parametrize(("data", "stock_compresses", "same_bytes"), PAYLOADS)
def test_cookies_are_stocks_bytes_unless_a_small_payload_would_compress(
    app: Quart, data: dict[str, Any], stock_compresses: bool, same_bytes: bool
) -> None:
    ours, stock = serializers(app)
    ours_cookie, stock_cookie = ours.dumps(data), stock.dumps(data)
    assert (ours_cookie == stock_cookie) is same_bytes
    if not same_bytes:
        # The payload goes out as stock's JSON, uncompressed, signed as stock signs it.
        text = session_json_serializer.dumps(data)
        assert len(text) < ZLIB_FROM
        assert ours_cookie == stock.make_signer().sign(base64_encode(text)).decode()


@pytest.mark.parametrize("data", [data for data, _, _ in PAYLOADS])
async def test_tagged_json_is_flasks_in_and_out_of_an_app_context(
    app: Quart, data: dict[str, Any]
) -> None:
    ours = _TaggedJSON(session_json_serializer)
    text = session_json_serializer.dumps(data)
    assert ours.dumps(data) == text
    assert ours.loads(text) == session_json_serializer.loads(text) == data
    async with app.app_context():
        assert ours.dumps(data) == session_json_serializer.dumps(data) == text


def rotated_signer(app: Quart) -> Signer:
    """The app's session signer, with NEW_KEY signing and OLD_KEY still accepted."""
    app.secret_key = NEW_KEY
    app.config["SECRET_KEY_FALLBACKS"] = [OLD_KEY]
    ours = app.session_interface.get_signing_serializer(app)
    assert ours is not None
    return ours.make_signer()


def test_the_signer_derives_keys_as_itsdangerous_does(app: Quart) -> None:
    signer = rotated_signer(app)
    ours = app.session_interface.get_signing_serializer(app)
    assert ours is not None and isinstance(signer, _SessionSigner)
    assert ours.make_signer() is signer and ours.make_signer(b"cookie-session") is signer
    stock = TimestampSigner(
        [OLD_KEY, NEW_KEY], salt="cookie-session", key_derivation="hmac", digest_method=hashlib.sha1
    )
    for key in (None, OLD_KEY, NEW_KEY, "a key it was not given"):
        assert signer.derive_key(key) == stock.derive_key(key)


def test_signing_derives_no_key(app: Quart, monkeypatch: pytest.MonkeyPatch) -> None:
    ours, _ = serializers(app)

    def derive_key(self: Signer, secret_key: str | bytes | None = None) -> bytes:
        raise AssertionError("derived per signature")

    monkeypatch.setattr(Signer, "derive_key", derive_key)
    assert ours.loads(ours.dumps({"a": 1})) == {"a": 1}


def test_another_salt_gets_its_own_signer(app: Quart) -> None:
    ours, stock = serializers(app)
    signed = ours.dumps({"a": 1}, salt="elsewhere")
    assert stock.loads(signed, salt="elsewhere") == {"a": 1}
    with pytest.raises(BadSignature):
        stock.loads(signed)


def test_keys_rotate_as_in_stock_quart(app: Quart) -> None:
    _, old_only = serializers(app)
    app.secret_key = NEW_KEY
    app.config["SECRET_KEY_FALLBACKS"] = [OLD_KEY]
    ours, _ = serializers(app)
    assert ours.loads(old_only.dumps({"a": 1})) == {"a": 1}
    # A new cookie is signed with the new key: stock reads it with that key alone.
    cookie = ours.dumps({"a": 2})
    app.config["SECRET_KEY_FALLBACKS"] = []
    _, new_only = serializers(app)
    assert new_only.loads(cookie) == {"a": 2}
    with pytest.raises(BadSignature):
        old_only.loads(cookie)


def tamper(cookie: str, part: int) -> str:
    """``cookie`` with one character of its payload, timestamp or signature changed."""
    parts = cookie.split(".")
    index = len(parts) - 3 + part
    parts[index] = ("B" if parts[index][0] == "A" else "A") + parts[index][1:]
    return ".".join(parts)


@pytest.mark.parametrize("writer", ["ours", "stock"])
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda cookie: tamper(cookie, 0), id="payload"),
        pytest.param(lambda cookie: tamper(cookie, 1), id="timestamp"),
        pytest.param(lambda cookie: tamper(cookie, 2), id="signature"),
        pytest.param(lambda cookie: cookie.rsplit(".", 1)[0], id="no signature"),
        pytest.param(
            lambda cookie: cookie[1:] if cookie.startswith(".") else "." + cookie,
            id="compression marker",
        ),
    ],
)
@pytest.mark.parametrize("data", [{"_csrf": CSRF}, {"page": "shipshape " * 100}])
def test_a_tampered_cookie_is_rejected(
    app: Quart, writer: str, forge: Callable[[str], str], data: dict[str, Any]
) -> None:
    ours, stock = serializers(app)
    cookie = forge((ours if writer == "ours" else stock).dumps(data))
    with pytest.raises(BadSignature):
        ours.loads(cookie)
    sessions = CookieSessions(app)
    assert sessions.load(f"{sessions.name}={cookie}") == {}


def test_a_cookie_signed_with_another_key_is_rejected(app: Quart) -> None:
    ours, _ = serializers(app)
    app.secret_key = NEW_KEY
    _, other = serializers(app)
    with pytest.raises(BadSignature):
        ours.loads(other.dumps({"a": 1}))


def test_an_apps_own_serializer_is_used_as_it_is(app: Quart) -> None:
    class Shouting(TaggedJSONSerializer):
        def dumps(self, value: Any) -> str:
            return super().dumps(value).upper()

    class Custom(CachedSerializerSessionInterface):
        serializer = Shouting()

    ours = Custom().get_signing_serializer(app)
    assert ours is not None
    assert ours.serializer is Custom.serializer
    assert ours.loads(ours.dumps({"a": "b"})) == {"A": "B"}


def test_custom_tags_are_kept(app: Quart) -> None:
    class TagSet(JSONTag):
        key = " set"

        def check(self, value: Any) -> bool:
            return isinstance(value, set)

        def to_json(self, value: Any) -> Any:
            return sorted(value)

        def to_python(self, value: Any) -> Any:
            return set(value)

    tagged = TaggedJSONSerializer()
    tagged.register(TagSet, index=0)

    class Ours(CachedSerializerSessionInterface):
        serializer = tagged

    class Stock(SecureCookieSessionInterface):
        serializer = tagged

    ours = Ours().get_signing_serializer(app)
    stock = Stock().get_signing_serializer(app)
    assert ours is not None and stock is not None
    assert stock.loads(ours.dumps({"s": {2, 1}})) == {"s": {1, 2}}
    assert ours.loads(stock.dumps({"s": {3}})) == {"s": {3}}


async def test_stock_quart_reads_the_apps_session_and_back(app: Quart) -> None:
    stock_app = Quart(__name__, static_folder=None)
    stock_app.config.update(
        SECRET_KEY=OLD_KEY, SESSION_COOKIE_NAME=app.config["SESSION_COOKIE_NAME"]
    )
    assert type(stock_app.session_interface) is SecureCookieSessionInterface

    @stock_app.get("/get")
    async def get_value() -> str:
        return str(session.get("value", "-"))

    @stock_app.get("/set/<value>")
    async def set_value(value: str) -> str:
        session["value"] = value
        return "set"

    long = "x" * 500  # compressed by both
    for writer, reader in ((app, stock_app), (stock_app, app)):
        for value in ("short", long):
            response = await client_of(writer).get(f"/set/{value}")
            cookie = response.headers["Set-Cookie"].split(";")[0]
            answer = await client_of(reader).get("/get", headers={"Cookie": cookie})
            assert await answer.get_data(as_text=True) == value


def test_cookie_sessions_read_what_stock_quart_writes(app: Quart) -> None:
    _, stock = serializers(app)
    sessions = CookieSessions(app)
    for data in ({"_csrf": CSRF}, {"page": "shipshape " * 100}):
        assert sessions.load(f"{sessions.name}={stock.dumps(data)}") == data
        value = sessions.set_cookie(data).decode().split(";")[0].split("=", 1)[1]
        assert stock.loads(value) == data


@pytest.mark.parametrize(
    "data",
    [
        {"_csrf": CSRF},
        {},
        {" t": "a tag's key, alone"},  # tagged as a dict (TagDict), like stock
        {" t": "a tag's key", "a": "b"},
        {"html": Markup("<b>x</b>")},  # a str subclass that Flask tags
        {"text": "é ☃"},
        {"a": "b", "n": 1},
        {"n": 1, "a": "b"},  # not a plain string first
        {"a": "b", "c": "d"},
    ],
)
def test_a_dict_of_plain_strings_is_flasks_tagged_json(data: dict[str, Any]) -> None:
    assert _TaggedJSON(session_json_serializer).dumps(data) == session_json_serializer.dumps(data)


@given(st.binary(max_size=300))
def test_base64_is_itsdangerous_own(data: bytes) -> None:
    assert _base64(data) == base64_encode(data)


class TagShout(JSONTag):
    """A custom tag that tags every string: no plain string is its own tagged form."""

    key = " shout"

    def check(self, value: Any) -> bool:
        return isinstance(value, str)

    def to_json(self, value: Any) -> Any:
        return value.upper()


def test_a_custom_tag_for_strings_still_tags_them() -> None:
    tagged = TaggedJSONSerializer()
    tagged.register(TagShout, index=0)
    assert (
        _TaggedJSON(tagged).dumps({"a": "b"}) == tagged.dumps({"a": "b"}) == '{"a":{" shout":"B"}}'
    )


def test_signatures_are_stocks_as_the_second_changes(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timestamp is encoded once a second: a new second gets its own."""
    ours, stock = serializers(app)
    now = [NOW]
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now[0])
    for moment in (NOW, NOW, NOW + 1, NOW + 1, NOW + 86_400, NOW):
        now[0] = moment
        assert ours.make_signer().sign(b"payload") == stock.make_signer().sign(b"payload")


@pytest.mark.usefixtures("fixed_time")
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_NAME": "__Host-session"},
        {"SESSION_COOKIE_DOMAIN": "example.com", "SESSION_COOKIE_PATH": "/app"},
        {"SESSION_COOKIE_SAMESITE": "Strict", "SESSION_COOKIE_HTTPONLY": False},
        {"SESSION_COOKIE_SAMESITE": None, "SESSION_COOKIE_PARTITIONED": True},
        {"SESSION_COOKIE_NAME": "séssion"},  # written as UTF-8 bytes
        {"SESSION_COOKIE_NAME": "セッション"},
    ],
)
def test_cookie_sessions_write_what_werkzeug_writes(app: Quart, config: dict[str, Any]) -> None:
    app.config.update(config)
    sessions = CookieSessions(app)
    interface = app.session_interface

    def expected(data: dict[str, Any]) -> bytes:
        serializer = interface.get_signing_serializer(app)
        assert serializer is not None
        return dump_cookie(
            interface.get_cookie_name(app),
            serializer.dumps(data),
            expires=interface.get_expiration_time(app, interface.session_class(data)),
            path=interface.get_cookie_path(app),
            domain=interface.get_cookie_domain(app),
            secure=interface.get_cookie_secure(app),
            httponly=interface.get_cookie_httponly(app),
            samesite=interface.get_cookie_samesite(app),
            partitioned=interface.get_cookie_partitioned(app),
        ).encode("latin-1")

    for data in ({"_csrf": CSRF}, {"_csrf": TOKEN}):
        assert sessions.set_cookie(data) == expected(data)
    app.config["SESSION_COOKIE_SAMESITE"] = (
        "Lax" if config.get("SESSION_COOKIE_SAMESITE") else "Strict"
    )
    app.config["SESSION_COOKIE_PATH"] = "/elsewhere"
    assert sessions.set_cookie({"_csrf": CSRF}) == expected({"_csrf": CSRF}), "settings changed"
    permanent = {"_csrf": CSRF, "_permanent": True}
    fixed = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    stock_expiry = interface.get_expiration_time
    interface.get_expiration_time = lambda app, session: (  # type: ignore[method-assign]
        fixed if session.permanent else stock_expiry(app, session)
    )
    cookie = sessions.set_cookie(permanent)
    assert b"Expires=" in cookie and cookie == expected(permanent)


def test_cookie_parts_kept_between_cookies_follow_the_settings_and_methods(app: Quart) -> None:
    """The parts kept between two cookies (sessions._CookieParts) are dropped whenever the
    long way would write something else: a setting, the key, a method set on the interface."""
    sessions = CookieSessions(app)
    interface = app.session_interface

    def value_of(cookie: bytes) -> str:
        return cookie.decode().split(";")[0].split("=", 1)[1]

    def check(data: dict[str, Any], key: str) -> bytes:
        cookie = sessions.set_cookie(data)
        serializer = URLSafeTimedSerializer(
            key, salt="cookie-session", serializer=session_json_serializer,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
        )  # fmt: skip
        assert serializer.loads(value_of(cookie)) == data
        return cookie

    first = check({"_csrf": CSRF}, OLD_KEY)
    assert sessions._parts is not None, "a cookie without an expiry keeps its parts"
    second = check({"_csrf": TOKEN}, OLD_KEY)
    assert second.split(b";", 1)[1] == first.split(b";", 1)[1]
    app.config["SECRET_KEY"] = NEW_KEY
    check({"_csrf": CSRF}, NEW_KEY)  # signed with the new key, not the kept serializer's
    app.config["SESSION_COOKIE_SECURE"] = True
    assert b"; Secure" in check({"_csrf": CSRF}, NEW_KEY)
    interface.get_cookie_path = lambda app: "/only-here"  # type: ignore[method-assign]
    assert b"Path=/only-here" in check({"_csrf": CSRF}, NEW_KEY)
    del interface.get_cookie_path
    assert b"Path=/;" in check({"_csrf": CSRF}, NEW_KEY)
    assert b"Expires=" in check({"_csrf": CSRF, "_permanent": True}, NEW_KEY)
    assert b"Expires=" not in check({"_csrf": CSRF}, NEW_KEY)


def test_cookies_written_together_are_each_as_written_alone(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_900_000_000.5)  # one second for all
    sessions = CookieSessions(app)
    datas: list[dict[str, Any]] = [
        {"_csrf": CSRF},
        {"_csrf": TOKEN, "theme": "dark"},
        {"_csrf": CSRF, "_permanent": True},  # an expiry: the long way
        {"page": "x" * 5000},  # past dump_cookie's warning size: the long way
    ]
    for _ in range(2):  # without kept parts, then with them
        together = sessions.set_cookies(datas)
        alone = [sessions.set_cookie(data) for data in datas]
        assert together[:2] == alone[:2] and together[3] == alone[3]
        assert b"Expires=" in together[2] and b"Expires=" not in together[0]
        assert [sessions.load(c.split(b";")[0].decode()) for c in together[:3]] == datas[:3]


@pytest.mark.parametrize("digest", [hashlib.sha1, hashlib.sha256, hashlib.sha512, hashlib.md5])
@pytest.mark.parametrize("key_size", [0, 1, 20, 64, 65, 128, 129, 300])
def test_the_padded_key_is_hmac(digest: Callable[..., Any], key_size: int) -> None:
    key = bytes(range(256))[:key_size] if key_size <= 256 else b"k" * key_size
    padded = _PaddedKey(key, digest)
    for message in (b"", b"x", b"payload.stamp" * 50):
        assert padded.digest(message) == hmac.new(key, message, digest).digest()
        assert padded.digest(message) == padded.digest(message), "the pads are copied, not used up"


def test_signatures_verify_with_every_key_and_no_other(app: Quart) -> None:
    signer = rotated_signer(app)
    for key in (OLD_KEY, NEW_KEY):
        stock = TimestampSigner(
            key, salt="cookie-session", key_derivation="hmac", digest_method=hashlib.sha1
        )
        value, _, signature = stock.sign(b"payload").rpartition(b".")
        assert signer.verify_signature(value, signature)
        assert not signer.verify_signature(value + b"!", signature)
    other = TimestampSigner(
        "another-" + "a" * 40,
        salt="cookie-session",
        key_derivation="hmac",
        digest_method=hashlib.sha1,
    )
    value, _, signature = other.sign(b"payload").rpartition(b".")
    assert not signer.verify_signature(value, signature)
    assert not signer.verify_signature(value, b"not base64 \xff")


def test_a_cookie_too_big_for_browsers_still_gets_werkzeugs_warning(app: Quart) -> None:
    sessions = CookieSessions(app)
    sessions.set_cookie({"_csrf": CSRF})  # the attributes are kept
    with pytest.warns(UserWarning, match="cookie is too large"):
        noise = "".join(hashlib.sha256(b"%d" % i).hexdigest() for i in range(200))
        cookie = sessions.set_cookie({"_csrf": CSRF, "page": noise})
    assert len(cookie) > 4093


def test_a_digest_named_by_a_string_signs_as_itsdangerous_does(app: Quart) -> None:
    class Named(CachedSerializerSessionInterface):
        digest_method = "sha256"  # type: ignore[assignment]

    class Stock(SecureCookieSessionInterface):
        digest_method = "sha256"  # type: ignore[assignment]

    ours = Named().get_signing_serializer(app)
    stock = Stock().get_signing_serializer(app)
    assert ours is not None and stock is not None
    assert stock.loads(ours.dumps({"a": "b"})) == {"a": "b"}
    assert ours.loads(stock.dumps({"a": "b"})) == {"a": "b"}


def test_a_tag_registered_after_first_use_is_applied() -> None:
    tagged = TaggedJSONSerializer()
    ours = _TaggedJSON(tagged)
    assert ours.dumps({"a": "b"}) == '{"a":"b"}'
    tagged.register(TagShout, index=0)
    assert ours.dumps({"a": "b"}) == tagged.dumps({"a": "b"}) == '{"a":{" shout":"B"}}'
