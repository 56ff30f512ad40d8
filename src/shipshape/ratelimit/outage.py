"""When the rate-limit store fails: a circuit breaker, and one log line per outage.

A store that does not answer within its timeout fails the request's check.
After a failure the breaker stays open for a back-off (1 s, doubling up to
30 s while failures go on), and checks during it fail at once instead of
each waiting for the timeout again; when the back-off is over, one check
tries the store (the others fail at once until it answers), and one success
closes the breaker. Calls that were already in flight when the state
changed change nothing, so a burst of requests caught by an outage counts as
one failure, not as twenty doublings of the back-off. What a failed check means is
the app's policy (``RATELIMIT_ON_STORE_ERROR``): ``open`` counts the request
in the worker's own memory instead (``RateLimiter.count``), ``closed`` refuses
it with 503 and ``Retry-After``. Either way it is never a
500, and an outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence

from shipshape.config import RateLimit
from shipshape.ratelimit.gcra import Decision
from shipshape.ratelimit.store import Clock, Store

logger = logging.getLogger("shipshape.ratelimit")

FIRST_BACKOFF = 1.0  # seconds: short, so a blip costs little
MAX_BACKOFF = 30.0  # seconds: a long outage is still retried twice a minute


class StoreUnavailableError(Exception):
    """The store failed, or the breaker is open; ``retry_after`` is in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate-limit store unavailable; retry after {retry_after} s")
        self.retry_after = retry_after


class Breaker:
    """Wraps a store's calls; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        clock: Clock = time.monotonic,
    ) -> None:
        self.store = store
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self.failures = 0  # failed probes in this outage; 0 while the store answers
        self.open_until = 0.0
        # Bumped at every change of state: a call that started before the last
        # change (many were in flight when the store died) changes nothing.
        self.epoch = 0
        self.probing = False

    @property
    def failing(self) -> bool:
        return self.failures > 0

    async def hit(self, key: str, limits: Sequence[RateLimit]) -> Decision:
        return await self._call(lambda: self.store.hit(key, limits))

    async def _call(self, call: Callable[[], Awaitable[Decision]]) -> Decision:
        now = self.clock()
        if now < self.open_until:
            raise StoreUnavailableError(math.ceil(self.open_until - now))
        probe = self.failing
        if probe:  # back-off over: one request tries the store, the others wait for it
            if self.probing:
                raise StoreUnavailableError(1)
            self.probing = True
        epoch = self.epoch
        try:
            result = await call()
        except Exception as exc:  # any store failure: timeouts, resets, refused, bad replies
            if epoch == self.epoch:
                self._failed(exc)
            raise StoreUnavailableError(max(1, math.ceil(self.open_until - now))) from exc
        finally:
            if probe:
                self.probing = False
        if self.failures and epoch == self.epoch:
            self.answered()
        return result

    def answered(self) -> None:
        """The store answered a call made around the breaker (the readiness probe):
        the outage is over now, not when the back-off (up to 30 s) ends, so requests
        and ``/readyz`` agree as soon as the store is back."""
        if self.failures:
            logger.warning("rate-limit store is back after %d failed checks", self.failures)
            self.failures = 0
            self.epoch += 1
            self.open_until = 0.0

    def _failed(self, exc: Exception) -> None:
        backoff = min(self.first_backoff * 2**self.failures, self.max_backoff)
        if not self.failures:
            logger.warning(
                "rate-limit store failed (%s: %s); skipping it for %.0f s at a time until "
                "it answers",
                type(exc).__name__,
                exc,
                backoff,
            )
        self.failures += 1
        self.epoch += 1
        self.open_until = self.clock() + backoff
