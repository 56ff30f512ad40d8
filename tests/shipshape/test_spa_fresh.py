"""New sessions for the single-page index, made in batches (``shipshape.spa.fresh``)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from itsdangerous import BadSignature, URLSafeTimedSerializer
from quart import Quart
from quart.sessions import SecureCookieSessionInterface, session_json_serializer

from shipshape.csrf import SESSION_KEY, unmask
from shipshape.sessions import CookieSessions
from shipshape.spa import fresh
from shipshape.spa.fresh import BATCH, FreshSessions
from tests.shipshape.conftest import MakeApp

KEY = "fresh-" + "k" * 40
OTHER_KEY = "other-" + "o" * 40


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    return make_app(SHIPSHAPE_HEALTH=False, SHIPSHAPE_ASSETS=False, SECRET_KEY=KEY)


def serializer(key: str) -> URLSafeTimedSerializer:
    """Stock Quart's session serializer for ``key``."""
    return URLSafeTimedSerializer(
        key, salt="cookie-session", serializer=session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )  # fmt: skip


def opened(cookie: bytes, key: str = KEY) -> tuple[dict[str, str], int]:
    """The session in a ``Set-Cookie`` value, read by stock Quart's serializer, and when
    it was signed."""
    value = cookie.decode().split(";")[0].split("=", 1)[1]
    data, signed = serializer(key).loads(value, return_timestamp=True)
    return data, int(signed.timestamp())


def test_every_session_is_new_and_its_token_is_its_own_secret(app: Quart) -> None:
    pool = FreshSessions(CookieSessions(app))
    taken = [pool.take() for _ in range(3 * BATCH + 1)]  # across batches
    secrets = []
    for cookie, token in taken:
        data, _ = opened(cookie)
        assert list(data) == [SESSION_KEY]
        secret = unmask(token)
        assert secret is not None and secret.hex() == data[SESSION_KEY]
        secrets.append(secret)
    assert len(set(secrets)) == len(secrets), "a session handed out twice"
    assert len({token for _, token in taken}) == len(taken)


def test_a_batch_ends_with_its_second(app: Quart, monkeypatch: pytest.MonkeyPatch) -> None:
    start = 1_900_000_000
    now = [start + 0.25]
    monkeypatch.setattr(time, "time", lambda: now[0])
    pool = FreshSessions(CookieSessions(app))
    assert opened(pool.take()[0])[1] == start
    now[0] = start + 0.95
    assert opened(pool.take()[0])[1] == start, "the same second: the same batch"
    left = {token for _, token in pool._batch[2]}
    now[0] = start + 1.05
    later = [pool.take() for _ in range(BATCH)]
    assert {opened(cookie)[1] for cookie, _ in later} == {start + 1}
    assert not left & {token for _, token in later}, "the last second's rest handed out"
    now[0] = start + 3601.05
    assert opened(pool.take()[0])[1] == start + 3601, "an hour later: signed now"
    now[0] = start + 3600.5  # the clock set back: another second, another batch
    assert opened(pool.take()[0])[1] == start + 3600


def test_a_new_key_signs_the_next_session(app: Quart) -> None:
    pool = FreshSessions(CookieSessions(app))
    opened(pool.take()[0])
    app.config.update(SECRET_KEY=OTHER_KEY)
    cookie, _ = pool.take()
    assert opened(cookie, OTHER_KEY)[0]
    with pytest.raises(BadSignature):
        opened(cookie, KEY)
    app.config.update(SESSION_COOKIE_SECURE=True)
    assert b"; Secure" in pool.take()[0]
    # A fallback key alone changes nothing a cookie holds, but a batch is never kept
    # across a change of the keys: the next session comes from a new batch.
    before = pool._batch
    app.config.update(SECRET_KEY_FALLBACKS=[KEY])
    assert opened(pool.take()[0], OTHER_KEY)[0] and pool._batch is not before


def test_a_method_patched_on_the_class_is_honoured(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = FreshSessions(CookieSessions(app))
    assert b"Domain=" not in pool.take()[0]
    monkeypatch.setattr(
        SecureCookieSessionInterface, "get_cookie_domain", lambda self, app: "example.org"
    )
    assert pool.sessions.settings() is None
    assert b"Domain=example.org" in pool.take()[0]
    assert b"Domain=example.org" in pool.sessions.set_cookie({SESSION_KEY: "ab" * 32})


def test_a_used_up_batch_is_made_again(app: Quart) -> None:
    """A batch emptied between the check and the pop (another thread, without a GIL)."""
    pool = FreshSessions(CookieSessions(app))
    pool.take()
    pool._batch[2].clear()
    cookie, token = pool.take()
    assert opened(cookie)[0][SESSION_KEY] == (unmask(token) or b"").hex()
    assert len(pool._batch[2]) == BATCH - 1


def test_an_apps_own_interface_gets_a_session_made_per_response(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_HEALTH=False, SHIPSHAPE_ASSETS=False, SECRET_KEY=KEY)
    app.session_interface = SecureCookieSessionInterface()  # stock, an app's own choice
    sessions = CookieSessions(app)
    assert sessions.settings() is None
    pool = FreshSessions(sessions)
    cookie, token = pool.take()
    assert opened(cookie)[0][SESSION_KEY] == (unmask(token) or b"").hex()
    assert pool._batch[2] == [], "nothing made ahead"


def test_a_forked_child_hands_out_none_of_its_parents_sessions(app: Quart) -> None:
    pool = FreshSessions(CookieSessions(app))
    pool.take()  # the parent has a batch, part used, that the child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, as a forked worker
        try:
            os.write(write, pool.take()[1].encode() + b"\n")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_token = os.read(read, 200).decode().strip()
    os.close(read)
    parents = {token for _, token in pool._batch[2]}
    assert len(parents) == BATCH - 1
    assert child_token and child_token not in parents


def test_the_pools_of_a_process_are_known_for_the_fork(app: Quart) -> None:
    pool = FreshSessions(CookieSessions(app))
    pool.take()
    assert pool in fresh._POOLS
    fresh._forget_in_child()
    assert pool._batch[2] == []
