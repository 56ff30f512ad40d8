"""New sessions for the single-page index, each holding a new CSRF secret, made in batches.

A client without a session (a first visit, or wrk) gets a new session with
the index: a new CSRF secret, the session cookie that holds it, signed, and
the page's masked token. Made one response at a time, that was the largest
part of the index's work under load: 23% of its requests a second (pinned,
interleaved rounds, against the index sending a fixed cookie), against 4 µs
of 40 in-process, because under load the worker's thread shares its core
with the server's threads and each request finds the signing code and data
gone from the caches. Made :data:`BATCH` at a time, back to back, the same
work costs what it does in-process, and a response takes one from the batch:
1.13× the index's requests a second (pinned, five interleaved rounds).

Each session is handed out once (``list.pop``, one C call under the GIL).
A batch is dropped, never handed out further, when:

- its second is over: a session's cookie is signed at most a second before
  it is sent, so its age (which Quart reads against
  ``PERMANENT_SESSION_LIFETIME``) is off by at most that;
- the cookie settings or keys changed (:meth:`CookieSessions.settings`): a
  rotated ``SECRET_KEY`` signs the next session at once;
- the process forked: a worker never hands out its parent's sessions, which
  another worker might also hand out.

The secrets of a batch wait in memory until the next :meth:`FreshSessions.take`
drops it (on an idle worker, until the next visitor), as the random pool's
bytes do (:mod:`shipshape.randomness`); once their second is over they are
never handed out. An interface of the app's own
(:meth:`CookieSessions.settings` is ``None``) gets a session made per
response, as before.
"""

from __future__ import annotations

import os
import time
import weakref

from shipshape.csrf import SESSION_KEY, mask, new_secret
from shipshape.sessions import CookieSessions

#: Sessions made at a time. A batch takes about 0.12 ms here (back to back), which
#: the first new visitor of a second waits for; at low traffic most of a batch is
#: dropped unused when its second ends.
BATCH = 32

#: Every pool in this process, emptied in a forked child.
_POOLS: weakref.WeakSet[FreshSessions] = weakref.WeakSet()


class FreshSessions:
    """New sessions, each with its own CSRF secret: :meth:`take` hands one out.

    Arguments:
        sessions: the app's session cookie, which signs them.
    """

    def __init__(self, sessions: CookieSessions) -> None:
        self.sessions = sessions
        # The batch with the settings and second it was made for, in one attribute, so
        # that a thread never pairs one batch with another's settings.
        self._batch: tuple[object, int, list[tuple[bytes, str]]] = (None, -1, [])
        _POOLS.add(self)

    def take(self) -> tuple[bytes, str]:
        """A new session's ``Set-Cookie`` value and a token masked from its secret."""
        settings = self.sessions.settings()
        if settings is None:
            return self._made(1)[0]
        now = int(time.time())
        made_for, made_in, batch = self._batch
        if made_in == now and made_for == settings:
            try:
                return batch.pop()
            except IndexError:  # used up (by another thread, without a GIL, since the check)
                pass
        batch = self._made(BATCH)
        self._batch = (settings, now, batch)
        return batch.pop()

    def _made(self, count: int) -> list[tuple[bytes, str]]:
        """``count`` new sessions, their cookies signed together."""
        secrets = [new_secret() for _ in range(count)]
        cookies = self.sessions.set_cookies([{SESSION_KEY: secret.hex()} for secret in secrets])
        return [(cookie, mask(secret)) for cookie, secret in zip(cookies, secrets, strict=True)]

    def _forget(self) -> None:
        self._batch = (None, -1, [])


def _forget_in_child() -> None:
    for pool in list(_POOLS):
        pool._forget()


os.register_at_fork(after_in_child=_forget_in_child)
