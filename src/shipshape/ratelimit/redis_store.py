"""Rate-limit state in Redis or Valkey: one Lua script, one round trip per request.

Why not quart-rate-limiter's or Flask-Limiter's Redis storage: the first
reads the key and writes it back in separate round trips, so two workers
that read the same value both admit a request (over-admission under load);
the second runs one round trip per limit. Here one script does the whole
GCRA step for every limit of the route, atomically on the server:

* the time comes from the server's ``TIME``, so hosts with skewed clocks
  agree on one timeline;
* a client's TATs for one route (or for the shared default) live in one hash,
  a field per limit, with a TTL of the time until the last one is reached,
  so nothing grows without bound;
* the script returns the TATs it read and the time it used; the Python side
  runs the same arithmetic (:func:`shipshape.ratelimit.gcra.decide`) on them
  to build the headers, so the two cannot disagree on a decision;
* ``EVALSHA`` is sent first; only after a ``NOSCRIPT`` (a restarted or
  flushed server) is the script sent again with ``EVAL``. redis-py's own
  ``Script`` helper would load the script and retry, three round trips.

Values cross the script boundary as strings with microsecond precision:
Redis truncates a Lua number to an integer when it is passed to a command.

The timeout bounds each call as a whole with ``asyncio.timeout``, a timer on
the event loop, rather than through redis-py's ``socket_timeout``, which runs
every command's send under ``asyncio.wait_for`` and so costs an extra Task per
request. A command cut off mid-flight closes its connection (redis-py
disconnects on any exception in a send or a read, cancellation included), so
no late reply is left on a pooled connection for the next request to read.

Connections: redis-py makes them (URL options, TLS, unix sockets, ``AUTH``,
``SELECT``) and speaks the protocol on them (its hiredis parser), but the
store keeps its own list of idle ones and packs its few commands itself,
instead of going through ``Redis.execute_command`` and redis-py's pool. That
pool takes an ``asyncio.Lock`` twice per command, polls the socket for
unread data, and records observability counters and events, and the generic
packer encodes every argument anew: measured on this machine, 95 µs of CPU
per ``EVALSHA`` through the client against 38 µs on a connection held
directly, on a path every rate-limited request takes. A connection that
failed stays in the list closed, and redis-py reconnects it on its next use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from hashlib import sha1
from typing import Any, TypeVar

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shipshape.config import RateLimit
from shipshape.ratelimit.gcra import TOLERANCE, Decision, decide
from shipshape.ratelimit.store import Clock, Store

PREFIX = "shipshape:rl:"
#: Seconds a call may take before the store counts as failed: a slow store
#: must not hold a worker (the outage policy decides what happens next).
DEFAULT_TIMEOUT = 0.05

_T = TypeVar("_T")

# KEYS[1] the hash; ARGV: now ('' for the server's clock), count1, period1, count2,
# period2, ... (periods in seconds). Returns {now, tat1, tat2, ...}, the TATs as they
# were *before* this request.
GCRA_SCRIPT_TEMPLATE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
-- Rounded as it is returned, so that the caller's arithmetic uses the same number.
now = tonumber(string.format('%.6f', now))
local n = (#ARGV - 1) / 2
local fields = {}
for i = 1, n do fields[i] = ARGV[2 * i] .. '/' .. ARGV[2 * i + 1] end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local read = {string.format('%.6f', now)}
local advanced = {}
local wait = 0
local last = now
for i = 1, n do
  local count = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(stored[i]) or now
  read[i + 1] = string.format('%.6f', tat)
  local interval = period / count
  local new_tat = math.max(tat, now) + interval
  -- As gcra.decide sums it, so that both sides reach the same decision.
  wait = math.max(wait, math.max(tat - now, 0) + interval - period)
  advanced[i] = new_tat
  if new_tat > last then last = new_tat end
end
if wait <= {tolerance} then
  local pairs_ = {}
  for i = 1, n do
    pairs_[2 * i - 1] = fields[i]
    pairs_[2 * i] = string.format('%.6f', advanced[i])
  end
  redis.call('HSET', KEYS[1], unpack(pairs_))
  redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) * 1000) + 1)
end
return read
"""
GCRA_SCRIPT = GCRA_SCRIPT_TEMPLATE.replace("{tolerance}", f"{TOLERANCE:.6f}")
SCRIPT_SHA = sha1(GCRA_SCRIPT.encode(), usedforsecurity=False).hexdigest()


def client_url(url: str) -> str:
    """redis-py speaks ``redis://``, ``rediss://`` and ``unix://``; Valkey's map onto them."""
    if url.startswith("valkeys://"):
        return "rediss://" + url.removeprefix("valkeys://")
    if url.startswith("valkey://"):
        return "redis://" + url.removeprefix("valkey://")
    return url


def bulk(*args: bytes) -> bytes:
    """Arguments as the Redis protocol's (RESP) bulk strings."""
    return b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


def pack(*args: bytes) -> bytes:
    """One command in the Redis protocol, as redis-py's packer writes it."""
    return b"*%d\r\n" % len(args) + bulk(*args)


PING = pack(b"PING")
#: ``EVALSHA`` and ``EVAL`` with their first argument, packed once.
_EVALSHA = bulk(b"EVALSHA", SCRIPT_SHA.encode())
_EVAL = bulk(b"EVAL", GCRA_SCRIPT.encode())


class RedisStore(Store):
    """GCRA state shared by every worker and host that uses the same server.

    Arguments:
        url: ``redis://``, ``rediss://``, ``unix://``, ``valkey://`` or ``valkeys://``.
        timeout: seconds for connecting, and for each call (:meth:`hit`,
            :meth:`ping`) as a whole, the reconnect and ``NOSCRIPT`` fallback included.
        prefix: prepended to every key.
        clock: for tests only, a clock to use instead of the server's ``TIME``.

    Connections are made in the worker that serves, from :meth:`startup` on,
    so that forked workers never share sockets: one per call in flight, kept
    for the next call once it is done, and at most the URL's
    ``max_connections`` (redis-py's default, 100) at once. A call beyond that
    waits its turn, in order, before its timeout starts: the wait is this
    worker's own queue, each call ahead of it bounded by the timeout, not a
    sign that the store fails. (Failing it, as redis-py's pool does, let one
    client's burst of a hundred requests open the outage breaker for every
    client: 503s under ``closed``, more than the limit under ``open``.)
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str = PREFIX,
        clock: Clock | None = None,
    ) -> None:
        self.url = client_url(url)
        self.clock = clock
        self.timeout = timeout
        self.prefix = prefix
        self._factory: ConnectionPool | None = None
        #: One per connection allowed; a call holds one from before it takes a connection.
        self._turns: asyncio.Semaphore | None = None
        self._idle: list[AbstractConnection] = []
        #: Every connection made and not yet closed by shutdown, idle or in use.
        self._connections: set[AbstractConnection] = set()
        #: The packed tail of an ``EVALSHA`` (or ``EVAL``) for each route's limits.
        self._tails: dict[tuple[RateLimit, ...], bytes] = {}

    async def startup(self) -> None:
        # Used only to parse the URL and make connections with its options; the
        # store never takes a connection from it (see the module docstring).
        self._factory = ConnectionPool.from_url(
            self.url,
            # None, not redis-py's default of 5 s: with a socket timeout every send
            # runs under asyncio.wait_for, a Task per command. _call times the
            # whole call instead; see the module docstring.
            socket_timeout=None,
            socket_connect_timeout=self.timeout,
            health_check_interval=0,
        )
        self._turns = asyncio.Semaphore(self._factory.max_connections)

    async def shutdown(self) -> None:
        """Close every connection, those of calls still running included."""
        self._factory = None  # first: a call that ends after this closes its own
        connections, self._connections, self._idle = self._connections, set(), []
        await asyncio.gather(*(c.disconnect() for c in connections), return_exceptions=True)

    async def execute(self, command: bytes) -> Any:
        """Send one packed command and return its reply, on an idle connection.

        A kept connection that fails is reconnected and the command sent again,
        once: the server closed it while it sat idle (a restart, a failover, an
        idle timeout). That is redis-py's retry too, and shares its flaw: had the
        server run the script and then dropped the connection before replying,
        the request would count twice. Never after a timeout (see
        :meth:`_call`). An error reply (``NOSCRIPT``) is raised, and leaves
        the connection fit for the next call.
        """
        factory = self._factory
        if factory is None:
            raise RuntimeError("the Redis store is used before the app started serving")
        kept = bool(self._idle)
        if kept:
            connection = self._idle.pop()
        else:  # never more than max_connections: a call waits for its turn (_call)
            connection = factory.connection_class(**factory.connection_kwargs)
            self._connections.add(connection)
        try:
            try:
                await connection.send_packed_command(command, check_health=False)
                return await connection.read_response()
            except RedisConnectionError:
                if not kept or self._factory is not factory:  # a new one, or shut down
                    raise
                # redis-py closed it; the send below reconnects.
                await connection.send_packed_command(command, check_health=False)
                return await connection.read_response()
        finally:
            # Closed by redis-py after any failure, cancellation included, so a late
            # reply can never be read as the next call's; it reconnects on next use.
            if self._factory is factory:
                self._idle.append(connection)
            else:  # shutdown ran meanwhile
                await connection.disconnect()

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()`` once a connection is free for it, bounded by the timeout; made only
        then, so that a caller cancelled while it waits leaves no coroutine unawaited.

        Past the timeout the call is cancelled, its reconnect included, so a
        script that may have run is never sent again; the error is redis-py's
        ``TimeoutError``, as its socket timeout raised. The wait for a turn comes
        first, outside the timeout (see the class docstring)."""
        turns = self._turns
        if turns is None:
            raise RuntimeError("the Redis store is used before the app started serving")
        async with turns:
            try:
                async with asyncio.timeout(self.timeout):
                    return await call()
            except TimeoutError as exc:
                raise RedisTimeoutError(f"no reply from Redis within {self.timeout} s") from exc

    async def ping(self) -> None:
        await self._call(lambda: self.execute(PING))

    async def hit(self, key: str, limits: Sequence[RateLimit]) -> Decision:
        rule = tuple(limits)
        tail = self._tails.get(rule)
        if tail is None:  # count1 period1 count2 period2 ..., once per route's limits
            if len(self._tails) >= 1024:  # limits made per call, not taken from config
                self._tails.clear()
            tail = self._tails[rule] = bulk(
                *(str(value).encode() for limit in rule for value in (limit.count, limit.period))
            )
        now = f"{self.clock():.6f}".encode() if self.clock is not None else b""
        args = b"*%d\r\n" % (5 + 2 * len(rule)), bulk(b"1", (self.prefix + key).encode(), now)
        reply = await self._call(lambda: self._run_script(*args, tail))
        now_read, *tats = (float(value) for value in reply)
        decision, _ = decide(tats, limits, now_read)
        return decision

    async def _run_script(self, count: bytes, first: bytes, tail: bytes) -> list[bytes]:
        """``EVALSHA sha 1 key now limits...``, and ``EVAL`` after a ``NOSCRIPT``."""
        try:
            reply: list[bytes] = await self.execute(count + _EVALSHA + first + tail)
        except NoScriptError:
            reply = await self.execute(count + _EVAL + first + tail)
        return reply
