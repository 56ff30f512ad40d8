"""``bench/results/ratelimit.md``: the tables, the ratios and the issue's targets."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.load import paired_ratios
from bench.peers.common import ADMIT_ALL
from bench.peers.shipshape_ratelimit import REFUSED_PATH, REFUSING_LIMIT, STORE_TIMEOUT
from bench.ratelimit.scenarios import (
    ADMITTED,
    BASELINES,
    EXAMPLES,
    PAGE,
    PEERS,
    REFUSED_HTML,
    REFUSED_JSON,
    SHIPSHAPE,
    TARGET_RATIO,
    TARGET_REFUSAL_CPU,
    TARGET_ROUND_TRIPS,
    Measured,
    Outcome,
    Scenario,
)
from bench.stacks import LOAD_CPU, ROOT, SERVER_CPU

#: The packages whose versions the report names.
PACKAGES = ("quart", "uvicorn", "quart-rate-limiter", "flask", "gunicorn", "flask-limiter",
            "limits", "redis")  # fmt: skip


@dataclass
class Series:
    """Any per-round figure, for :func:`bench.load.paired_ratios`."""

    rounds: list[float]


def spread(values: Sequence[float]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}"


def ratio_cells(paired: Sequence[float]) -> str:
    """The median ratio in bold, then every round's: two table cells."""
    return f"**{statistics.median(paired):.2f}×** | {', '.join(f'{r:.2f}' for r in paired)}"


def commands(result: Measured) -> str:
    calls = result.calls
    if not calls:
        return "none"
    return ", ".join(
        f"{name.upper()} {result.per_request(count):.2f}" for name, count in calls.most_common()
    )


def cpu_ratio(result: Measured, reference: Measured) -> list[float]:
    return paired_ratios(Series(result.cpu_rounds), Series(reference.cpu_rounds))


def revision() -> str:
    """The commit measured, and whether ``src/`` had changes of its own."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
    )
    commit = head.stdout.strip() or "an unknown commit"
    return commit + (" with uncommitted changes in `src/`" if changed.stdout.strip() else "")


def machine(outcome: Outcome) -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return (
        f"Machine: {os.cpu_count()} cores ({model}), {platform.platform(terse=True)}, "
        f"Python {platform.python_version()}, {outcome.redis_version}; "
        + ", ".join(versions)
        + f"; Shipshape at {revision()}.\n"
    )


def header(outcome: Outcome, args: argparse.Namespace) -> list[str]:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "# Rate limiting: Shipshape's Redis store against its peers, and a 429 next to a 200\n",
        f"Measured {when} by `make bench` (`python -m bench.ratelimit --seconds {args.seconds} "
        f"--repeats {args.repeats} --connections {args.connections}`): wrk with 1 thread and "
        f"{args.connections} connections pinned to CPU {LOAD_CPU}, each server one worker "
        f"pinned to CPU {SERVER_CPU}, one redis-server for the whole run pinned to CPU "
        f"{LOAD_CPU} next to wrk (so the server's core is its own, as with Redis on another "
        f"host); every server up for the whole run, the {args.repeats} runs of each "
        "scenario taken in turns (every other round backwards) after a warm-up. The machine "
        "is noisy, so read the ratios, which are taken round by round between runs measured "
        "close together, more than the absolute numbers.\n",
        machine(outcome),
        "Per request means over the requests wrk sent: those it got answers to, plus each "
        "connection's last one, which the server still serves after wrk stops (a server that "
        f"drops some of those reads up to {args.connections} in a run's few thousand low). "
        "Redis's `INFO` and the server's CPU time are read before and after each run, once "
        "the server has gone quiet. *Round trips* are the read events on Redis's client "
        "sockets (nobody pipelines here, so one per command a client sends), less one per "
        "connection closed (its end of file); a new connection's `HELLO` and `CLIENT SETINFO` "
        "are round trips too, and a pool reconnects when the server cancels requests that "
        "were waiting on Redis as wrk drops its connections at the end of a run. *Commands* "
        "are `INFO commandstats` calls, which include the commands a Lua script runs: "
        "Shipshape's one `EVALSHA` runs `TIME`, `HMGET`, `HSET` and `PEXPIRE` inside Redis. "
        "Server CPU is the user and system time in `/proc` of the server process and its "
        "children (10 ms ticks); Redis's is `used_cpu_user` plus `used_cpu_sys`.\n",
    ]


def s5(outcome: Outcome, by: dict[tuple[str, str], Measured]) -> list[str]:
    lines = [
        "## S5: a rate-limited route over Redis\n",
        f'One route answering `{{"ok":true}}` (11 bytes of JSON), limited at `{ADMIT_ALL}` '
        "per client address, so every request is admitted and pays the whole check:\n",
        "* `shipshape-ratelimit`: `Shipshape(app)` in production (security headers, host "
        "check, JSON request log, CSRF hook, compression) with `REDIS_URL` and `@rate_limit` "
        "on the view, uvicorn (`bench/peers/shipshape_ratelimit.py`). Its store timeout "
        f"(`SHIPSHAPE_RATELIMIT_STORE_TIMEOUT`) is {STORE_TIMEOUT:g} s instead of the "
        "default 50 ms, since the peers wait for Redis as long as it takes. The timeout "
        "runs on the event loop, so a reply Redis sent in microseconds is read late when "
        "the worker is saturated and the machine busy: on a quiet machine 50 ms held (a "
        "trial of four 3 s runs logged no store failure), but in a trial next to the test "
        "suite the breaker opened and requests were admitted without asking Redis, so that "
        "run measured the breaker, not the store;",
        "* `quart-rate-limiter`: plain Quart with quart-rate-limiter's `RedisStore` and "
        "`@rate_limit`, uvicorn; it sends `RateLimit-*` headers;",
        "* `flask-limiter`: Flask with Flask-Limiter (`storage_uri=redis://...`, its default "
        "fixed-window strategy, `headers_enabled=True` since the other two send headers), "
        "gunicorn sync; `flask-limiter-bare` is the same with Flask-Limiter's defaults (no "
        "headers);",
        "* the baselines, each the same app without its limiter: `shipshape-exempt` (the "
        "route `@rate_exempt`, so no store call), `quart-unlimited`, `flask-unlimited`.\n",
    ]
    shipshape = by.get((SHIPSHAPE, ADMITTED.name))
    lines += [
        "| comparison | Shipshape | peer | × peer | × peer, round by round |",
        "|---|---|---|---:|---|",
    ]
    for name in ("quart-rate-limiter", "flask-limiter", "flask-limiter-bare"):
        peer = by.get((name, ADMITTED.name))
        if shipshape is not None and peer is not None:
            lines.append(
                f"| requests/s | `{SHIPSHAPE}` {shipshape.rps:,.0f} | `{name}` {peer.rps:,.0f} "
                f"| {ratio_cells(paired_ratios(shipshape, peer))} |"
            )
    lines += [
        "",
        "| stack | req/s, median | req/s, rounds | Redis round trips / request "
        "| Redis commands / request | commands by name, per request "
        "| Redis connections opened | server CPU µs / request | Redis CPU µs / request |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for stack in PEERS:
        result = by.get((stack, ADMITTED.name))
        if result is not None:
            wrong = f" ({result.wrong_status:,} not 200)" if result.wrong_status else ""
            total = result.per_request(sum(result.calls.values()))
            lines.append(
                f"| {stack} | {result.rps:,.0f}{wrong} | {spread(result.rounds)} "
                f"| {result.round_trips:.2f} | {total:.2f} | {commands(result)} "
                f"| {result.connections} | {statistics.median(result.cpu_rounds):,.0f} "
                f"| {result.redis_cpu:.1f} |"
            )
        elif stack in outcome.failed:
            lines.append(f"| {stack} | **failed**: {escape(outcome.failed[stack])} |" + " – |" * 7)
    lines += [
        "",
        "What each limiter itself costs the server: its CPU per request less its baseline's, "
        "round by round (the two run next to each other).\n",
        "| limiter | baseline | server CPU µs / request, with | without "
        "| the limiter's own, median | rounds |",
        "|---|---|---:|---:|---:|---|",
    ]
    own: dict[str, float] = {}
    for stack, baseline in BASELINES.items():
        result, base = by.get((stack, ADMITTED.name)), by.get((baseline, ADMITTED.name))
        if result is None or base is None:
            continue
        rounds = [a - b for a, b in zip(result.cpu_rounds, base.cpu_rounds, strict=True)]
        own[stack] = statistics.median(rounds)
        lines.append(
            f"| {stack} | {baseline} | {statistics.median(result.cpu_rounds):,.0f} "
            f"| {statistics.median(base.cpu_rounds):,.0f} | **{own[stack]:,.0f}** "
            f"| {', '.join(f'{r:,.0f}' for r in sorted(rounds))} |"
        )
    lines += [
        "",
        f"Targets (issue 11): at least {TARGET_RATIO}× quart-rate-limiter's requests/second, "
        f"with exactly {TARGET_ROUND_TRIPS} Redis round trip per request.",
    ]
    verdicts = []
    quart = by.get(("quart-rate-limiter", ADMITTED.name))
    if shipshape is not None and quart is not None:
        ratio = statistics.median(paired_ratios(shipshape, quart))
        verdicts.append(f"{ratio:.2f}× ({met(ratio >= TARGET_RATIO)})")
    if shipshape is not None:
        trips = shipshape.round_trips
        verdicts.append(
            f"{trips:.2f} round trips per request ({met(round(trips, 2) == TARGET_ROUND_TRIPS)})"
        )
    if SHIPSHAPE in own and "quart-rate-limiter" in own and own[SHIPSHAPE] > 0:
        verdicts.append(
            f"the limiter alone costs {own[SHIPSHAPE]:,.0f} µs of server CPU per request "
            f"against quart-rate-limiter's {own['quart-rate-limiter']:,.0f} µs"
        )
    if verdicts:
        lines.append("Measured: " + "; ".join(verdicts) + ".")
    return [*lines, ""]


def s6(outcome: Outcome, by: dict[tuple[str, str], Measured]) -> list[str]:
    lines = [
        "## S6: the cost of a 429 next to a 200\n",
        "The example app (`app:create_app`, production) plus one route, "
        f"`{REFUSED_PATH}`, limited at `{REFUSING_LIMIT}`: its first request is admitted "
        "and every later one refused with 429. Three requests on each server:\n",
        f"* `{PAGE.name}`: `GET /`, the home page rendered per request (template, CSP nonce, "
        "CSRF token, session cookie, compression), with a browser's `Accept` and "
        "`Accept-Encoding`;",
        f"* `{REFUSED_HTML.name}`: `GET {REFUSED_PATH}` with the same headers;",
        f"* `{REFUSED_JSON.name}`: `GET {REFUSED_PATH}` with `Accept: application/json`.\n",
        "`shipshape-example-redis` keeps its limits in the run's redis-server (store timeout "
        f"{STORE_TIMEOUT:g} s, as in S5); `shipshape-example-memory` in its own memory (no "
        "`REDIS_URL`, as `make serve` runs it by default). The CPU ratio is taken round by "
        "round, each 429 run against the page run of its round on the same server.\n",
    ]
    verdicts = []
    for stack in EXAMPLES:
        lines.append(f"### `{stack}`\n")
        if stack in outcome.failed:
            lines.append(f"**Failed**: {escape(outcome.failed[stack])}\n")
            continue
        page = by.get((stack, PAGE.name))
        if page is None:
            continue
        lines += [
            "| request | req/s, median | req/s, rounds | server CPU µs / request, median "
            "| rounds | CPU × the page's | × the page's, round by round "
            "| Redis round trips / request | bytes | type |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
        ]
        for scenario in (PAGE, REFUSED_HTML, REFUSED_JSON):
            result = by.get((stack, scenario.name))
            if result is None:
                continue
            cells = "1.00× | –"
            if scenario is not PAGE:
                paired = cpu_ratio(result, page)
                cells = ratio_cells(paired)
                ratio = statistics.median(paired)
                verdicts.append(
                    f"`{stack}` {scenario.name}: {ratio:.2f}× ({met(ratio <= TARGET_REFUSAL_CPU)})"
                )
            lines.append(
                f"| {scenario.name} | {result.rps:,.0f}{wrong(result, scenario)} "
                f"| {spread(result.rounds)} | {statistics.median(result.cpu_rounds):,.0f} "
                f"| {spread(result.cpu_rounds)} | {cells} | {result.round_trips:.2f} "
                f"| {result.body_bytes:,} | {result.kind} |"
            )
        lines.append("")
    lines.append(
        f"Target (issue 11): a 429 costs at most {TARGET_REFUSAL_CPU}× the server CPU of a "
        "served page."
    )
    if verdicts:
        lines.append("Measured: " + "; ".join(verdicts) + ".")
    return lines


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def wrong(result: Measured, scenario: Scenario) -> str:
    if not result.wrong_status:
        return ""
    return f" ({result.wrong_status:,} not {scenario.status})"


def escape(text: str) -> str:
    return text.replace("|", "\\|")


def report(outcome: Outcome, args: argparse.Namespace) -> str:
    by = {(r.stack, r.scenario.name): r for r in outcome.results}
    lines = [*header(outcome, args), *s5(outcome, by), *s6(outcome, by)]
    if outcome.outages:
        lines += [
            "",
            "**The Redis store failed during the run** (the breaker's log line, so some "
            "requests were admitted without asking Redis): "
            + ", ".join(f"`{name}` {count}×" for name, count in sorted(outcome.outages.items()))
            + ".",
        ]
    return "\n".join(lines) + "\n"
