"""shipshape.collector: start-up's objects frozen and the young threshold raised while serving."""

from __future__ import annotations

import gc
import weakref
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
def collector_as_found() -> Iterator[tuple[int, int, int]]:
    """Each test starts from the interpreter's own settings, and leaves them so."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield threshold
    gc.set_threshold(*threshold)
    gc.unfreeze()


class Node:
    """A tracked object that can be weakly referenced and put in a cycle."""

    def __init__(self) -> None:
        self.other: object = None


def tracked_anywhere(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())  # the permanent generation is not listed


async def test_production_freezes_start_up_and_undoes_it_at_shutdown(
    make_app: MakeApp, collector_as_found: tuple[int, int, int]
) -> None:
    made_before = Node()
    app = make_app(**PRODUCTION)
    assert app.config["SHIPSHAPE_GC_TUNING"] is True
    async with app.test_app():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *collector_as_found[1:])
        assert not tracked_anywhere(made_before), "frozen: full collections skip it"
        assert tracked_anywhere(Node()), "made while serving: collected as usual"
    assert gc.get_threshold() == collector_as_found
    assert gc.get_freeze_count() == 0
    assert tracked_anywhere(made_before)


async def test_cyclic_garbage_made_while_serving_is_collected_by_the_young_passes(
    make_app: MakeApp,
) -> None:
    app = make_app(**PRODUCTION)
    async with app.test_app():
        cycle = Node()
        cycle.other = cycle
        gone = weakref.ref(cycle)
        del cycle
        kept: list[list[int]] = [[] for _ in range(2 * YOUNG_THRESHOLD)]  # allocations do it
        assert gone() is None
        assert len(kept) == 2 * YOUNG_THRESHOLD


async def test_the_same_app_starts_twice(make_app: MakeApp) -> None:
    """Regression: a while_serving generator runs once per app object, so a second start
    of the same app failed."""
    app = make_app(**PRODUCTION)
    for _ in range(2):
        async with app.test_app():
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() == 0


async def test_two_apps_in_one_process_share_one_count(
    make_app: MakeApp, collector_as_found: tuple[int, int, int]
) -> None:
    """The collector is the process's: it stays tuned until the last app stops, whatever
    the order, and then gets back the thresholds found before the first."""
    first, second = make_app(**PRODUCTION), make_app(**PRODUCTION)
    async with first.test_app():
        made_between = Node()
        async with second.test_app():
            assert not tracked_anywhere(made_between), "the second start freezes its own too"
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD, "the first still serves"
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == collector_as_found
    assert gc.get_freeze_count() == 0


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
