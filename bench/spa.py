"""The single-page frontend: Shipshape's serving layer against tozo's way and a raw ASGI app.

Issue 13's scenarios, measured as ``bench/run.py`` measures (one worker per
server pinned to CPU 1, wrk pinned to CPU 0, every server up for the whole
run, the repeats taken in turns, ratios read round by round), on the same
build (``frontend/dist``, made by ``make frontend``):

* ``spa-index``: a deep link (``/app/things/<id>``) as a browser navigates to
  it (``Sec-Fetch-Dest: document``, ``Accept: text/html``, ``Accept-Encoding:
  br``): Shipshape's index with a fresh nonce and CSRF token per response;
* ``spa-bundle``: the hashed JS bundle with ``Accept-Encoding: br``.

Stacks: ``shipshape-spa`` (the example app in production mode), ``tozo-spa``
(``bench/peers/tozo_spa.py``: quart-rate-limiter, ``render_template`` for
every path, ``send_from_directory``) and ``raw-spa`` (the same bytes from a
raw ASGI app: the ceiling). Run with ``python -m bench.spa`` or
``python -m bench.run --only spa``; writes ``bench/results/spa.md``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.load import harness_main, paired_ratios, wrk_run
from bench.peers.raw_spa import INDEX_KEY
from bench.peers.tozo_spa import BUILD
from bench.stacks import ROOT, Server, StackError, report_failure, require_tools, start

RESULTS = ROOT / "bench" / "results"
STACKS = ("shipshape-spa", "tozo-spa", "raw-spa")
NAVIGATION = {
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Accept-Encoding": "br",
}
TARGETS = (
    "Targets (issue 13): the index at least 3× tozo's and at least 0.5× raw ASGI; "
    "the bundle at least 10× tozo's in at most 0.3× its bytes."
)


@dataclass
class Measured:
    stack: str
    scenario: str
    rounds: list[float]
    body_bytes: int
    errors: int

    @property
    def rps(self) -> float:
        return statistics.median(self.rounds)


def fetch(server: Server, path: str, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(server.url + path, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        if response.status != 200:
            raise server.failed(f"{path}: status {response.status}")
        return bytes(response.read())


def bundle_path() -> str:
    [bundle] = sorted((BUILD / "assets").glob("index-*.js"))
    return f"/app/assets/{bundle.name}"


def run(args: argparse.Namespace) -> int:
    require_tools("taskset", "wrk")
    scenarios = {
        "spa-index": (f"/app/things/{uuid.uuid4()}", NAVIGATION),
        "spa-bundle": (bundle_path(), {"Accept-Encoding": "br"}),
    }
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-bench-spa-"))
    servers: dict[str, Server] = {}
    failed: dict[str, str] = {}
    results: dict[tuple[str, str], Measured] = {}
    try:
        # The index as Shipshape serves it (uncompressed): the bytes the ceiling sends.
        capture = start("shipshape-spa", run_dir, name="capture")
        try:
            identity = {**NAVIGATION, "Accept-Encoding": "identity"}
            index = fetch(capture, scenarios["spa-index"][0], identity)
        finally:
            capture.stop()
        (run_dir / "index.html").write_bytes(index)
        for stack in STACKS:
            try:
                servers[stack] = start(
                    stack, run_dir, environ={INDEX_KEY: str(run_dir / "index.html")}
                )
            except StackError as exc:
                report_failure(exc, failed)
        for scenario, (path, headers) in scenarios.items():
            results.update(measure(servers, scenario, path, headers, args, failed))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "spa.md").write_text(report(results, failed, scenarios, args))
    if failed:
        print(f"{', '.join(sorted(failed))} failed (output above)", file=sys.stderr)
        return 1
    return 0


def measure(
    servers: dict[str, Server],
    scenario: str,
    path: str,
    headers: dict[str, str],
    args: argparse.Namespace,
    failed: dict[str, str],
) -> dict[tuple[str, str], Measured]:
    """One scenario on every stack, the repeats in turns (every other round backwards)."""
    results: dict[tuple[str, str], Measured] = {}
    for stack, server in servers.items():
        if stack in failed:
            continue
        try:
            body = fetch(server, path, headers)
            wrk_run(server, path, headers, 1, args.connections, scenario)  # warm-up
        except (StackError, OSError) as exc:
            error = exc if isinstance(exc, StackError) else server.failed(f"{scenario}: {exc}")
            report_failure(error, failed)
            continue
        results[stack, scenario] = Measured(stack, scenario, [], len(body), 0)
    order = [stack for stack, _ in results]
    for round_number in range(args.repeats):
        for stack in order if round_number % 2 == 0 else order[::-1]:
            if stack in failed:
                continue
            try:
                run = wrk_run(servers[stack], path, headers, args.seconds, args.connections,
                              scenario)  # fmt: skip
            except StackError as exc:
                report_failure(exc, failed)
                continue
            measured = results[stack, scenario]
            measured.rounds.append(run.rps)
            measured.errors += run.non_2xx_3xx + run.connect_errors
    for key in [key for key in results if key[0] in failed]:
        del results[key]
    for result in results.values():
        print(
            f"{result.stack:<14} {scenario:<11} {result.rps:>9.0f} req/s {result.body_bytes:>8} B"
        )
    return results


def report(
    results: dict[tuple[str, str], Measured],
    failed: dict[str, str],
    scenarios: dict[str, tuple[str, dict[str, str]]],
    args: argparse.Namespace,
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# The single-page frontend: a deep link and the hashed bundle\n",
        f"Measured {when} by `python -m bench.spa --seconds {args.seconds} --repeats "
        f"{args.repeats} --connections {args.connections}`: wrk with {args.connections} "
        "connections pinned to CPU 0, each server one worker (uvicorn) pinned to CPU 1, "
        "the rounds taken in turns. The machine has 2 cores and is noisy: read the "
        "round-by-round ratios.\n",
        "| scenario | stack | req/s | bytes | × tozo, by round | × raw ASGI, by round |",
        "|---|---|---:|---:|---|---|",
    ]
    for scenario, (path, _) in scenarios.items():
        tozo, raw = results.get(("tozo-spa", scenario)), results.get(("raw-spa", scenario))
        for stack in STACKS:
            result = results.get((stack, scenario))
            if result is None:
                reason = failed.get(stack, "no result").replace("|", "\\|")
                lines.append(f"| `{path}` | `{stack}` | **failed**: {reason} | – | – | – |")
                continue

            def ratios(peer: Measured | None, mine: Measured = result) -> str:
                if peer is None or peer is mine:
                    return "–"
                paired = paired_ratios(mine, peer)
                each = ", ".join(f"{r:.2f}" for r in paired)
                return f"**{statistics.median(paired):.2f}×** ({each})"

            errors = f" ({result.errors} errors)" if result.errors else ""
            size = f"{result.body_bytes:,}"
            if tozo is not None and stack != "tozo-spa":
                size += f" ({result.body_bytes / tozo.body_bytes:.2f}× tozo's)"
            lines.append(
                f"| `{scenario}` | `{stack}` | {result.rps:,.0f}{errors} | {size} "
                f"| {ratios(tozo)} | {ratios(raw)} |"
            )
    lines.append(f"\n{TARGETS}\n")
    return "\n".join(lines) + "\n"


def main() -> int:
    return harness_main(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
