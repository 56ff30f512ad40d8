"""Shared fixtures: an isolated environment, the example app and its client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from quart import Quart
from quart.testing import QuartClient

from app import create_app
from shipshape.config import ENV_NAMES
from tests.servers import RedisServer

# The concrete client: quart.typing's protocol declares `open(json=...)` without
# its default, so calls through the protocol would have to pass a JSON body.
Client = QuartClient

CSRF_INPUT_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = "s" * 8 + "0123456789abcdef0123456789abcdef"  # 40 bytes, test only


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's or CI's APP_ENV, SECRET_KEY, PORT and so on."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield


#: A default limit no test reaches, for tests about something else.
UNLIMITED = "100000/second"


@pytest.fixture
def app_config() -> dict[str, Any]:
    # Tests send bursts; the default limits have tests of their own.
    return {"APP_ENV": "testing", "RATELIMIT_DEFAULT": UNLIMITED}


@pytest.fixture
async def app(app_config: dict[str, Any]) -> AsyncIterator[Quart]:
    application = create_app(app_config)
    async with application.test_app():
        yield application


def client_of(app: Quart) -> Client:
    return cast(Client, app.test_client())


@pytest.fixture
def client(app: Quart) -> Client:
    return client_of(app)


def csrf_from(html: str) -> str:
    match = CSRF_INPUT_RE.search(html)
    if match is None:
        raise AssertionError("no csrf_token field in the page")
    return match[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server (or valkey-server) for the session."""
    server = RedisServer()
    server.start()
    yield server
    server.close()
