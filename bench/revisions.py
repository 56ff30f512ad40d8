"""Before and after a change: the example app at a git revision next to the working tree.

Both run in one process each on the server core, measured in the same rounds
(``run.measure_round_robin``), so a change's effect is read as round-by-round
ratios, free of the machine's drift over a run::

    python -m bench.revisions c88bf64 --seconds 3 --repeats 7

The revision is checked out into the run's temporary directory with
``git worktree`` and serves the working tree's built assets (the same
bundles, so the same hashed names). Nothing is written to ``bench/results``:
the table is printed, for a change's note.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.load import paired_ratios
from bench.run import measure_round_robin
from bench.stacks import DIST, ROOT, Server, StackError, report_failure, require_tools, start

SCENARIOS = {
    "home, br": ("/", "br"),
    "home, browser": ("/", "gzip, deflate, br, zstd"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revision", help="the git revision to compare the working tree with")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    require_tools("taskset", "wrk")
    manifest = json.loads((DIST / "manifest.json").read_text())
    scenarios = {
        **SCENARIOS,
        "bootstrap.css, br": (f"/static/{manifest['bootstrap.css']['path']}", "br"),
    }
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-revisions-"))
    worktree = run_dir / "before"
    servers: dict[str, Server] = {}
    failed: dict[str, str] = {}
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.revision],
            check=True,
            capture_output=True,
        )
        dist = worktree / "src" / "app" / "static" / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        dist.symlink_to(DIST, target_is_directory=True)
        servers["before"] = start("shipshape", run_dir, source=worktree, name="before")
        servers["after"] = start("shipshape", run_dir, name="after")
        print(f"{'scenario':<20} {'before':>9} {'after':>9}  after/before, round by round")
        for scenario, (path, accept) in scenarios.items():
            results = {r.stack: r for r in measure_round_robin(
                servers, scenario, path, accept, args, failed
            )}  # fmt: skip
            if len(results) < 2:
                continue
            ratios = paired_ratios(results["after"], results["before"])
            print(
                f"{scenario:<20} {results['before'].rps:>9.0f} {results['after'].rps:>9.0f}"
                f"  median {statistics.median(ratios):.2f}"
                f" ({', '.join(f'{r:.2f}' for r in ratios)})"
            )
    except StackError as exc:
        report_failure(exc, failed)
    finally:
        for server in servers.values():
            server.stop()
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
