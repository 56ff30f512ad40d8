"""One load run and what it cost: wrk's figures, and the CPU time a server spent.

``wrk_run`` is the harness's one way to drive load (``bench/run.py`` and
``bench/ratelimit.py``): wrk pinned to the load core, its output parsed, and
a server that died or answered nothing reported as that server's failure.
``cpu_seconds`` reads a server's CPU time from ``/proc``: its process and every
live descendant (gunicorn serves from a child of its master). ``paired_ratios``
compares two stacks measured in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.stacks import LOAD_CPU, Server

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")  # /proc/<pid>/stat counts CPU time in these per second


class Rounds(Protocol):
    @property
    def rounds(self) -> Sequence[float]:
        """One figure per round, in order: round n of every stack ran together."""


def paired_ratios(mine: Rounds, peer: Rounds) -> list[float]:
    """Round-by-round ratios: the two stacks of a pair run back to back.

    The machine's speed drifts by a fifth or more over a run; a ratio taken
    within one round cancels most of that, where a ratio of two medians does not.
    """
    return sorted(a / b for a, b in zip(mine.rounds, peer.rounds, strict=True))


@dataclass(frozen=True)
class WrkRun:
    rps: float
    requests: int  # completed within the run, as wrk counts them
    non_2xx_3xx: int
    connect_errors: int


def wrk_run(
    server: Server,
    path: str,
    headers: Mapping[str, str],
    seconds: int,
    connections: int,
    scenario: str,
) -> WrkRun:
    """Load ``server`` at ``path`` with ``headers``; raise its StackError if it fails."""
    options = [part for name, value in headers.items() for part in ("-H", f"{name}: {value}")]
    completed = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
         *options, server.url + path],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # A server that died answers nothing: that is its failure, not a rate of zero.
    server.check_running(scenario)
    output = completed.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in ", output)
    if completed.returncode or found is None or count is None:
        said = (completed.stderr or output).strip().splitlines() or ["no output"]
        raise server.failed(
            f"wrk failed in {scenario} (exit status {completed.returncode}): {said[-1]}"
        )
    rps = float(found[1])
    if rps == 0:
        raise server.failed(f"answered no requests under load in {scenario}")
    statuses = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read \d+, write \d+, timeout \d+", output)
    return WrkRun(
        rps=rps,
        requests=int(count[1]),
        non_2xx_3xx=int(statuses[1]) if statuses else 0,
        connect_errors=int(sockets[1]) if sockets else 0,
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and its live descendants, in seconds."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # The command name is in parentheses and may hold spaces; the fields follow it.
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])  # ppid
        times[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return sum(times.get(member, 0) for member in tree) / TICKS


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every harness shares: how long, how often, how many connections."""
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)


def harness_main(description: str | None, run: Callable[[argparse.Namespace], int]) -> int:
    """A harness's ``python -m`` entry: the shared load options, then ``run``."""
    parser = argparse.ArgumentParser(description=description)
    add_load_arguments(parser)
    return run(parser.parse_args())
