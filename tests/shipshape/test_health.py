from __future__ import annotations

import asyncio
import logging

import pytest
from quart import Quart

from shipshape import Shipshape
from tests.shipshape.conftest import MakeApp


async def ok() -> None:
    return None


async def broken() -> None:
    raise ConnectionError("refused")


async def slow() -> None:
    await asyncio.sleep(5)


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    # Only the checks each test registers (the store's check is tested with the store).
    return make_app(SHIPSHAPE_ASSETS=False, SHIPSHAPE_RATELIMIT=False, SHIPSHAPE_READY_TIMEOUT=0.05)


async def test_healthz_is_always_ok(app: Quart) -> None:
    app.extensions["shipshape"].add_readiness_check("db", broken)
    async with app.test_app():
        response = await app.test_client().get("/healthz")
        assert response.status_code == 200
        assert await response.get_json() == {"status": "ok"}
        assert response.headers["Cache-Control"] == "no-store"


async def test_readyz_with_no_checks_is_ready(app: Quart) -> None:
    async with app.test_app():
        response = await app.test_client().get("/readyz")
        assert response.status_code == 200
        assert await response.get_json() == {"status": "ok", "checks": {}}


@pytest.mark.parametrize(
    ("checks", "status", "errors"),
    [
        ({"db": ok, "store": ok}, 200, {}),
        ({"db": ok, "store": broken}, 503, {"store": "ConnectionError"}),
        ({"db": slow, "store": ok}, 503, {"db": "timed out"}),
    ],
)
async def test_readyz_lists_each_check(
    app: Quart, checks: dict[str, object], status: int, errors: dict[str, str]
) -> None:
    shipshape: Shipshape = app.extensions["shipshape"]
    for name, check in checks.items():
        shipshape.add_readiness_check(name, check)  # type: ignore[arg-type]
    async with app.test_app():
        response = await app.test_client().get("/readyz")
        payload = await response.get_json()
        assert response.status_code == status
        assert payload["status"] == ("ok" if status == 200 else "unavailable")
        assert set(payload["checks"]) == set(checks)
        for name, result in payload["checks"].items():
            assert result["ok"] is (name not in errors)
            assert result.get("error") == errors.get(name)
            assert result["duration_ms"] >= 0


def test_duplicate_check_name_is_refused(app: Quart) -> None:
    shipshape: Shipshape = app.extensions["shipshape"]
    shipshape.add_readiness_check("db", ok)
    with pytest.raises(ValueError, match="already registered"):
        shipshape.add_readiness_check("db", ok)


def test_checks_need_health_on(make_app: MakeApp) -> None:
    app = make_app(SHIPSHAPE_HEALTH=False, SHIPSHAPE_ASSETS=False)
    with pytest.raises(RuntimeError, match="SHIPSHAPE_HEALTH"):
        app.extensions["shipshape"].add_readiness_check("db", ok)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_failed_check_logs_a_line_per_change_and_no_traceback(app: Quart) -> None:
    """Regression (rate-limit probe): a line per probe through an outage (95 in 25 s at
    four probes a second); now one when it starts failing, fails another way, passes."""
    failing = True

    async def store() -> None:
        if failing:
            await broken()

    app.extensions["shipshape"].add_readiness_check("store", store)
    recorder = Recorder()
    logger = logging.getLogger("shipshape.health")
    logger.addHandler(recorder)
    level = logger.level
    try:
        async with app.test_app():
            client = app.test_client()
            for _ in range(3):
                assert (await client.get("/readyz")).status_code == 503
            failing = False
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            failing = True
            assert (await client.get("/readyz")).status_code == 503
            warnings = [r for r in recorder.records if r.levelno == logging.WARNING]
            assert [r.getMessage() for r in warnings] == [
                "readiness check store failed: ConnectionError (refused)",
                "readiness check store passes again",
                "readiness check store failed: ConnectionError (refused)",
            ]
            assert all(r.exc_info is None for r in warnings)
            logger.setLevel(logging.DEBUG)  # whoever wants the traceback turns on DEBUG
            await client.get("/readyz")
            debug = [r for r in recorder.records if r.levelno == logging.DEBUG]
            assert debug and debug[-1].exc_info is not None
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(level)


async def test_probes_that_arrive_during_a_run_share_it(app: Quart) -> None:
    """Regression (review): /readyz is public and never rate limited, and each probe ran
    every check: a flood of probes was a flood of database and Redis round trips."""
    runs = 0

    async def counted() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.02)

    app.extensions["shipshape"].add_readiness_check("db", counted)
    async with app.test_app():
        client = app.test_client()
        responses = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
        assert [r.status_code for r in responses] == [200] * 20
        assert runs == 1
        assert (await client.get("/readyz")).status_code == 200  # a later probe: a new run
        assert runs == 2


async def test_a_run_still_going_ends_with_serving(app: Quart) -> None:
    """Regression (review): a run whose probe went away outlived the app's shutdown,
    and its check then used a closed pool."""
    started = asyncio.Event()
    finished = False

    async def lingering() -> None:
        nonlocal finished
        started.set()
        await asyncio.sleep(0.04)  # under the 0.05 s timeout: it would finish
        finished = True

    health = app.extensions["shipshape"].health
    app.extensions["shipshape"].add_readiness_check("db", lingering)
    async with app.test_app():
        probe = asyncio.ensure_future(app.test_client().get("/readyz"))
        await started.wait()
        probe.cancel()
        running = health._running
    assert running is not None and running.cancelled()
    assert health._running is None and not finished
