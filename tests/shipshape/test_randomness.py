"""The random bytes behind nonces and CSRF tokens (``shipshape.randomness``)."""

from __future__ import annotations

import base64
import os
import sys
import threading
from collections.abc import Iterator

import pytest

from shipshape import randomness
from shipshape.randomness import POOL_BYTES, token_bytes, token_urlsafe


@pytest.fixture
def numbered_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Pools whose 16-byte blocks are all different, numbered, instead of the kernel's bytes."""
    pools: list[bytes] = []
    lock = threading.Lock()  # two threads refilling at once still get different pools

    def urandom(count: int) -> bytes:
        with lock:
            first = len(pools) * (count // 16)
            pool = b"".join(n.to_bytes(16, "big") for n in range(first, first + count // 16))
            pools.append(pool)
        return pool

    monkeypatch.setattr(os, "urandom", urandom)
    randomness._forget_pool()
    yield pools
    randomness._forget_pool()  # the next test draws the kernel's bytes again


def test_draws_are_consecutive_pieces_of_a_pool_and_a_short_rest_is_never_handed_out(
    numbered_pools: list[bytes],
) -> None:
    draws = [token_bytes(16), token_bytes(32), token_bytes(16)]
    [pool] = numbered_pools
    assert b"".join(draws) == pool[:64]  # in order, nothing twice
    token_bytes(POOL_BYTES - 64 - 16)  # 16 bytes are left in the pool
    assert len(numbered_pools) == 1
    assert token_bytes(32) == numbered_pools[1][:32]  # a new pool; the 16 are dropped
    assert token_bytes(16) == numbered_pools[1][32:48]


def test_a_draw_larger_than_a_pool_comes_straight_from_the_kernel(
    numbered_pools: list[bytes],
) -> None:
    big = token_bytes(POOL_BYTES + 16)
    assert len(big) == POOL_BYTES + 16 and numbered_pools == [big]


def test_threads_drawing_at_once_never_get_the_same_bytes(numbered_pools: list[bytes]) -> None:
    per_thread: list[list[bytes]] = [[] for _ in range(8)]

    def draw(into: list[bytes]) -> None:
        for _ in range(5000):
            into.append(token_bytes(16))

    threads = [threading.Thread(target=draw, args=(into,)) for into in per_thread]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switching)
    every = [block for into in per_thread for block in into]
    assert len(every) == 40_000 and len(set(every)) == 40_000  # each block handed out once


def test_a_forked_child_draws_bytes_its_parent_does_not() -> None:
    token_bytes(16)  # the parent has a pool, part used, that the child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, as a forked worker
        try:
            os.write(write, token_bytes(64))
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64)
    os.close(read)
    assert len(child) == 64 and child != token_bytes(64)  # not the parent's next bytes


def test_token_urlsafe_is_the_secrets_format() -> None:
    token = token_urlsafe(16)
    assert len(token) == 22 and "=" not in token
    assert len(base64.urlsafe_b64decode(token + "==")) == 16
    assert token_urlsafe(16) != token


def test_a_negative_count_raises_as_secrets_does() -> None:
    with pytest.raises(ValueError, match="negative"):
        token_bytes(-1)
