"""Before and after a change: the example app at a git revision next to the working tree.

Both run pinned on the server core and are measured in the same rounds, so a
change's effect is read as round-by-round ratios, free of the machine's
drift over a run::

    python -m bench.revisions c88bf64
    python -m bench.revisions c88bf64 --only S3 --repeats 5

The revision is checked out into the run's temporary directory with
``git worktree`` and serves the working tree's built assets (the same
bundles, so the same hashed names). Nothing is written to ``bench/results``:
the table is printed, for a change's note.

``--together`` loads both servers at once instead of in turns (both on the
server core, a wrk each on the load core): each is measured while the other
runs, so the machine's drift, a fifth or more between rounds here, cancels
in every round's ratio. Against itself it reads 0.99–1.01, where rounds in
turns read 0.80–1.18 on a noisy day; a change of 2% shows. What it compares
is the cost a request under contention, so read its ratios as the change's
direction and size, and ``make bench`` for the figures against the peers.
Each server runs in a session of its own, so that the core is shared between
the two servers, not between their threads (a change that moves work off
aiosqlite's threads would otherwise be read as a loss).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.load import paired_ratios, wrk_run, wrk_together
from bench.measure import Options, Unit, check, measure_batch
from bench.peers.tozo_spa import BUILD
from bench.stacks import (
    DIST,
    LOAD_CPU,
    PINNED,
    ROOT,
    STACKS,
    Server,
    StackError,
    launch,
    ready,
    require_tools,
)
from bench.suite import Scenario, groups, seed, seeded_postgres
from tests.servers import PostgresServer

KEYS = (
    "S1 br", "S1 browser", "S2 br", "S3", "CSS", "S7 page SQLite", "S7 api SQLite",
    "S7 page PostgreSQL", "S7 api PostgreSQL",
)  # fmt: skip
#: What ``--only`` measures when not given: the scenarios of pages with no database.
DEFAULT_KEYS = KEYS[:5]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revision", help="the git revision to compare the working tree with")
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--together", action="store_true", help="load both at once (see the docstring)"
    )
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_KEYS),
        help=f"some of {', '.join(KEYS)}, comma-separated (the first five by default; "
        "SQLite's or PostgreSQL's, not both)",
    )
    args = parser.parse_args()
    keys = args.only.split(",")
    unknown = set(keys) - set(KEYS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(KEYS)}")
    on_postgres = any(key.endswith("PostgreSQL") for key in keys)
    if on_postgres and any(key.endswith("SQLite") for key in keys):
        parser.error("both servers serve one database: SQLite's scenarios or PostgreSQL's")
    options = Options(seconds=args.seconds, repeats=args.repeats, connections=32, warmup=1)
    require_tools("taskset", "wrk")
    scenarios = [s for group in groups() for s in group.scenarios if s.key in keys]
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-revisions-"))
    worktree = run_dir / "before"
    servers: dict[str, Server] = {}
    postgres = PostgresServer() if on_postgres else None
    failed = False
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.revision],
            check=True,
            capture_output=True,
        )
        # The working tree's builds: the assets' and the single-page frontend's.
        for built, place in ((DIST, "src/app/static/dist"), (BUILD, "frontend/dist")):
            target = worktree / place
            shutil.rmtree(target, ignore_errors=True)
            target.symlink_to(built, target_is_directory=True)
        # Both serve one database, seeded as make bench seeds S7's; PostgreSQL beside wrk.
        if postgres is not None:
            seeded_postgres(postgres, LOAD_CPU)
            database = postgres.url()
        else:
            database = f"sqlite+aiosqlite:///{run_dir / 'things.db'}"
            asyncio.run(seed(database))
        for name, source in (("before", worktree), ("after", None)):
            servers[name] = ready(
                launch(name, run_dir, PINNED, environ={"DATABASE_URL": database},
                       stack=STACKS["shipshape"], source=source, own_session=args.together)
            )  # fmt: skip
        print(f"{'scenario':<12} after/before, round by round")
        for scenario in scenarios:
            if args.together:
                ratios = measure_together(scenario, servers, options)
            else:
                ratios = measure_in_turns(scenario, servers, options)
            if ratios is None:
                failed = True
                continue
            print(
                f"{scenario.key:<12} median {statistics.median(ratios):.3f}"
                f" ({', '.join(f'{r:.3f}' for r in ratios)})"
            )
    except StackError as exc:
        print(f"FAILED {exc}")
        return 1
    finally:
        for server in servers.values():
            server.stop()
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(run_dir, ignore_errors=True)
        if postgres is not None:
            postgres.close()
    return 1 if failed else 0


def measure_in_turns(
    scenario: Scenario, servers: dict[str, Server], options: Options
) -> list[float] | None:
    """The rounds' ratios, each server loaded in turn, as ``make bench`` does; ``None``
    (and the reason printed) when a server fails."""
    before, after = (Unit(PINNED.name, scenario, name) for name in ("before", "after"))
    measure_batch([before, after], servers, None, options)
    if before.error or after.error:
        print(f"{scenario.key:<12} failed: {before.error or after.error}")
        return None
    return paired_ratios(after, before)


def measure_together(
    scenario: Scenario, servers: dict[str, Server], options: Options
) -> list[float] | None:
    """The rounds' ratios, both servers loaded at once; ``None`` (and the reason printed)
    when a server fails or answers another status."""
    pair = [servers["before"], servers["after"]]
    load = (scenario.path, scenario.headers)
    try:
        for server in pair:
            check(server, scenario)
            wrk_run(server, *load, options.warmup, options.connections, scenario.key)
        ratios = []
        for round_number in range(options.repeats):
            turn = 1 if round_number % 2 == 0 else -1  # which wrk starts first
            before, after = wrk_together(
                pair[::turn], *load, options.seconds, options.connections, scenario.key
            )[::turn]
            if any(run.non_2xx_3xx or run.connect_errors for run in (before, after)):
                print(f"{scenario.key:<12} failed: answers of another status, or no connection")
                return None
            ratios.append(after.rps / before.rps)
    except StackError as exc:
        print(f"{scenario.key:<12} failed: {exc}")
        return None
    return sorted(ratios)


if __name__ == "__main__":
    raise SystemExit(main())
