"""Rate limits in real server processes sharing a real Redis: exact, unspoofable, outage-safe."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from redis import Redis

from tests.e2e.conftest import Server, serve_production
from tests.servers import RedisServer

PATH = "/privacy"  # a dynamic page with only the default limit


@contextmanager
def serve(redis_url: str, *, workers: int, limit: str, on_error: str = "open") -> Iterator[Server]:
    with serve_production(
        workers,
        REDIS_URL=redis_url,
        RATELIMIT_DEFAULT=limit,
        RATELIMIT_ON_STORE_ERROR=on_error,
        TRUSTED_PROXIES="0",
    ) as server:
        yield server


def hammer(
    servers: list[Server], clients: int, each: int, *, forge: bool = True
) -> tuple[Counter[int], float, float]:
    """``clients`` threads, each sending ``each`` GETs over keep-alive, spread over ``servers``.

    Returns the statuses (a 429 or 503 without ``Retry-After`` counts as its
    negative), and the seconds from the last first request to the
    first last answer (inner) and from the first request to the last answer
    (outer): every admitted request was decided inside the outer window.
    """
    statuses: Counter[int] = Counter()
    starts: list[float] = []
    ends: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(number: int) -> None:
        server = servers[number % len(servers)]
        host, port = server.base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        mine: Counter[int] = Counter()
        barrier.wait()
        first = time.monotonic()
        for _ in range(each):
            headers = {"Host": "127.0.0.1", "Accept": "application/json"}
            if forge:  # TRUSTED_PROXIES=0: must not make a new client
                headers["X-Forwarded-For"] = f"203.0.113.{random.randrange(1, 255)}"  # noqa: S311
            connection.request("GET", PATH, headers=headers)
            response = connection.getresponse()
            response.read()
            # A refusal without its Retry-After is counted apart, as a failure.
            refused = response.status in (429, 503)
            missing = refused and response.getheader("Retry-After") is None
            mine[-response.status if missing else response.status] += 1
        last = time.monotonic()
        connection.close()
        with lock:
            statuses.update(mine)
            starts.append(first)
            ends.append(last)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, min(ends) - max(starts), max(ends) - min(starts)


def test_two_servers_with_two_workers_each_admit_exactly_what_gcra_allows(
    redis_server: RedisServer,
) -> None:
    """8 clients x 500 requests, one client address, forged X-Forwarded-For, 100/minute."""
    redis_server_url = redis_server.url.replace("/0", "/1")  # a database of its own
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                # closed: a check the store could not answer in time (a worker this
                # loaded can miss the 50 ms) is refused, never admitted unlimited
                serve(redis_server_url, workers=2, limit="100/minute", on_error="closed")
            )
            for _ in range(2)
        ]
        statuses, inner, outer = hammer(servers, clients=8, each=500)
    assert set(statuses) <= {200, 429, 503}, statuses
    assert sum(statuses.values()) == 4000
    # GCRA at 100/minute: a burst of 100, then one every 0.6 s of the window.
    low, high = 100 + int(max(inner, 0) / 0.6), 100 + int(outer / 0.6) + 1
    assert statuses[200] <= high, (statuses, inner, outer)  # never more than the limit
    if not statuses[503]:  # and, when the store always answered, no fewer
        assert low <= statuses[200], (statuses, inner, outer)


def breaker_closed(printed: str) -> bool:
    """Whether every failure of the store the server logged was followed by its return."""
    return printed.count("rate-limit store failed") == printed.count("rate-limit store is back")


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_dies_under_load_and_comes_back(policy: str) -> None:
    redis = RedisServer()
    redis.start()
    try:
        with ExitStack() as stack:
            server = stack.enter_context(
                serve(redis.url, workers=1, limit="5/second", on_error=policy)
            )
            # A worker this loaded can miss the store's 50 ms on its first checks (a new
            # connection), and its breaker then skips the store until a check after its
            # back-off answers: with open, its own memory refuses meanwhile, so a 429 does
            # not say the store answered. The outage starts once the breaker has closed
            # again (as many "back" lines as "failed" ones), and its lines are counted from
            # then on.
            before, _, _ = hammer([server], clients=2, each=50, forge=False)
            deadline = time.monotonic() + 30
            while not (before[429] and breaker_closed(server.printed())):
                assert time.monotonic() < deadline, server.printed()
                time.sleep(1.1)
                before, _, _ = hammer([server], clients=2, each=50, forge=False)
            up_to_now = len(server.printed())
            redis.stop()
            # Until its wait is over, a refused client is refused by the worker without
            # asking the store (shipshape.ratelimit.refusals): wait, so that the store is asked.
            time.sleep(1.1)
            during, _, outage = hammer([server], clients=2, each=50, forge=False)
            redis.start()  # the same port, empty: nothing is saved
            # The breaker tries the store again once its back-off (1 s, doubling
            # while failures go on, 30 s at most) is over; no restart is needed.
            # The store is in use again when the app's keys appear in it (with
            # open, the worker's own memory refuses meanwhile, so a 429 does not say).
            store = Redis.from_url(redis.url)
            deadline = time.monotonic() + 35
            while not store.keys() and time.monotonic() < deadline:
                hammer([server], clients=2, each=5, forge=False)
                time.sleep(0.5)
            store.close()
            after, _, _ = hammer([server], clients=2, each=20, forge=False)
            output = server.stop()[up_to_now:]
    finally:
        redis.close()
    if policy == "open":  # still limited, by the worker's own memory: never unlimited
        assert set(during) <= {200, 429} and during[429] > 0, during
        assert during[200] <= 5 + int(outage * 5) + 1, (during, outage)  # burst, then 5/s
    else:
        assert set(during) == {503}, during
    assert set(after) <= {200, 429} and after[429] > 0, "limits apply again, no restart"
    assert output.count("rate-limit store failed") == 1, output
    assert output.count("rate-limit store is back") == 1
    assert "Traceback" not in output
