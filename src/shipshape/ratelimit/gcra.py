"""GCRA (the generic cell rate algorithm) over several limits in one step.

Each limit ``count`` per ``period`` seconds keeps one number per client: its
theoretical arrival time (TAT). A request conforms to a limit when
``max(TAT, now) + period / count - period <= now``. A request is allowed only
if it conforms to *every* limit of its route, and only then are the TATs
advanced: a request that one limit rejects consumes nothing of the others
(unlike chaining independent limiters, where an early limit is charged for a
request a later one refuses).

:func:`decide` is pure arithmetic; stores call it inside their own atomic
step (the event loop for memory, a Lua script for Redis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from shipshape.config import RateLimit

TOLERANCE = 1e-6  # seconds; far below any rate a limit can express


@dataclass(frozen=True)
class Decision:
    """The outcome for one request, with what the RateLimit headers report."""

    allowed: bool
    limit: RateLimit  # the limit closest to exhaustion
    remaining: int  # requests left under that limit
    reset: int  # seconds until that limit is fully replenished
    retry_after: int  # seconds to wait when not allowed, else 0
    #: A refusal's TATs (unchanged by it), in seconds after the ``now`` it was
    #: decided at, for ``shipshape.ratelimit.refusals``; empty when allowed.
    ahead: tuple[float, ...] = field(default=(), compare=False)


def decide(
    tats: Sequence[float], limits: Sequence[RateLimit], now: float
) -> tuple[Decision, list[float]]:
    """The decision and the TATs to store (unchanged when refused)."""
    if not limits or len(tats) != len(limits):
        raise ValueError("one TAT per limit, and at least one limit")
    advanced = []
    waits = []
    for tat, limit in zip(tats, limits, strict=True):
        interval = limit.period / limit.count
        advanced.append(max(tat, now) + interval)
        # The time until this request conforms: max(TAT, now) + interval - period - now,
        # summed in an order that keeps small differences exact. (now + 3600) - 3600
        # is not always now in floating point, and refused a new client's first request.
        waits.append(max(tat - now, 0.0) + interval - limit.period)
    wait = max(0.0, *waits)
    # Within a microsecond counts as on time: at epoch-sized clocks a double resolves
    # only about 0.2 us, so an exact boundary must not hinge on the last bit.
    allowed = wait <= TOLERANCE
    stored = advanced if allowed else [max(tat, now) for tat in tats]
    # Allowed: the limit closest to running out, as a share of its count (docs/ratelimit.md,
    # "Headers"), on a tie the one listed first. Refused: the one Retry-After comes from.
    tightest = (
        min(
            range(len(limits)),
            key=lambda i: _remaining(stored[i], limits[i], now) / limits[i].count,
        )
        if allowed
        else max(range(len(limits)), key=waits.__getitem__)
    )
    limit = limits[tightest]
    decision = Decision(
        allowed=allowed,
        limit=limit,
        remaining=0 if not allowed else _remaining(stored[tightest], limit, now),
        reset=max(0, math.ceil(stored[tightest] - now)),
        retry_after=0 if allowed else max(1, math.ceil(wait)),
        ahead=() if allowed else tuple(tat - now for tat in stored),
    )
    return decision, stored


def _remaining(tat: float, limit: RateLimit, now: float) -> int:
    interval = limit.period / limit.count
    return max(0, min(limit.count, math.floor((now + limit.period - tat) / interval + 1e-9)))
