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

* moves the objects that exist once start-up is done (the last
  ``before_serving`` function has run) into the permanent generation with
  :func:`gc.freeze`, as the Python docs advise for long-lived servers, so
  that full collections skip them;
* collects the young generation after 10,000 net allocations rather than
  700 (Python 3.13 moved to 2,000), which a request's few cycles do not need
  sooner: a young pass now comes every ~650 requests.

The same route then spent 6 µs per request in the collector. Both are undone
when the app stops serving (the thresholds restored, :func:`gc.unfreeze`), so
a process that starts and stops many apps, a test suite, still collects
them. Nothing is collected before the freeze: a full collection of a large
process costs tens of milliseconds per start, and the little cyclic garbage
of start-up is frozen with the rest and released at shutdown.

``SHIPSHAPE_GC_TUNING`` (on in production) switches it; an app with its own
collector policy turns it off.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator

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
    """Tune the collector once the app has started, and undo it when it stops."""
    # while_serving generators start after every before_serving function.
    app.while_serving(tuned_collector)


async def tuned_collector() -> AsyncGenerator[None, None]:
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
