"""One load run and what it cost: wrk's figures, and what a server used.

``wrk_run`` drives the load on one server, ``wrk_together`` on several at
once: wrk placed as the server's set-up says, its output parsed (requests
per second, p50 and p99 latency, bytes per response on the wire), and a
server that died or answered nothing reported as that server's failure.
``cpu_seconds`` and ``rss_bytes`` read a server's CPU time and resident
memory from ``/proc``: its process and every live descendant (gunicorn and
granian serve from children of their master). ``paired_ratios`` compares
two stacks measured in the same rounds.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.stacks import Server, pinned

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
    p50: float  # latency, seconds
    p99: float
    wire_bytes: float  # per response, headers included, as wrk read them


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
SIZES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _latency(output: str, percentile: int) -> float:
    found = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    return float(found[1]) * UNITS[found[2]] if found else float("nan")


def parse_wrk(output: str) -> WrkRun | None:
    """wrk's figures from its ``--latency`` output, or None if it has none."""
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in ", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", output)
    if found is None or count is None or transfer is None:
        return None
    rps = float(found[1])
    statuses = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read \d+, write \d+, timeout \d+", output)
    return WrkRun(
        rps=rps,
        requests=int(count[1]),
        non_2xx_3xx=int(statuses[1]) if statuses else 0,
        connect_errors=int(sockets[1]) if sockets else 0,
        p50=_latency(output, 50),
        p99=_latency(output, 99),
        wire_bytes=float(transfer[1]) * SIZES[transfer[2]] / rps if rps else 0.0,
    )


def wrk_run(
    server: Server,
    path: str,
    headers: Mapping[str, str],
    seconds: int,
    connections: int,
    scenario: str,
) -> WrkRun:
    """Load ``server`` at ``path`` with ``headers``; raise its StackError if it fails.

    wrk runs where the server's set-up puts the load: pinned to the load core,
    or on both cores with a thread each.
    """
    command = wrk_command(server, path, headers, seconds, connections)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    return wrk_result(server, scenario, completed.returncode, completed.stdout, completed.stderr)


def wrk_together(
    servers: Sequence[Server],
    path: str,
    headers: Mapping[str, str],
    seconds: int,
    connections: int,
    scenario: str,
) -> list[WrkRun]:
    """Load every server at once, a wrk each, placed as :func:`wrk_run` places it.

    With the servers on one core and their loads on the other, each server is
    measured while the other runs: both see the machine as it is at every
    instant, so its drift cancels in their ratio, which rounds taken in turns
    only narrow. The ratio is of their cost a request under contention (each
    also finds the other's code in the core's caches), not of their speed
    alone: ``bench/revisions.py --together`` reads small changes with it.
    """
    commands = [wrk_command(server, path, headers, seconds, connections) for server in servers]
    loads = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]  # fmt: skip
    said = [load.communicate() for load in loads]
    return [
        wrk_result(server, scenario, load.returncode, out, err)
        for server, load, (out, err) in zip(servers, loads, said, strict=True)
    ]


def wrk_command(
    server: Server, path: str, headers: Mapping[str, str], seconds: int, connections: int
) -> list[str]:
    setup = server.setup
    options = [part for name, value in headers.items() for part in ("-H", f"{name}: {value}")]
    command = ["wrk", f"-t{setup.load_threads}", f"-c{connections}", f"-d{seconds}s",
               "--latency", *options, server.url + path]  # fmt: skip
    return pinned(setup.load_cpus, command)


def wrk_result(server: Server, scenario: str, status: int, stdout: str, stderr: str) -> WrkRun:
    """wrk's figures, or the server's StackError for a run that failed."""
    # A server that died answers nothing: that is its failure, not a rate of zero.
    server.check_running(scenario)
    run = parse_wrk(stdout)
    if status or run is None:
        said = (stderr or stdout).strip().splitlines() or ["no output"]
        raise server.failed(f"wrk failed in {scenario} (exit status {status}): {said[-1]}")
    if run.rps == 0:
        raise server.failed(f"answered no requests under load in {scenario}")
    return run


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its live descendants (a server's master and workers)."""
    total = 0
    for status in proc_files(pid, "status"):
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(found[1]) * 1024 if found else 0
    return total


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and its live descendants, in seconds."""
    total = 0
    for stat in proc_files(pid, "stat"):
        # The command name is in parentheses and may hold spaces; the fields follow it.
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def proc_files(pid: int, name: str) -> Iterator[str]:
    """``/proc/<pid>/<name>`` of ``pid`` and each live descendant."""
    for member in process_tree(pid):
        try:
            yield (PROC / str(member) / name).read_text()
        except OSError:  # it ended while we looked
            continue


def process_tree(pid: int) -> set[int]:
    """``pid`` and its live descendants."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # The command name is in parentheses and may hold spaces; the fields follow it.
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return tree
