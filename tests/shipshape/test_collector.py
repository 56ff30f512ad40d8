"""shipshape.collector: start-up's objects frozen and the young threshold raised while serving."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from quart import Quart

from shipshape.collector import YOUNG_THRESHOLD
from tests.shipshape.conftest import MakeApp

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "k" * 40,
    "ALLOWED_HOSTS": ["localhost"],
    "SHIPSHAPE_ASSETS": False,
}


@pytest.fixture(autouse=True)
def collector_as_found() -> Iterator[None]:
    """Each test starts from the interpreter's own settings, and leaves them so."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


async def test_production_freezes_start_up_and_undoes_it_at_shutdown(make_app: MakeApp) -> None:
    before = gc.get_threshold()
    app = make_app(**PRODUCTION)
    made_at_start_up: list[object] = []

    @app.before_serving
    async def start() -> None:  # registered after Shipshape(app): still frozen
        made_at_start_up.append(object())  # a plain object() is not tracked; a list is
        made_at_start_up.append([1, 2])

    assert app.config["SHIPSHAPE_GC_TUNING"] is True
    async with app.test_app():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert not any(made_at_start_up[1] is o for o in gc.get_objects()), "frozen"
        made_while_serving = [3, 4]
        assert any(made_while_serving is o for o in gc.get_objects()), "collected as usual"
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_cyclic_garbage_made_while_serving_is_still_collected(make_app: MakeApp) -> None:
    app = make_app(**PRODUCTION)
    async with app.test_app():
        cycle: list[object] = []
        cycle.append(cycle)
        ident = id(cycle)
        del cycle
        gc.collect()
        assert all(id(o) != ident for o in gc.get_objects())


@pytest.mark.parametrize(
    ("config", "tuned"),
    [
        ({"APP_ENV": "testing", "SHIPSHAPE_ASSETS": False}, False),
        ({"APP_ENV": "development", "SHIPSHAPE_ASSETS": False}, False),
        ({"APP_ENV": "testing", "SHIPSHAPE_ASSETS": False, "SHIPSHAPE_GC_TUNING": True}, True),
        ({**PRODUCTION, "SHIPSHAPE_GC_TUNING": False}, False),
    ],
)
async def test_on_in_production_and_switchable(
    make_app: MakeApp, config: dict[str, object], tuned: bool
) -> None:
    before = gc.get_threshold()
    app: Quart = make_app(**config)
    async with app.test_app():
        assert (gc.get_freeze_count() > 0) is tuned
        assert (gc.get_threshold()[0] == YOUNG_THRESHOLD) is tuned
    assert gc.get_threshold() == before
