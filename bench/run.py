"""Benchmarks: Shipshape against its peer stacks, side by side in one run.

Every stack serves the same bytes: the home page HTML that Shipshape renders
(captured at the start of the run) and the hashed Bootstrap CSS of the build.
Each server runs one worker pinned to CPU 1; wrk runs pinned to CPU 0, so the
load generator and the server do not fight over a core. Every server stays
up for the whole run and the repeats are taken in turns (A, B, C, then C,
B, A, ...), so drift on the shared machine hits every stack alike; each
Shipshape stack runs right next to the peer it is compared with, and the
comparisons use the ratio of each such pair, round by round. Each figure is
the median of ``--repeats`` runs after a warm-up. A stack whose server exits,
never answers or answers nothing under load is dropped from the run: its
output is printed, the reports mark its rows failed, and the run exits 1.

Stacks:
* ``shipshape``: the example app in production mode (every header, CSRF,
  logging, static and compression middleware), uvicorn with uvloop/httptools;
  its home page is rendered per request (template, nonce, CSRF token,
  session cookie);
* ``shipshape-br4``: the same app with brotli at Flask-Compress's level 4
  instead of Shipshape's 3 (``bench/levels.py`` measures every level);
* ``shipshape-layer``: the same production layer on a bare Quart view that
  sends the captured bytes, the like-for-like counterpart of the peers;
* ``flask``: Flask + Flask-Compress + Flask-Talisman on gunicorn (sync),
  sending the captured bytes from a view;
* ``flask-template``: the template repository's stack rendering the same
  page: Flask-Compress, Flask-Talisman with nonces, Flask-WTF's CSRF token,
  Flask-Assets bundles, a Jinja layout like Shipshape's;
* ``quart``: plain Quart with ``send_from_directory``, on uvicorn;
* ``starlette``: Starlette with ``GZipMiddleware`` and ``StaticFiles``;
* ``raw-asgi``: bytes compressed once at start-up, the ceiling.

Then the rate-limit scenarios (``bench/ratelimit/``: Shipshape's Redis store
against quart-rate-limiter and Flask-Limiter, and a 429 next to a 200).

Run with ``make bench`` (``python -m bench.run``); results go to ``bench/results/*.md``.
Then the Things scenarios (``bench/things.py``: the list page and the JSON list
over one seeded SQLite file, against the template stack with Flask-SQLAlchemy).

Then the single-page frontend (``bench/spa.py``: a deep link and the hashed
bundle against tozo's way of serving the same build and a raw ASGI app).

``--only pages``, ``--only ratelimit``, ``--only things`` or ``--only spa`` runs one part.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import ratelimit
from bench.levels import report as levels_report
from bench.load import add_load_arguments, paired_ratios, wrk_run
from bench.stacks import (
    DIST,
    LOAD_CPU,
    ROOT,
    SERVER_CPU,
    STACKS,
    Server,
    StackError,
    capture_home,
    get,
    report_failure,
    require_tools,
    start,
)

RESULTS = ROOT / "bench" / "results"
#: What ``--only`` chooses: the page and static-file scenarios, or the rate-limit ones.
PARTS = ("pages", "ratelimit", "things", "spa")
BROWSER_ACCEPT = "gzip, deflate, br, zstd"  # what current Chrome and Firefox send

#: (label, Shipshape stack, peer stack) compared in ``compression.md``.
COMPARISONS = [
    ("compression layer, same body", "shipshape-compression", "flask-compress"),
    ("production layer, same body", "shipshape-layer", "flask"),
    ("same work, page rendered", "shipshape", "flask-template"),
]
#: Stacks with only the page: the compression layers compared on their own.
PAGE_ONLY = {"shipshape-compression", "flask-compress"}

Scenarios = dict[str, tuple[str, str]]  # name: (path, Accept-Encoding)
Failures = dict[tuple[str, str], str]  # (stack, scenario): why the stack has no result


@dataclass
class Result:
    stack: str
    scenario: str
    rounds: list[float]  # req/s of each round, in order: round n of every stack ran together
    errors: int
    body_bytes: int
    encoding: str

    @property
    def rps(self) -> float:
        return statistics.median(self.rounds)


def wrk(
    server: Server, path: str, accept: str, seconds: int, connections: int, scenario: str
) -> tuple[float, int]:
    """Requests/second, and the errors: non-2xx/3xx answers and failed connects."""
    run = wrk_run(server, path, {"Accept-Encoding": accept}, seconds, connections, scenario)
    return run.rps, run.non_2xx_3xx + run.connect_errors


def first_answer(server: Server, scenario: str, path: str, accept: str) -> tuple[bytes, str]:
    try:
        status, body, encoding = get(server.url + path, accept)
    except OSError as exc:  # urllib raises HTTPError, an OSError, for 4xx and 5xx
        server.check_running(scenario)
        raise server.failed(f"{scenario}: {exc}") from exc
    if status != 200:
        raise server.failed(f"{scenario}: status {status}")
    return body, encoding or "identity"


def measure_round_robin(
    servers: dict[str, Server],
    scenario: str,
    path: str,
    accept: str,
    args: argparse.Namespace,
    failed: dict[str, str],
) -> list[Result]:
    """One scenario on every stack, the repeats taken in turns.

    Every server is up for the whole run (idle ones cost nothing), and run
    ``n`` of each stack is taken in the same round as run ``n`` of the others,
    so a slow minute on this shared machine lowers every stack alike instead
    of whichever one happened to be measured then. A stack that fails is
    dropped from the scenario and recorded in ``failed``.
    """
    bodies: dict[str, tuple[bytes, str]] = {}
    runs: dict[str, list[tuple[float, int]]] = {}
    for stack, server in servers.items():
        try:
            bodies[stack] = first_answer(server, scenario, path, accept)
            wrk(server, path, accept, 1, args.connections, scenario)  # warm-up
        except StackError as exc:
            report_failure(exc, failed)
        else:
            runs[stack] = []
    order = list(runs)
    for round_number in range(args.repeats):
        # Every other round runs backwards, so neither side of a compared pair
        # (neighbours in STACKS) always goes first.
        for stack in order if round_number % 2 == 0 else order[::-1]:
            if stack in failed:
                continue
            try:
                runs[stack].append(
                    wrk(servers[stack], path, accept, args.seconds, args.connections, scenario)
                )
            except StackError as exc:
                report_failure(exc, failed)
    results = []
    for stack, stack_runs in runs.items():
        if stack in failed:
            continue
        body, coding = bodies[stack]
        errors = sum(r[1] for r in stack_runs)
        result = Result(stack, scenario, [r[0] for r in stack_runs], errors, len(body), coding)
        results.append(result)
        print(f"{stack:<16} {scenario:<14} {result.rps:>9.0f} req/s {len(body):>8} B {coding}")
    return results


def measure_all(
    stacks: list[str], scenarios: Scenarios, run_dir: Path, args: argparse.Namespace
) -> tuple[list[Result], Failures]:
    """Start every stack, run every scenario, stop them all; failed stacks are left out."""
    servers: dict[str, Server] = {}
    failed: dict[str, str] = {}
    results: list[Result] = []
    missing: Failures = {}
    try:
        for stack in stacks:
            try:
                servers[stack] = start(stack, run_dir)
            except StackError as exc:
                report_failure(exc, failed)
        for scenario, (path, accept) in scenarios.items():
            wanted = [stack for stack in stacks if path == "/" or stack not in PAGE_ONLY]
            serving = {s: servers[s] for s in wanted if s in servers and s not in failed}
            results += measure_round_robin(serving, scenario, path, accept, args, failed)
            for stack in wanted:
                if stack in failed:
                    print(f"{stack:<16} {scenario:<14} failed: {failed[stack]}")
                    missing[stack, scenario] = failed[stack]
    finally:
        for server in servers.values():
            server.stop()
    return results, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_load_arguments(parser)
    parser.add_argument("--stacks", default=",".join(STACKS), help="for the page scenarios")
    parser.add_argument(
        "--only",
        choices=PARTS,
        help="pages: static.md, compression.md, levels.md; ratelimit: ratelimit.md "
        "(python -m bench.ratelimit); things: things.md (python -m bench.things); "
        "spa: spa.md (python -m bench.spa); all by default",
    )
    args = parser.parse_args()
    stacks = args.stacks.split(",")
    unknown = [stack for stack in stacks if stack not in STACKS]
    if unknown:
        parser.error(f"unknown stacks {', '.join(unknown)}; choose from {', '.join(STACKS)}")
    require_tools("taskset", "wrk")
    status = 0
    if args.only in (None, "pages"):
        status |= run_pages(stacks, args)
    if args.only in (None, "ratelimit"):
        status |= ratelimit.run(args)
    if args.only in (None, "things"):
        from bench import things  # it imports this module's measuring

        status |= things.run(args)
    if args.only in (None, "spa"):
        from bench import spa

        status |= spa.run(args)
    return status


def run_pages(stacks: list[str], args: argparse.Namespace) -> int:
    manifest = json.loads((DIST / "manifest.json").read_text())
    css = "/static/" + manifest["bootstrap.css"]["path"]
    scenarios = {
        "static-css-br": (css, "br"),
        "home-br": ("/", "br"),
        "home-gzip": ("/", "gzip"),
        "home-browser": ("/", BROWSER_ACCEPT),
    }
    # This run's scratch files: the captured page the peers serve, and each server's output.
    run_dir = Path(tempfile.mkdtemp(prefix="shipshape-bench-"))
    try:
        home = capture_home(run_dir)
        results, missing = measure_all(stacks, scenarios, run_dir, args)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    write_reports(results, missing, home, manifest, args)
    if missing:
        failed = sorted({stack for stack, _ in missing})
        print(f"{', '.join(failed)} failed (output above); the reports mark them", file=sys.stderr)
        return 1
    return 0


def write_reports(
    results: list[Result],
    missing: Failures,
    home: bytes,
    manifest: dict[str, dict[str, object]],
    args: argparse.Namespace,
) -> None:
    RESULTS.mkdir(exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Measured {when} by `make bench` (`python -m bench.run --seconds {args.seconds} "
        f"--repeats {args.repeats} --connections {args.connections}`): wrk with 1 thread and "
        f"{args.connections} connections pinned to CPU {LOAD_CPU}, each server one worker pinned "
        f"to CPU {SERVER_CPU}; every server up for the whole run, the {args.repeats} runs of "
        "each scenario taken in turns across the stacks (every other round backwards), "
        "median reported after a warm-up. "
        "The machine has 2 cores and is noisy, so read the ratios, not the absolute numbers; "
        "the comparison tables give the median of the ratios taken round by round (the two "
        "stacks measured back to back) and every round's ratio.\n"
    )
    by = {(r.stack, r.scenario): r for r in results}

    def failure(stack: str, scenario: str) -> str | None:
        reason = missing.get((stack, scenario))
        return reason.replace("|", "\\|") if reason else None

    def table(
        scenario: str, size_reference: int | None, size_label: str, references: Sequence[str]
    ) -> str:
        refs = [(name, by.get((name, scenario))) for name in references]
        lines = [
            "| stack | req/s | "
            + "".join(f"× {name} | " for name, _ in refs)
            + f"bytes | coding | bytes × {size_label} |",
            "|---|---:|" + "---:|" * len(refs) + "---:|---|---:|",
        ]
        for stack in STACKS:
            result = by.get((stack, scenario))
            if result is None:
                reason = failure(stack, scenario)
                if reason:
                    dashes = " | ".join(["–"] * (len(refs) + 3))
                    lines.append(f"| {stack} | **failed**: {reason} | {dashes} |")
                continue
            ratios = "".join(
                f"{result.rps / ref.rps:.1f}× | " if ref else "– | " for _, ref in refs
            )
            size = f"{result.body_bytes / size_reference:.2f}" if size_reference else "–"
            errors = f" ({result.errors} errors)" if result.errors else ""
            lines.append(
                f"| {stack} | {result.rps:,.0f}{errors} | {ratios}{result.body_bytes:,} "
                f"| {result.encoding} | {size} |"
            )
        return "\n".join(lines) + "\n"

    def pairs(scenario: str) -> str:
        lines = [
            "| comparison | Shipshape | peer | × peer | × peer, round by round |",
            "|---|---|---|---:|---|",
        ]
        for label, ours, theirs in COMPARISONS:
            mine, peer = by.get((ours, scenario)), by.get((theirs, scenario))
            if mine and peer:
                paired = paired_ratios(mine, peer)
                lines.append(
                    f"| {label} | `{ours}` {mine.rps:,.0f} | `{theirs}` {peer.rps:,.0f} "
                    f"| **{statistics.median(paired):.2f}×** "
                    f"| {', '.join(f'{r:.2f}' for r in paired)} |"
                )
                continue
            failed = [
                f"`{name}` failed: {reason}"
                for name in (ours, theirs)
                if (reason := failure(name, scenario))
            ]
            if failed:
                lines.append(f"| {label} | `{ours}` | `{theirs}` | – | {'; '.join(failed)} |")
        return "\n".join(lines) + "\n\n"

    css = manifest["bootstrap.css"]
    encodings = css["encodings"]
    assert isinstance(encodings, dict)  # noqa: S101 - the manifest's own shape
    br_size = int(encodings["br"])
    levels_header = f"Measured {when} by `make bench`, in the harness's own process.\n"
    (RESULTS / "levels.md").write_text(levels_report(home, levels_header))
    (RESULTS / "static.md").write_text(
        "# Static files: hashed Bootstrap CSS with `Accept-Encoding: br`\n\n"
        + header
        + f"\nThe file is {css['size']:,} bytes; its precompressed `.br` sibling is "
        f"{br_size:,} bytes (quality 11).\n\n"
        + table("static-css-br", br_size, ".br file", ["flask", "flask-template"])
        + "\nTargets (issue 4): at least 5× the Flask stack's throughput, and at most 1.05× "
        "the bytes of the best precompressed variant the client accepts.\n"
    )
    flask_br = by.get(("flask-compress", "home-br")) or by.get(("flask", "home-br"))
    flask_gzip = by.get(("flask-compress", "home-gzip")) or by.get(("flask", "home-gzip"))
    references = ["flask-compress", "flask", "flask-template"]
    sections = [
        ("`Accept-Encoding: br`", "home-br", flask_br, "Flask-Compress"),
        ("`Accept-Encoding: gzip`", "home-gzip", flask_gzip, "Flask-Compress"),
        (f"`Accept-Encoding: {BROWSER_ACCEPT}` (a current browser)", "home-browser", flask_br,
         "Flask-Compress br"),
    ]  # fmt: skip
    body = "".join(
        f"\n## {title}\n\n"
        + pairs(scenario)
        + table(scenario, reference.body_bytes if reference else None, label, references)
        for title, scenario, reference, label in sections
    )
    (RESULTS / "compression.md").write_text(
        "# Compression: the home page HTML\n\n"
        + header
        + f"\nThe page is {len(home):,} bytes uncompressed. Three comparisons, "
        "each Shipshape against the stack that does the same work:\n\n"
        "1. **Compression layer, same body** (issue 5's comparison): a bare view sending the "
        "captured page through `CompressionMiddleware` (`shipshape-compression`) against "
        "Flask + Flask-Compress (`flask-compress`); Starlette's `GZipMiddleware` "
        "(`starlette`) is listed too.\n"
        "2. **Production layer, same body**: every Shipshape feature on a bare view "
        "(`shipshape-layer`: headers and CSP nonce, host check, request log, CSRF hook, "
        "compression) against Flask + Flask-Compress + Flask-Talisman (`flask`).\n"
        "3. **Same work**: the example app rendering its home page per request (template, "
        "CSP nonce, CSRF token, new session) against the template repository's stack "
        "rendering the same templates (`flask-template`: Compress, Talisman with nonces, "
        "Flask-WTF, Flask-Assets; no Limiter). Its page is about 500 bytes shorter because "
        "its tags carry no SRI, so its byte ratio is below 1.\n\n"
        "`shipshape-br4` is `shipshape` with brotli at Flask-Compress's level 4 instead of "
        "Shipshape's 3 (`levels.md` has every level).\n"
        + body
        + "\nTargets (issue 5): at least 2× the Flask stack's throughput, at no more than "
        "1.1× Flask-Compress's brotli output.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
