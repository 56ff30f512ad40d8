"""Refused clients, answered in the worker until the shared store would admit them.

Under a flood, most requests are refusals, and each one cost a Redis round
trip (a 429 took 250 µs of CPU with it and 54 µs without, in-process against
a local Redis) to learn what the worker already knew: a GCRA refusal charges
nothing, so a refused client's TATs stay where they are until a request of
theirs is admitted, and none is admitted before the wait that the refusal
reported has passed. Other workers and hosts cannot move the TATs either,
since they ask the same store, which refuses them too. So the worker keeps
each refusal's TATs, on its own monotonic clock, and refuses the client's
next requests itself, with the same arithmetic
(:func:`~shipshape.ratelimit.gcra.decide`) and so the same headers (see
below for a second's rounding), until the store would admit one. Envoy's
rate-limit service caches over-limit keys for the same reason
(``LOCAL_CACHE_SIZE_IN_BYTES``).

While the two clocks agree, it never refuses what the store would admit:
the TATs are placed on the local clock from the moment *before* the store
was asked (less a microsecond, for rounding), so the local copy runs out no
later than the store's own, as long as the two clocks run at the same rate.
They are
different clocks (the store's is its host's wall clock), so an entry is
trusted for :data:`TRUST` seconds at most and the store is asked again
after that: drift, a clock step on the store's host, or a store that lost
its state (a restart, a flush, an eviction, an operator deleting the key)
can make the worker stricter than the store for that long, never more
lenient. Headers come from the local copy, so a ``Retry-After`` may read a
second less than the store's own at a rounding boundary. While the store is
down with ``RATELIMIT_ON_STORE_ERROR=closed``, a client already refused
keeps getting its 429 (it is over its limit) until its entry runs out;
others get the 503.

The table is bounded (:data:`SIZE` clients per worker): when it is full,
the oldest tenth of the entries goes. A client whose wait is over leaves it
on its next request; one dropped early is asked about in the store again,
which is all that costs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import islice
from typing import NamedTuple

from shipshape.config import RateLimit
from shipshape.ratelimit.gcra import TOLERANCE, Decision, decide
from shipshape.ratelimit.store import Clock

#: Refused clients remembered per worker.
SIZE = 10_000
#: Seconds a refusal is answered locally before the store is asked again, however
#: long the client's wait: it bounds what clock drift, a clock step on the store's
#: host, or a store that lost its state can make the copy disagree on.
TRUST = 60.0


class _Entry(NamedTuple):
    limits: tuple[RateLimit, ...]  # the rule whose state this is: another rule asks the store
    asked_at: float
    tats: tuple[float, ...]


class Refusals:
    """Each refused client's TATs, on this worker's clock.

    Arguments:
        size: how many clients to remember.
        clock: seconds on a clock that only moves forward (a test's frozen one).
    """

    def __init__(self, *, size: int = SIZE, clock: Clock = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def check(self, slot: str, limits: Sequence[RateLimit]) -> Decision | None:
        """The refusal the store would give ``slot`` now, or ``None`` to ask the store."""
        entry = self._entries.get(slot)
        if entry is None:
            return None
        now = self.clock()
        if entry.limits == tuple(limits) and now - entry.asked_at < TRUST:
            decision, _ = decide(entry.tats, limits, now)
            if not decision.allowed:
                return decision
        del self._entries[slot]  # the wait is over, or it is time to ask again
        return None

    def remember(
        self, slot: str, limits: Sequence[RateLimit], decision: Decision, asked_at: float
    ) -> None:
        """Keep a refusal the store gave; ``asked_at`` is :attr:`clock` before it was asked."""
        if decision.allowed:
            return
        entries = self._entries
        entries.pop(slot, None)  # inserted again, so that the dict's order stays oldest first
        if len(entries) >= self.size:
            # The oldest tenth goes in one step: a flood from ever-new addresses costs
            # constant time per refusal, never a scan of the table.
            for old in list(islice(entries, max(1, self.size // 10))):
                del entries[old]
        start = asked_at - TOLERANCE  # so that rounding never leaves it later than the store's
        tats = tuple(start + ahead for ahead in decision.ahead)
        entries[slot] = _Entry(tuple(limits), asked_at, tats)

    def __len__(self) -> int:
        return len(self._entries)
