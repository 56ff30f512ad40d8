"""Measuring the rate-limit scenarios: the stacks in turns, and what each run cost.

Like ``bench.run.measure_round_robin``, with two more readings around each
wrk run: the server's CPU time from ``/proc`` and Redis's ``INFO``, both
taken once the server has gone quiet, and a check that every answer had the
scenario's status (a 429 scenario wants nothing but 429s).
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from bench.load import cpu_seconds, wrk_run
from bench.peers.common import REDIS_URL_KEY
from bench.ratelimit.redis_server import RedisServer, Snapshot
from bench.ratelimit.scenarios import (
    ADMITTED,
    EXAMPLES,
    PAGE,
    PEERS,
    REFUSED_HTML,
    REFUSED_JSON,
    Measured,
    Outcome,
    Run,
    Scenario,
)
from bench.stacks import Server, StackError, report_failure, start

ADMISSION_TRIES = 5  # requests to a 1/hour route before one must have been admitted
SETTLE_INTERVAL = 0.15  # seconds with no CPU tick (10 ms) and no Redis read: quiet
SETTLE_POLLS = 40  # at most 6 s of waiting for a server to finish its last requests
#: Words of a Shipshape server's log that mean its Redis store failed (the breaker's line).
STORE_FAILED = "rate-limit store failed"


@dataclass(frozen=True)
class Answer:
    status: int
    size: int  # bytes of body, as sent (compressed or not)
    media_type: str
    encoding: str


def ask(server: Server, scenario: Scenario) -> Answer:
    url = server.url + scenario.path
    request = urllib.request.Request(url, headers=dict(scenario.headers))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return _answer(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as exc:  # 4xx and 5xx
        return _answer(exc.code, exc.read(), exc.headers)
    except OSError as exc:
        server.check_running(scenario.name)
        raise server.failed(f"{scenario.name}: {exc}") from exc


def _answer(status: int, body: bytes, headers: Message) -> Answer:
    media_type = headers.get("Content-Type", "").partition(";")[0]
    return Answer(int(status), len(body), media_type, headers.get("Content-Encoding", ""))


def check_answer(
    server: Server, scenario: Scenario, admitted: set[tuple[str, str]]
) -> tuple[int, str]:
    """The answer's size and type; fail the stack unless it has the scenario's status.

    A 429 scenario's route admits one request an hour: it is asked until it
    has (``admitted`` holds the routes that have), and then must refuse.
    """
    if scenario.status == 429 and (server.stack, scenario.path) not in admitted:
        refused = 0
        while refused < ADMISSION_TRIES and ask(server, scenario).status != 200:
            refused += 1
        if refused:
            # The route had never been asked: a store that refuses its first request is wrong.
            print(
                f"note: {server.stack} refused {refused} request(s) to {scenario.path} "
                "before it admitted the first of the hour"
            )
        admitted.add((server.stack, scenario.path))
    answer = ask(server, scenario)
    if answer.status != scenario.status:
        raise server.failed(f"{scenario.name}: status {answer.status}, not {scenario.status}")
    kind = answer.media_type + (f", {answer.encoding}" if answer.encoding else "")
    return answer.size, kind


def settle(server: Server, redis: RedisServer) -> tuple[float, Snapshot]:
    """The server's CPU time and Redis's counts once both have gone quiet.

    When wrk stops, every connection still has a request out, and a server
    finishes those after wrk has gone (gunicorn's sync worker has up to
    ``connections - 1`` of them waiting in its listen queue). They are this
    stack's work, so they must not be counted in the next stack's run.
    """
    cpu, snapshot = cpu_seconds(server.process.pid), redis.snapshot()
    for _ in range(SETTLE_POLLS):
        time.sleep(SETTLE_INTERVAL)
        later_cpu, later = cpu_seconds(server.process.pid), redis.snapshot()
        if later_cpu == cpu and (later - snapshot).round_trips == 0:
            break
        cpu, snapshot = later_cpu, later
    return cpu, snapshot


def measure_once(
    server: Server, scenario: Scenario, redis: RedisServer, args: argparse.Namespace
) -> Run:
    cpu_before, redis_before = settle(server, redis)
    run = wrk_run(
        server, scenario.path, scenario.headers, args.seconds, args.connections, scenario.name
    )
    cpu_after, redis_after = settle(server, redis)
    # wrk counts the answers it got; the server also served each connection's last request.
    served = run.requests + args.connections
    # wrk counts non-2xx/3xx answers; a 429 scenario wants nothing else.
    wrong = run.non_2xx_3xx if scenario.status < 400 else run.requests - run.non_2xx_3xx
    return Run(
        rps=run.rps,
        requests=served,
        wrong_status=wrong + run.connect_errors,
        cpu=cpu_after - cpu_before,
        redis=redis_after - redis_before,
    )


def measure_round_robin(
    servers: Mapping[str, Server],
    units: Sequence[tuple[str, Scenario]],
    redis: RedisServer,
    args: argparse.Namespace,
    failed: dict[str, str],
) -> list[Measured]:
    """Every (stack, scenario) once a round, in turns; see ``bench.run.measure_round_robin``."""
    measured: dict[tuple[str, str], Measured] = {}
    admitted: set[tuple[str, str]] = set()
    for stack, scenario in units:
        if stack in failed:
            continue
        server = servers[stack]
        try:
            size, kind = check_answer(server, scenario, admitted)
            wrk_run(server, scenario.path, scenario.headers, 1, args.connections, scenario.name)
        except StackError as exc:
            report_failure(exc, failed)
        else:
            measured[stack, scenario.name] = Measured(stack, scenario, size, kind)
    order = list(measured.values())
    for round_number in range(args.repeats):
        for result in order if round_number % 2 == 0 else order[::-1]:
            if result.stack in failed:
                continue
            try:
                result.runs.append(
                    measure_once(servers[result.stack], result.scenario, redis, args)
                )
            except StackError as exc:
                report_failure(exc, failed)
    results = [result for result in order if result.stack not in failed]
    for result in results:
        print(
            f"{result.stack:<26} {result.scenario.name:<30} {result.rps:>8,.0f} req/s "
            f"{statistics.median(result.cpu_rounds):>7.0f} µs CPU/request "
            f"{result.round_trips:>5.2f} Redis round trips/request"
        )
    return results


def measure(args: argparse.Namespace, run_dir: Path) -> Outcome:
    """Start Redis and every stack, run S5 then S6, stop them all."""
    outcome = Outcome()
    servers: dict[str, Server] = {}
    with RedisServer() as redis:
        outcome.redis_version = redis.version()
        try:
            for stack in [*PEERS, *EXAMPLES]:
                try:
                    servers[stack] = start(stack, run_dir, environ={REDIS_URL_KEY: redis.url})
                except StackError as exc:
                    report_failure(exc, outcome.failed)
            outcome.results += measure_round_robin(
                servers, [(stack, ADMITTED) for stack in PEERS], redis, args, outcome.failed
            )
            units = [(s, sc) for s in EXAMPLES for sc in (PAGE, REFUSED_HTML, REFUSED_JSON)]
            outcome.results += measure_round_robin(servers, units, redis, args, outcome.failed)
        finally:
            for server in servers.values():
                server.stop()
    for name, server in servers.items():
        count = server.log.read_text(errors="replace").count(STORE_FAILED)
        if count:
            outcome.outages[name] = count
    return outcome
