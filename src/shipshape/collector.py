"""The garbage collector while the app serves: start-up's objects frozen, fewer young passes.

CPython's cyclic collector is tuned for scripts, and costs a serving worker
more than a page's own work would suggest. Measured on the rate-limited route
of ``make bench`` (one worker, 32 connections, the example app's modules
loaded), with ``gc.callbacks`` timing each pass:

* a full collection walks every object the worker made at import and
  start-up (119,000 here: Quart, SQLAlchemy, Jinja, the URL map) to find
  almost nothing; one ran every 1,600 requests and took 59 ms;
* a young collection ran every 13 requests, and under load each one walks
  every object of every request in flight (32 of them), so it took 0.2 ms.

Together that was 57 µs of CPU per request, an eighth of the route's cost.
While the app serves, Shipshape therefore

* moves the objects that exist when start-up reaches Shipshape's
  ``before_serving`` step (the imports, the app and its URL map, templates
  loaded so far) into the permanent generation with :func:`gc.freeze`, as
  the Python docs advise for long-lived servers, so that full collections
  skip them;
* collects the young generation after 10,000 net allocations rather than
  700 (Python 3.13 moved to 2,000), which a request's few cycles do not need
  sooner: a young pass now comes every ~650 requests.

The same route then spent 4–6 µs per request in the collector (two runs). Both are undone
when the last app that tuned the collector stops serving (the thresholds it
found restored, :func:`gc.unfreeze`), so a process that starts and stops
apps, a test suite, still collects them, and an app started twice works.
The collector is the process's, so apps that serve in one process at once
share one count. Nothing is collected before the freeze: a full collection
of a large process costs tens of milliseconds per start, and the little
cyclic garbage of start-up is frozen with the rest and released at
shutdown. A start-up that fails after this step leaves the process tuned.

``SHIPSHAPE_GC_TUNING`` (on in production) switches it; an app with its own
collector policy turns it off.
"""

from __future__ import annotations

import gc

from quart import Quart

from shipshape.options import ON_IN_PRODUCTION, Option, flag

#: Net allocations of tracked objects between two young-generation passes.
YOUNG_THRESHOLD = 10_000

OPTIONS: tuple[Option, ...] = (
    flag(
        "SHIPSHAPE_GC_TUNING",
        ON_IN_PRODUCTION,
        "while serving, freeze start-up's objects out of the garbage collector's walks "
        f"and collect the young generation every {YOUNG_THRESHOLD:,} allocations "
        "(`shipshape.collector`)",
    ),
)


def install(app: Quart) -> None:
    """Tune the collector when the app starts serving, and undo it when it stops."""
    app.before_serving(_tune)
    app.after_serving(_untune)


#: Apps serving with the collector tuned, and the thresholds found before the first.
_serving = 0
_found: tuple[int, int, int] = gc.get_threshold()


async def _tune() -> None:
    global _serving, _found
    if _serving == 0:
        _found = gc.get_threshold()
    _serving += 1
    gc.freeze()  # again for a second app: its start-up's objects too
    gc.set_threshold(YOUNG_THRESHOLD, *_found[1:])


async def _untune() -> None:
    global _serving
    _serving -= 1
    if _serving == 0:
        gc.set_threshold(*_found)
        gc.unfreeze()
