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
(:func:`~shipshape.ratelimit.gcra.decide`) and so the same headers, until
the store would admit one. Envoy's rate-limit service caches over-limit keys
for the same reason (``LOCAL_CACHE_SIZE_IN_BYTES``).

It never refuses what the store would admit: the TATs are placed on the
local clock from the moment *before* the store was asked (less a
microsecond, for rounding), so the local copy runs out no later than the
store's own. The price is the other way:
when an operator deletes a client's key in Redis, the worker goes on
refusing that client for the rest of its wait.

The table is bounded (:data:`SIZE` clients per worker): when it is full,
the oldest tenth of the entries goes. A client whose wait is over leaves it
on its next request; one dropped early is asked about in the store again,
which is all that costs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import islice

from shipshape.config import RateLimit
from shipshape.ratelimit.gcra import TOLERANCE, Decision, decide
from shipshape.ratelimit.store import Clock

#: Refused clients remembered per worker.
SIZE = 10_000


class Refusals:
    """Each refused client's TATs, on this worker's clock.

    Arguments:
        size: how many clients to remember.
        clock: seconds on a clock that only moves forward (a test's frozen one).
    """

    def __init__(self, *, size: int = SIZE, clock: Clock = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._tats: dict[str, tuple[float, ...]] = {}

    def check(self, slot: str, limits: Sequence[RateLimit]) -> Decision | None:
        """The refusal the store would give ``slot`` now, or ``None`` to ask the store."""
        tats = self._tats.get(slot)
        if tats is None:
            return None
        if len(tats) == len(limits):
            decision, _ = decide(tats, limits, self.clock())
            if not decision.allowed:
                return decision
        del self._tats[slot]  # the wait is over: this request goes to the store
        return None

    def remember(self, slot: str, decision: Decision, asked_at: float) -> None:
        """Keep a refusal the store gave; ``asked_at`` is :attr:`clock` before it was asked."""
        if decision.allowed:
            return
        tats = self._tats
        tats.pop(slot, None)  # inserted again, so that the dict's order stays oldest first
        if len(tats) >= self.size:
            # The oldest tenth goes in one step: a flood from ever-new addresses costs
            # constant time per refusal, never a scan of the table.
            for old in list(islice(tats, max(1, self.size // 10))):
                del tats[old]
        start = asked_at - TOLERANCE  # so that rounding never leaves it later than the store's
        tats[slot] = tuple(start + ahead for ahead in decision.ahead)

    def __len__(self) -> int:
        return len(self._tats)
