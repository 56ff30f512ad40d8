"""Rate limiting: Shipshape's Redis store against its peers, and a 429 next to a 200.

Two scenarios (issue 11), measured as ``bench/run.py`` measures: one worker
per server pinned to CPU 1, wrk pinned to CPU 0, every server up for the
whole run, the repeats taken in turns (every other round backwards), and
comparisons read as round-by-round ratios. One redis-server, started for the
run and pinned to CPU 0 next to wrk, serves every stack.

* **S5, a rate-limited route over Redis**: one tiny JSON route limited at
  ``1000000/second`` (so every request is admitted, and costs the full check)
  on Shipshape (``shipshape-ratelimit``), quart-rate-limiter with its
  ``RedisStore`` on Quart, and Flask-Limiter with Redis storage on Flask and
  gunicorn sync, headers on as the other two send theirs (``flask-limiter``)
  and off, its default (``flask-limiter-bare``); and each app without its
  limiter, so that the limiter's own CPU cost is the difference. Around each
  measured run the harness reads Redis's ``INFO``, so each stack's Redis
  round trips and commands per request are counted, not inferred.
* **S6, the cost of a 429 next to a 200**: the example app's home page, and
  a route limited at ``1/hour`` that refuses every request after its first,
  asked for by a browser (``Accept: text/html...``) and by an API client
  (``Accept: application/json``); over Redis and over the memory store. The
  server's CPU time per request comes from ``/proc``.

Run with ``python -m bench.ratelimit`` or ``python -m bench.run --only ratelimit``;
``make bench`` runs it after the other scenarios. It writes
``bench/results/ratelimit.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.load import harness_main
from bench.ratelimit.measure import measure
from bench.ratelimit.report import report
from bench.stacks import ROOT, require_tools

RESULTS = ROOT / "bench" / "results"


def run(args: argparse.Namespace) -> int:
    """Both scenarios, then the report; 1 if a stack failed (the report marks it)."""
    require_tools("taskset", "wrk")
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-bench-ratelimit-"))
    try:
        outcome = measure(args, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ratelimit.md").write_text(report(outcome, args))
    if outcome.failed:
        failed = ", ".join(sorted(outcome.failed))
        print(f"{failed} failed (output above); the report marks them", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    return harness_main(__doc__, run)
