"""``make bench``: every scenario, every stack, both set-ups, in one run and one report.

Scenarios (``bench/suite.py`` has them all, with their stacks and targets):

* S1 the home page and S2 the ``/cookies`` form, with ``Accept-Encoding: br``
  and with a browser's headers, against the template repository's stack
  rendering the same templates; S1 also on uvicorn and hypercorn (the server
  comparison);
* S3 an SPA deep link and S4 the hashed JS bundle, against tozo's serving
  blueprint and a raw ASGI app sending the same bytes; S3 on every server too;
* the hashed Bootstrap CSS with br, against a raw ASGI app and the template stack;
* S5 a rate-limited route over Redis against quart-rate-limiter and
  Flask-Limiter, Redis commands counted (and, pinned, Shipshape and Quart
  without a limiter: the limiter's own cost); S6 a 429 next to a 200, in
  server CPU per request;
* S7 the Things list page and ``GET /api/things`` over SQLite and PostgreSQL,
  against the template stack with Flask-SQLAlchemy.

Each runs in the ``pinned`` set-up (one worker on CPU 1, wrk on CPU 0) and
the ``shared`` one (two workers per server, load on the same two cores).
``make bench`` writes ``bench/results/latest.md``; ``make bench QUICK=1``
(``--quick``: the pinned set-up only, fewer rounds) writes
``bench/results/quick.md``, for a change's before and after. ``--only S1,S7``
keeps the scenarios whose key starts with one of those; ``--setups pinned``
keeps one set-up. A stack that fails shows its error in the report, and the
run exits 1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.levels import report as levels_report
from bench.measure import Options, Unit, measure_group
from bench.redis_server import binary as redis_binary
from bench.report import report
from bench.stacks import ROOT, SETUPS, require_tools
from bench.suite import ceilings, groups, targets
from tests.servers import postgres_bin

RESULTS = ROOT / "bench" / "results"
#: Per set-up; the shared set-up takes fewer rounds, so that the whole run fits in 15 minutes.
FULL = {
    "pinned": Options(seconds=2, repeats=4, connections=32, warmup=1),
    "shared": Options(seconds=2, repeats=3, connections=32, warmup=1),
}
#: The pinned set-up only, three rounds: about a third of the time, for a change's before and after.
QUICK = {"pinned": Options(seconds=2, repeats=3, connections=32, warmup=1)}


def tool_versions() -> list[str]:
    """The Redis and PostgreSQL servers the run used, for the report's machine section."""
    found = []
    for name, binary in (("redis", redis_binary), ("postgres", postgres_binary)):
        try:
            command = [binary(), "--version"]
            line = subprocess.run(command, capture_output=True, text=True, check=False).stdout
        except (OSError, SystemExit, AssertionError) as exc:
            line = f"{name}: not found ({exc})"
        found.append(line.strip().split(" sha=")[0])
    return found


def postgres_binary() -> str:
    return str(postgres_bin() / "postgres")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="shorter runs: quick.md")
    parser.add_argument("--only", help="scenario keys to keep, by prefix: S1,S3,CSS")
    parser.add_argument("--setups", default=",".join(SETUPS), help="pinned,shared")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else FULL
    setups = [name for name in args.setups.split(",") if name in options or name not in SETUPS]
    unknown = [name for name in setups if name not in SETUPS]
    if unknown:
        parser.error(f"unknown set-ups {', '.join(unknown)}; choose from {', '.join(SETUPS)}")
    prefixes = tuple(args.only.split(",")) if args.only else ("",)
    require_tools("taskset", "wrk")

    began = time.monotonic()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-bench-"))
    units: list[Unit] = []
    appendix = ""
    try:
        for setup in setups:
            for group in groups():
                group.scenarios = [
                    s for s in group.scenarios if s.key.startswith(prefixes) and setup in s.setups
                ]
                if group.scenarios:
                    units += measure_group(group, SETUPS[setup], run_dir, options[setup])
        home = run_dir / "home.html"
        if home.exists():
            appendix = "\n## Appendix\n\n" + levels_report(home.read_bytes(), depth=3)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    command = "python -m bench.run" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    wanted = {u.scenario.key for u in units}
    text = report(
        units,
        [target for target in targets() if target.key in wanted],
        options,
        when=when,
        minutes=(time.monotonic() - began) / 60,
        command=command,
        extra_versions=tool_versions(),
        appendix=appendix,
        quick=args.quick,
        ceilings=[ceiling for ceiling in ceilings() if ceiling.key in wanted],
    )
    RESULTS.mkdir(exist_ok=True)
    written = RESULTS / ("quick.md" if args.quick else "latest.md")
    written.write_text(text)
    print(f"wrote {written.relative_to(ROOT)}")
    failed = sorted({f"{u.stack} ({u.setup})" for u in units if u.error})
    if failed:
        print(f"{', '.join(failed)} failed (output above); the report marks them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
