"""Cryptographically strong random bytes without a system call per draw.

A page draws random bytes three times: its CSP nonce, and a new session's CSRF
secret and the mask of its token. :mod:`secrets` asks the kernel for each
(``getrandom``), and CPython releases the GIL around that system call; under
load granian's threads took the GIL at each release, and the request waited
to get it back. :func:`ssl.RAND_bytes` (OpenSSL's DRBG, no system call) was
tried: 12,000 instructions a draw here, against 2,100 for :mod:`secrets` and
1,700 for this module. So the bytes come from the kernel as before, 4 KiB at
a time (one ``os.urandom`` call for fifty pages or more), and each byte is
handed out once.

A forked worker drops the pool it inherited before its first draw, so that no
two workers hand out the same bytes (a test forks and compares). The bytes
still in the pool are as secret as the ``SECRET_KEY`` the same memory holds,
with one difference from asking the kernel each time: a copy of the process
(a snapshot of a container or virtual machine that is then cloned) holds the
same pool, until it is used up. Those already handed out went to clients (a
nonce, a token, a session cookie).

The pool relies on the GIL: ``BytesIO.read`` is one C call, which hands out
bytes no other read gets. On a free-threaded Python each draw asks the
kernel, as :mod:`secrets` does.
"""

from __future__ import annotations

import base64
import io
import os
import sys

#: Bytes drawn from the kernel at a time.
POOL_BYTES = 4096

# Each read hands out bytes no other read gets: BytesIO.read is one C call,
# which holds the GIL throughout. No lock, so nothing for a fork to inherit held.
_pool = io.BytesIO()


if getattr(sys, "_is_gil_enabled", lambda: True)():

    def token_bytes(count: int) -> bytes:
        """``count`` random bytes, as :func:`secrets.token_bytes` gives them."""
        chunk = _pool.read(count)
        return chunk if len(chunk) == count else _from_new_pool(count)

else:  # pragma: no cover - a free-threaded Python; see the module docstring

    def token_bytes(count: int) -> bytes:
        """``count`` random bytes, as :func:`secrets.token_bytes` gives them."""
        return os.urandom(count)


def _from_new_pool(count: int) -> bytes:
    """A draw the pool cannot fill: its rest is dropped, never handed out, and a new
    pool is drawn. Two threads here at once each start their own, and one of the two
    is dropped in turn; no byte is handed out twice."""
    global _pool
    if not 0 <= count <= POOL_BYTES:  # too many for a pool, or an error to raise
        return os.urandom(count)
    pool = io.BytesIO(os.urandom(POOL_BYTES))
    chunk = pool.read(count)
    _pool = pool
    return chunk


def token_urlsafe(count: int) -> str:
    """``count`` random bytes in URL-safe base64 without padding, as
    :func:`secrets.token_urlsafe` gives them."""
    return base64.urlsafe_b64encode(token_bytes(count)).rstrip(b"=").decode("ascii")


def _forget_pool() -> None:
    """In a forked child: the parent's pool goes, before the child's first draw."""
    global _pool
    _pool = io.BytesIO()


os.register_at_fork(after_in_child=_forget_pool)
