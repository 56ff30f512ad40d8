"""Rate-limit storage: one small interface, with serving-lifecycle hooks.

:class:`MemoryStore` keeps the state in this process;
:class:`~shipshape.ratelimit.redis_store.RedisStore` shares it between
workers and hosts. What happens when a store fails is
:mod:`shipshape.ratelimit.outage`'s business.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from shipshape.config import RateLimit
from shipshape.ratelimit.gcra import Decision, decide

SWEEP_EVERY = 1024  # hits between sweeps of expired keys
Clock = Callable[[], float]


class Store(ABC):
    """Where the GCRA state lives."""

    async def startup(self) -> None:
        """Called before serving: open connections, load scripts."""
        return None  # nothing to do for stores without connections

    async def shutdown(self) -> None:
        """Called after serving: close connections."""
        return None  # nothing to do for stores without connections

    async def ping(self) -> None:
        """Readiness: raise when the store cannot be used."""
        return None  # nothing to do for stores without connections

    @abstractmethod
    async def hit(self, key: str, limits: Sequence[RateLimit]) -> Decision:
        """Count one request for ``key`` against ``limits``, atomically."""


class MemoryStore(Store):
    """Per-process state. Atomic because :meth:`hit` never awaits.

    With several workers each keeps its own counts, so the limits multiply;
    ``check --deploy`` warns about it (W006).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._state: dict[tuple[str, tuple[RateLimit, ...]], list[float]] = {}
        self._clock = clock or time.monotonic
        self._hits = 0

    async def hit(self, key: str, limits: Sequence[RateLimit]) -> Decision:
        now = self._clock()
        slot = (key, tuple(limits))
        tats = self._state.get(slot) or [now] * len(limits)
        decision, stored = decide(tats, limits, now)
        self._state[slot] = stored
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            self.sweep(now)
        return decision

    def sweep(self, now: float | None = None) -> None:
        """Forget clients whose every TAT is in the past: they start fresh anyway."""
        now = self._clock() if now is None else now
        expired = [slot for slot, tats in self._state.items() if max(tats) <= now]
        for slot in expired:
            del self._state[slot]

    def __len__(self) -> int:
        return len(self._state)
