"""``bench/results/latest.md``: the machine, the set-up, the targets, and one table per set-up."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.load import paired_ratios
from bench.measure import Options, Unit
from bench.stacks import SETUPS, STACKS
from bench.suite import Target

CPUINFO = Path("/proc/cpuinfo")
PACKAGES = ("granian", "uvicorn", "hypercorn", "gunicorn", "quart", "flask", "sqlalchemy", "redis")


def machine(extra: Sequence[str]) -> str:
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", CPUINFO.read_text(), re.M)
    except OSError:
        found = None
    model = found[1] if found else "unknown CPU"
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    versions = ", ".join(f"{name} {installed(name)}" for name in PACKAGES)
    return (
        f"- {os.cpu_count()} cores: {model}\n"
        f"- Python {platform.python_version()}; {versions}\n"
        f"- {(wrk.stdout or wrk.stderr).split(' Copyright')[0].strip()}"
        + "".join(f"; {item}" for item in extra)
        + "\n"
    )


def installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def escape(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def ratio_text(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"


def paired(target: Target, units: dict[tuple[str, str, str], Unit], setup: str) -> list[float]:
    """The target's figure, round by round (or once, for bytes and round trips)."""
    mine = units.get((setup, *target.mine))
    if mine is None or mine.error or not mine.samples:
        return []
    if target.measure == "round trips":
        return [mine.round_trips]
    other = units.get((setup, *target.other)) if target.other else None
    if other is None or other.error or not other.samples:
        return []
    if target.measure == "bytes":
        return [mine.body_bytes / other.body_bytes]
    if target.measure == "cpu":
        return sorted(a / b for a, b in zip(mine.cpu_rounds, other.cpu_rounds, strict=True))
    return paired_ratios(mine, other)


def describe(target: Target) -> str:
    if target.other is None:
        return f"`{target.mine[1]}`: Redis {target.measure} per request {target.wanted}"
    what = {"rps": "req/s", "bytes": "bytes", "cpu": "CPU per request"}[target.measure]
    against = target.other[1] if target.other[0] == target.mine[0] else target.other[0]
    return f"`{target.mine[1]}` {what} {target.wanted} `{against}`"


def targets_table(targets: list[Target], units: dict[tuple[str, str, str], Unit]) -> str:
    lines = [
        "| scenario | target | pinned | shared | met |",
        "|---|---|---|---|---|",
    ]
    for target in targets:
        cells, verdicts, missing = [], [], False
        for setup in SETUPS:
            values = paired(target, units, setup)
            if not values:
                compared = [units.get((setup, *key)) for key in (target.mine, target.other) if key]
                errors = [f"`{u.stack}` failed: {u.error}" for u in compared if u and u.error]
                missing = missing or bool(errors)
                cells.append(escape("; ".join(errors)) if errors else "–")
                continue
            value = statistics.median(values)
            verdicts.append(target.met(value))
            if target.measure == "round trips":
                cells.append(f"{value:.2f}")
            elif len(values) == 1:
                cells.append(f"{value:.2f}×")
            else:
                cells.append(ratio_text(values))
        if missing:  # one set-up has no figure: no verdict from the other alone
            met = "incomplete"
        else:
            met = "yes" if verdicts and all(verdicts) else ("**no**" if verdicts else "–")
        lines.append(f"| {target.key} | {describe(target)} | {' | '.join(cells)} | {met} |")
    return "\n".join(lines) + "\n"


def ceilings_table(ceilings: list[Target], units: dict[tuple[str, str, str], Unit]) -> str:
    lines = ["| scenario | ceiling | pinned | shared |", "|---|---|---|---|"]
    for ceiling in ceilings:
        cells = [ratio_text(paired(ceiling, units, setup)) for setup in SETUPS]
        peer = ceiling.other[1] if ceiling.other else "–"
        lines.append(
            f"| {ceiling.key} | `{ceiling.mine[1]}` req/s × `{peer}` | {' | '.join(cells)} |"
        )
    return "\n".join(lines) + "\n"


def results_table(setup: str, units: list[Unit]) -> str:
    lines = [
        "| scenario | stack | req/s, median (min–max) | p50 ms | p99 ms | bytes on the wire "
        "| body bytes | RSS MiB | × each peer, round by round: median (min–max) |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    by_scenario: dict[str, list[Unit]] = {}
    for unit in units:
        if unit.setup == setup:
            by_scenario.setdefault(unit.scenario.key, []).append(unit)
    for key, row in by_scenario.items():
        first = row[0]
        for unit in row:
            label = f"{key}: {unit.scenario.title}" if unit is first else ""
            if unit.error or not unit.samples:
                why = escape(unit.error or "no result")
                lines.append(f"| {label} | `{unit.stack}` | **failed**: {why} | | | | | | |")
                continue
            rounds = unit.rounds
            errors = sum(s.wrong_status for s in unit.samples)
            wrong = f", **{errors:,} wrong status**" if errors else ""
            ratios = "–"
            if unit is first:
                ratios = "; ".join(
                    f"× `{peer.stack}` {ratio_text(paired_ratios(unit, peer))}"
                    for peer in row[1:]
                    if peer.samples and not peer.error
                )
            lines.append(
                f"| {label} | `{unit.stack}` | {unit.rps:,.0f} ({min(rounds):,.0f}–"
                f"{max(rounds):,.0f}){wrong} | {unit.median('p50') * 1e3:.2f} "
                f"| {unit.median('p99') * 1e3:.2f} | {unit.median('wire_bytes'):,.0f} "
                f"| {unit.body_bytes:,} ({unit.kind}) | {unit.rss / 2**20:,.0f} | {ratios} |"
            )
    return "\n".join(lines) + "\n"


def costs_table(units: list[Unit]) -> str:
    lines = [
        "| set-up | scenario | stack | server CPU µs/request, median (min–max) "
        "| Redis round trips/request | Redis commands/request |",
        "|---|---|---|---|---:|---|",
    ]
    for unit in units:
        if not unit.scenario.cost or unit.error or not unit.samples:
            continue
        cpu = unit.cpu_rounds
        calls = unit.redis_calls
        commands = ", ".join(
            f"{name} {count / unit.served:.2f}" for name, count in calls.most_common()
        )
        lines.append(
            f"| {unit.setup} | {unit.scenario.key} | `{unit.stack}` "
            f"| {statistics.median(cpu):,.0f} ({min(cpu):,.0f}–{max(cpu):,.0f}) "
            f"| {unit.round_trips:.2f} | {commands or '–'} |"
        )
    return "\n".join(lines) + "\n"


def stacks_list(units: list[Unit]) -> str:
    used = list(dict.fromkeys(unit.stack for unit in units))
    return "".join(f"- `{name}` on {STACKS[name].server}: {STACKS[name].about}\n" for name in used)


def report(
    units: list[Unit],
    targets: list[Target],
    options: dict[str, Options],
    *,
    when: str,
    minutes: float,
    command: str,
    extra_versions: Sequence[str],
    appendix: str,
    quick: bool = False,
    ceilings: Sequence[Target] = (),
) -> str:
    keyed = {(u.setup, u.scenario.key, u.stack): u for u in units}
    setups = [name for name in SETUPS if any(u.setup == name for u in units)]
    sections = "".join(
        f"\n## Results, {name} set-up ({SETUPS[name].about})\n\n" + results_table(name, units)
        for name in setups
    )
    return (
        f"# `make bench`: the {'quick' if quick else 'latest'} run\n\n"
        f"Measured {when} by `{command}`, in {minutes:.0f} minutes.\n\n"
        "## Machine\n\n"
        + machine(extra_versions)
        + "\n## Set-up\n\n"
        + "".join(
            f"- **{name}**: {SETUPS[name].about}; wrk with {o.connections} connections, "
            f"{o.repeats} rounds of {o.seconds} s per scenario and stack after a {o.warmup} s "
            "warm-up.\n"
            for name, o in options.items()
            if name in setups
        )
        + "- Within a scenario the stacks run in turns (every other round backwards), so the "
        "ratios are taken round by round between runs seconds apart: this machine's speed "
        "drifts by a fifth or more over a run, so read the ratios, not the absolute numbers.\n"
        "- Bytes on the wire are wrk's bytes read per response, headers included; the body "
        "is one response's, as sent. RSS is the server's (master and workers) after its "
        "runs. A stack that failed shows its error, never a zero.\n\n"
        "## Targets (issue 15)\n\n"
        + targets_table(targets, keyed)
        + (
            "\n## Ceilings\n\nA bare app doing only the scenario's own work (the stacks "
            "below say what it leaves out), against the target's peer, round by round. A "
            "ceiling under a target says that no layer on the same stack can meet it.\n\n"
            + ceilings_table(list(ceilings), keyed)
            if ceilings
            else ""
        )
        + sections
        + "\n## Costs per request (S5, S6)\n\n"
        "The server's CPU time from `/proc` around each run, once it has gone quiet; "
        "Redis's `INFO` around each run (round trips are read events, one per command "
        "sent; commands run by scripts count as calls).\n\n"
        + costs_table(units)
        + "\n## The stacks\n\n"
        + stacks_list(units)
        + appendix
    )
