"""shipshape.ratelimit.refusals: a refused client is refused without a round trip, exactly."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import redis

from shipshape.config import RateLimit
from shipshape.ratelimit import MemoryStore, RedisStore
from shipshape.ratelimit.gcra import Decision
from shipshape.ratelimit.limiter import RateLimiter, RateLimitStoreDown, RateRule, client_address
from shipshape.ratelimit.refusals import TRUST, Refusals
from tests.servers import RedisServer
from tests.shipshape.ratelimit.test_gcra import PER_MINUTE, PER_SECOND
from tests.shipshape.ratelimit.test_stores import FrozenClock, commands, delta, fresh_key

RULE = RateRule((PER_SECOND, PER_MINUTE), client_address)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def store(redis_server: RedisServer, clock: FrozenClock) -> AsyncIterator[RedisStore]:
    made = RedisStore(redis_server.url, clock=clock, timeout=1.0)
    await made.startup()
    yield made
    await made.shutdown()


async def test_a_refused_client_is_refused_without_a_round_trip_until_its_wait_is_over(
    store: RedisStore, clock: FrozenClock, redis_server: RedisServer
) -> None:
    limiter = RateLimiter(store=store)
    key = fresh_key()
    assert [(await limiter.count("b", key, RULE)).allowed for _ in range(2)] == [True, True]
    first = await limiter.count("b", key, RULE)  # the store refuses
    counter = redis.Redis.from_url(redis_server.url)
    before = commands(counter)
    clock.now += 0.25
    again = await limiter.count("b", key, RULE)  # the worker refuses
    assert delta(before, commands(counter)) == {}, "no round trip"
    assert (first.allowed, first.retry_after, first.remaining) == (False, 1, 0)
    assert again == first  # the same headers: 1 s, rounded up, to wait
    clock.now += 0.2499  # still within the wait: refused without a round trip
    assert not (await limiter.count("b", key, RULE)).allowed
    assert delta(before, commands(counter)) == {}
    clock.now += 0.0001  # the wait is over: the store is asked, and admits
    assert (await limiter.count("b", key, RULE)).allowed
    assert delta(before, commands(counter)).get("cmdstat_evalsha") == 1


async def test_the_worker_decides_as_the_store_would_at_every_step(
    store: RedisStore, clock: FrozenClock
) -> None:
    """The same random timeline against a limiter with the table and one without."""
    with_table = RateLimiter(store=store)
    without = RateLimiter(store=store)
    without.refusals = None
    assert with_table.refusals is not None
    rules = [RULE, RateRule((RateLimit(3, 10),), client_address)]
    rng = random.Random(7)  # noqa: S311 - a repeatable timeline, not a secret
    for rule in rules:
        cached_key, plain_key = fresh_key(), fresh_key()
        for _ in range(300):
            # Uneven steps, and bursts: a wait that ends on a whole second would be
            # rounded up on one side and not the other by a last-bit difference.
            clock.now += rng.choice([0.0, 0.0, rng.uniform(0, 0.3), rng.uniform(0, 3)])
            ours = await with_table.count("b", cached_key, rule)
            store_only = await without.count("b", plain_key, rule)
            assert ours == store_only, (clock.now, ours, store_only)
    assert len(with_table.refusals) > 0  # the table was used


def test_the_table_is_bounded_and_drops_its_oldest_entries() -> None:
    clock = FrozenClock()
    refusals = Refusals(size=10, clock=clock)
    limits = (PER_SECOND,)
    refused = MemoryStore(clock=clock)
    decision = None
    for _ in range(3):
        decision = _sync_hit(refused, "x", limits)
    assert decision is not None and not decision.allowed
    for n in range(10):
        refusals.remember(f"client{n}", limits, decision, clock())
    refusals.remember("client0", limits, decision, clock())  # seen again: now the newest
    refusals.remember("client10", limits, decision, clock())  # full: the oldest tenth goes
    assert len(refusals) == 10
    assert refusals.check("client1", limits) is None  # the oldest, dropped
    assert refusals.check("client0", limits) is not None
    assert refusals.check("client10", limits) is not None


def test_admissions_are_not_kept_and_a_memory_store_gets_no_table() -> None:
    clock = FrozenClock()
    refusals = Refusals(clock=clock)
    admitted = _sync_hit(MemoryStore(clock=clock), "x", (PER_SECOND,))
    refusals.remember("x", (PER_SECOND,), admitted, clock())
    assert len(refusals) == 0
    assert RateLimiter(store=MemoryStore()).refusals is None


def _sync_hit(store: MemoryStore, key: str, limits: tuple[RateLimit, ...]) -> Decision:
    """MemoryStore.hit never awaits: drive its coroutine to the end."""
    coroutine = store.hit(key, limits)
    try:
        coroutine.send(None)
    except StopIteration as done:
        decision: Decision = done.value
        return decision
    raise AssertionError("MemoryStore.hit awaited")


def test_an_entry_is_trusted_for_a_minute_and_for_its_own_rule_only() -> None:
    clock = FrozenClock()
    refusals = Refusals(clock=clock)
    daily = (RateLimit(1, 86_400),)
    store = MemoryStore(clock=clock)
    _sync_hit(store, "x", daily)
    refused = _sync_hit(store, "x", daily)  # a day to wait
    refusals.remember("x", daily, refused, clock())
    assert refusals.check("x", (RateLimit(1, 3600),)) is None  # another rule: ask the store
    refusals.remember("x", daily, refused, clock())
    clock.now += TRUST - 1
    assert refusals.check("x", daily) is not None
    clock.now += 1  # a minute on: the store is asked again, whatever the wait
    assert refusals.check("x", daily) is None
    assert len(refusals) == 0


async def test_with_closed_a_refused_client_keeps_its_429_while_the_store_is_down(
    store: RedisStore, clock: FrozenClock
) -> None:
    limiter = RateLimiter(store=store)
    limiter.closed = True
    refused_key, other_key = fresh_key(), fresh_key()
    for _ in range(3):
        last = await limiter.count("b", refused_key, RULE)
    assert not last.allowed
    await store.shutdown()  # the store is gone: every call to it fails
    clock.now += 0.1
    assert not (await limiter.count("b", refused_key, RULE)).allowed  # from the table
    with pytest.raises(RateLimitStoreDown):
        await limiter.count("b", other_key, RULE)  # everyone else: the 503
    await store.startup()  # for the fixture's shutdown
