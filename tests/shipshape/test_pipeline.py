"""The order of the request steps: stated once, and kept whatever the set-up order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from quart import Quart, Response

from shipshape import Shipshape
from shipshape.csrf import CSRFProtect
from shipshape.pipeline import AFTER_VIEW, ASGI_LAYERS, BEFORE_VIEW, Pipeline
from shipshape.policy import ViewPolicy
from shipshape.ratelimit import RateLimiter, rate_limit
from shipshape.typing import Message, Receive, Scope
from tests.shipshape.conftest import MakeApp, asgi_of, http_scope


def test_the_order_is_the_stated_one(make_app: MakeApp, spa_build: Path) -> None:
    assert BEFORE_VIEW == ("rate_limit", "csrf")
    assert AFTER_VIEW == ("rate_limit_headers", "security_headers")
    assert ASGI_LAYERS == (
        "proxy",
        "request_log",
        "host_check",
        "https_redirect",
        "static",
        "spa",
        "rate_limit",
        "compression",
        "security_headers",
        "request_body",
    )
    app = make_app(
        APP_ENV="production",
        SECRET_KEY="k" * 40,
        ALLOWED_HOSTS="app.example",
        SHIPSHAPE_SPA_DIR=spa_build,
        SHIPSHAPE_SPA_MOUNT="/app",
    )
    assert Pipeline.of(app).order == (BEFORE_VIEW, AFTER_VIEW)
    assert app.extensions["shipshape"].asgi_layers == ASGI_LAYERS


def test_setup_order_does_not_change_the_run_order() -> None:
    app = Quart(__name__)
    CSRFProtect(app)  # set up first, still runs second
    RateLimiter(app)
    assert Pipeline.of(app).order[0] == ("rate_limit", "csrf")


def test_switched_off_layers_are_left_out(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_COMPRESSION=False, SHIPSHAPE_REQUEST_LOG=False)
    assert app.extensions["shipshape"].asgi_layers == (
        "proxy",
        "host_check",
        "static",
        "rate_limit",
        "security_headers",
        "request_body",
    )


@pytest.mark.parametrize(
    ("stage", "step", "error"),
    [("before", "view", "unknown pipeline step"), ("after", "csrf", "unknown pipeline step")],
)
def test_unknown_steps_are_refused(stage: str, step: str, error: str) -> None:
    pipeline = Pipeline(Quart(__name__))

    async def hook(*args: object) -> None:
        return None

    with pytest.raises(ValueError, match=error):
        getattr(pipeline, stage)(step, hook)


def test_a_step_takes_one_hook_and_a_pipeline_is_one_per_app() -> None:
    app = Quart(__name__)
    pipeline = Pipeline.of(app)
    assert Pipeline.of(app) is pipeline
    with pytest.raises(RuntimeError, match="already has a pipeline"):
        Pipeline(app)

    async def hook(policy: ViewPolicy) -> None:
        return None

    pipeline.before("csrf", hook)
    with pytest.raises(ValueError, match="already has a hook"):
        pipeline.before("csrf", hook)


@pytest.fixture
def limited(make_app: MakeApp) -> Quart:
    app = make_app(SHIPSHAPE_ASSETS=False)

    @app.post("/limited")
    @rate_limit("3/minute")
    async def limited_view() -> str:
        return "saved"

    return app


async def test_a_flood_of_bad_posts_gets_429_once_the_limit_is_spent(limited: Quart) -> None:
    async with limited.test_app():
        client = limited.test_client()
        statuses = [
            (await client.post("/limited", form={"csrf_token": "forged"})).status_code
            for _ in range(6)
        ]
    # Each refused POST counts against the limit; CSRF refuses the first three.
    assert statuses == [400, 400, 400, 429, 429, 429]


def post_scope(path: str, length: int) -> Scope:
    return http_scope(
        "POST",
        path,
        [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(length).encode()),
        ],
    )


async def status_of(app: Quart, scope: Scope, receive: Receive) -> int:
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await asyncio.wait_for(asgi_of(app)(scope, receive, send), timeout=5)
    return int(next(m for m in messages if m["type"] == "http.response.start")["status"])


async def test_429_comes_before_anything_reads_the_body(limited: Quart) -> None:
    """Over its limit, a client is refused without the app waiting for its body."""
    body = b"csrf_token=forged"
    never = asyncio.Event()

    def sending(*chunks: bytes) -> Receive:
        messages = [{"type": "http.request", "body": c, "more_body": False} for c in chunks]

        async def receive() -> Message:
            if messages:
                return messages.pop(0)
            await never.wait()  # then the client just waits for the answer
            return {"type": "http.disconnect"}  # pragma: no cover - never reached

        return receive

    async with limited.test_app():
        spent = [
            await status_of(limited, post_scope("/limited", len(body)), sending(body))
            for _ in range(3)
        ]
        assert spent == [400, 400, 400], "CSRF read these bodies and refused them"
        body_never_comes = sending()
        # Under the limit, CSRF waits for the body: the same request would hang.
        refused = await status_of(limited, post_scope("/limited", 100), body_never_comes)
    assert refused == 429


async def test_after_hooks_see_error_responses(make_app: MakeApp) -> None:
    """The security headers step runs on a 429 and a 404 too (AFTER_VIEW covers errors)."""
    app = make_app(SHIPSHAPE_ASSETS=False)

    @app.get("/once")
    @rate_limit("1/minute", key=lambda: "everyone")  # a key function: decided inside Quart
    async def once() -> Response:
        return Response("ok")

    async with app.test_app():
        client = app.test_client()
        assert (await client.get("/once")).status_code == 200
        refused = await client.get("/once")
        missing = await client.get("/nowhere")
    assert refused.status_code == 429
    assert "RateLimit" in refused.headers and "Content-Security-Policy" in refused.headers
    assert missing.status_code == 404 and "Content-Security-Policy" in missing.headers


def test_shipshape_shares_the_apps_pipeline() -> None:
    app = Quart(__name__)
    pipeline = Pipeline.of(app)
    app.config.update(APP_ENV="testing", SHIPSHAPE_ASSETS=False)
    Shipshape(app)
    assert app.extensions["shipshape"].pipeline is pipeline
