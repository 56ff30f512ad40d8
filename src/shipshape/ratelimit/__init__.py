"""Rate limiting: GCRA over several limits at once; a default on every route; memory or Redis."""

from __future__ import annotations

from shipshape.ratelimit.gcra import Decision, decide
from shipshape.ratelimit.limiter import (
    RateLimited,
    RateLimiter,
    client_address,
    limit_blueprint,
    rate_exempt,
    rate_limit,
)
from shipshape.ratelimit.redis_store import RedisStore
from shipshape.ratelimit.store import MemoryStore, Store

__all__ = [
    "Decision",
    "MemoryStore",
    "RateLimited",
    "RateLimiter",
    "RedisStore",
    "Store",
    "client_address",
    "decide",
    "limit_blueprint",
    "rate_exempt",
    "rate_limit",
]
