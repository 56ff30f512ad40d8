"""Rate limiting: GCRA over several limits at once, per view."""

from __future__ import annotations

from shipshape.ratelimit.gcra import Decision, decide
from shipshape.ratelimit.limiter import RateLimited, RateLimiter, rate_limit
from shipshape.ratelimit.store import MemoryStore, Store

__all__ = [
    "Decision",
    "MemoryStore",
    "RateLimited",
    "RateLimiter",
    "Store",
    "decide",
    "rate_limit",
]
