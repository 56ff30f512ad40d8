"""app.things' writes when two sessions race, on SQLite and on a real PostgreSQL server.

Two real sessions interleave by hand: what one commits lands between the
other's read and its write, which is what two requests at once can do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import things
from app.models import Thing, UTCDateTime
from app.things import DuplicateNameError, StaleVersionError, ThingGoneError
from shipshape.database import make_engine


@pytest.fixture
def database_url(on_both_engines: str) -> str:
    return on_both_engines


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, timeout=5, pool_size=2)
    yield engine
    await engine.dispose()


async def add(engine: AsyncEngine, name: str) -> Thing:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        thing = await things.create_thing(session, name, "")
        await session.commit()
        return thing


async def test_a_lost_race_for_a_name_is_a_duplicate_not_a_500(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncSession(engine) as mine:
        # My check ran before the other request's insert committed...
        monkeypatch.setattr(things, "name_taken", _never_taken)
        await add(engine, "Kettle")  # ...which lands now; the unique index decides.
        with pytest.raises(DuplicateNameError):
            await things.create_thing(mine, "KETTLE", "")
    async with AsyncSession(engine) as check:
        page = await things.list_things(check, things.ListQuery())
    assert [t.name for t in page.items] == ["Kettle"]


async def both_read(mine: AsyncSession, theirs: AsyncSession, thing: Thing) -> tuple[Thing, Thing]:
    """Each of two sessions reads the thing: two requests that opened it at once."""
    seen, other = await mine.get(Thing, thing.id), await theirs.get(Thing, thing.id)
    assert seen is not None and other is not None
    return seen, other


async def _never_taken(*_: object) -> bool:
    return False


async def test_an_edit_that_loses_the_race_gets_the_newer_version(engine: AsyncEngine) -> None:
    thing = await add(engine, "Kettle")
    async with AsyncSession(engine) as mine, AsyncSession(engine) as theirs:
        seen = await mine.get(Thing, thing.id)  # I read version 1
        assert seen is not None and seen.version == 1
        other = await theirs.get(Thing, thing.id)
        assert other is not None
        await things.update_thing(theirs, other, "Kettle", "theirs", 1)
        await theirs.commit()  # they write version 2 before I write
        with pytest.raises(StaleVersionError) as caught:
            await things.update_thing(mine, seen, "Kettle", "mine", 1)
        assert (caught.value.current.version, caught.value.current.description) == (2, "theirs")


async def test_a_delete_that_loses_the_race_to_an_edit_deletes_nothing(
    engine: AsyncEngine,
) -> None:
    thing = await add(engine, "Kettle")
    async with AsyncSession(engine) as mine, AsyncSession(engine) as theirs:
        seen, other = await both_read(mine, theirs, thing)
        await things.update_thing(theirs, other, "Kettle 2", "", 1)
        await theirs.commit()
        with pytest.raises(StaleVersionError) as caught:
            await things.delete_thing(mine, seen, None)
        assert caught.value.current.name == "Kettle 2"
    async with AsyncSession(engine) as check:
        assert await check.get(Thing, thing.id) is not None


async def test_a_delete_that_loses_the_race_to_a_delete_finds_it_gone(
    engine: AsyncEngine,
) -> None:
    """What the request would have found a moment later: no such thing (both deletes
    said 204 before, though one deleted nothing)."""
    thing = await add(engine, "Kettle")
    async with AsyncSession(engine) as mine, AsyncSession(engine) as theirs:
        seen, other = await both_read(mine, theirs, thing)
        await things.delete_thing(theirs, other, 1)
        await theirs.commit()
        with pytest.raises(things.ThingGoneError):
            await things.delete_thing(mine, seen, 1)
    async with AsyncSession(engine) as check:
        assert await check.get(Thing, thing.id) is None


async def test_an_unchanged_save_keeps_its_version(engine: AsyncEngine) -> None:
    thing = await add(engine, "Kettle")
    async with AsyncSession(engine, expire_on_commit=False) as session:
        seen = await session.get(Thing, thing.id)
        assert seen is not None
        await things.update_thing(session, seen, "Kettle", "", 1)
        await session.commit()
        assert seen.version == 1 and seen.updated_at == thing.updated_at


def test_times_are_stored_in_utc_and_read_back_aware() -> None:
    kind = UTCDateTime()
    dialect = make_engine("sqlite+aiosqlite://", timeout=1, pool_size=1).dialect
    assert kind.process_bind_param(None, dialect) is None
    assert kind.process_result_value(None, dialect) is None
    with pytest.raises(ValueError, match="naive datetime"):
        kind.process_bind_param(datetime(2026, 1, 1), dialect)  # noqa: DTZ001 - the point
    naive = datetime(2026, 1, 1, 12)  # noqa: DTZ001 - as SQLite returns it
    assert kind.process_result_value(naive, dialect) == datetime(2026, 1, 1, 12, tzinfo=UTC)


async def test_an_edit_that_loses_the_race_to_a_delete_is_gone(engine: AsyncEngine) -> None:
    thing = await add(engine, "Kettle")
    async with AsyncSession(engine) as mine, AsyncSession(engine) as theirs:
        seen, other = await both_read(mine, theirs, thing)
        await things.delete_thing(theirs, other, 1)
        await theirs.commit()
        with pytest.raises(ThingGoneError):
            await things.update_thing(mine, seen, "Kettle 2", "", 1)


async def test_a_rename_that_loses_the_race_for_the_name_keeps_the_thing_usable(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    thing = await add(engine, "Kettle")
    async with AsyncSession(engine) as mine:
        seen = await mine.get(Thing, thing.id)
        assert seen is not None
        monkeypatch.setattr(things, "name_taken", _never_taken)
        await add(engine, "Teapot")  # lands between my check and my write
        with pytest.raises(DuplicateNameError):
            await things.update_thing(mine, seen, "TEAPOT", "", 1)
        # Reloaded, not expired: the page can still show it (no lazy load, no 500).
        assert (seen.name, seen.version) == ("Kettle", 1)


def test_a_version_is_read_up_to_the_columns_largest() -> None:
    """Review: the rule stopped at nine digits, so a thing past version 999,999,999 would
    have had its own ETag refused; the int32 column holds up to 2,147,483,647."""
    assert things.parse_version("1000000000") == 1_000_000_000
    assert things.parse_version("2147483647") == 2**31 - 1
    assert things.parse_version("2147483648") is None
    assert things.parse_version("01") is None
