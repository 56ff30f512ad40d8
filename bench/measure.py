"""Measuring: every group's stacks started, each batch of scenarios in turns, what each run cost.

For each set-up and group, :func:`measure_group` starts the group's stacks,
checks each (scenario, stack) with one request (the status the scenario
wants, the bytes, the media type), warms it up, then runs the batch's units
in turns, every other round backwards, so that drift on this shared machine
hits every stack alike. Each run records wrk's figures; a ``cost`` scenario
also records the server's CPU time and Redis's counts, read once the server
has gone quiet before and after the run. After its last round each unit
records the server's resident memory.

A stack that fails (exits, never answers, answers the wrong status, or
nothing under load) is dropped from the group: its output is printed, and
its units carry the reason, which the report shows in place of figures.
"""

from __future__ import annotations

import http.client
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from bench.load import cpu_seconds, rss_bytes, wrk_run
from bench.redis_server import RedisServer, Snapshot, Usage
from bench.stacks import Server, Setup, StackError, launch, ready
from bench.suite import Group, Scenario, environment

ADMISSION_TRIES = 5  # requests to a 1/hour route before one must have been admitted
SETTLE_INTERVAL = 0.15  # seconds with no CPU tick (10 ms) and no Redis read: quiet
SETTLE_POLLS = 40  # at most 6 s of waiting for a server to finish its last requests
#: Words of a Shipshape server's log that mean its Redis store failed (the breaker's line).
STORE_FAILED = "rate-limit store failed"


@dataclass(frozen=True)
class Options:
    seconds: int  # wrk takes whole seconds
    repeats: int
    connections: int
    warmup: int


@dataclass(frozen=True)
class Sample:
    """One wrk run on one stack, and what it cost."""

    rps: float
    p50: float  # seconds
    p99: float
    wire_bytes: float  # per response
    requests: int  # served: wrk's answered requests plus each connection's last one
    wrong_status: int  # answers other than the scenario's status, and failed connects
    cpu: float | None  # seconds of the server's CPU time, for cost scenarios
    redis: Usage | None  # what Redis did, for cost scenarios with Redis


@dataclass
class Unit:
    """One scenario on one stack in one set-up: its runs, or why it has none."""

    setup: str
    scenario: Scenario
    stack: str
    body_bytes: int = 0  # of the answer checked before the runs
    kind: str = ""  # its media type, and its coding when compressed
    samples: list[Sample] = field(default_factory=list)
    rss: int = 0  # the server's resident memory after the runs, bytes
    error: str = ""

    @property
    def rounds(self) -> list[float]:
        return [sample.rps for sample in self.samples]

    @property
    def rps(self) -> float:
        return statistics.median(self.rounds)

    def median(self, name: str) -> float:
        values: list[float] = [getattr(sample, name) for sample in self.samples]
        return statistics.median(values)

    @property
    def served(self) -> int:
        return sum(sample.requests for sample in self.samples)

    @property
    def cpu_rounds(self) -> list[float]:
        """Microseconds of server CPU per request, each round."""
        return [(s.cpu or 0) / s.requests * 1e6 for s in self.samples]

    @property
    def round_trips(self) -> float:
        """Redis round trips per request, over every run."""
        trips = sum(s.redis.round_trips for s in self.samples if s.redis is not None)
        return trips / self.served

    @property
    def redis_calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for sample in self.samples:
            if sample.redis is not None:
                total += sample.redis.calls
        return total


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is the answer itself: wrk does not follow one either."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirects)


def ask(server: Server, scenario: Scenario) -> tuple[int, int, str]:
    """One request: its status, the body's size as sent, and its media type and coding."""
    request = urllib.request.Request(server.url + scenario.path, headers=dict(scenario.headers))  # noqa: S310
    try:
        with OPENER.open(request, timeout=10) as response:
            return _answer(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as exc:  # 4xx and 5xx
        return _answer(exc.code, exc.read(), exc.headers)
    except (OSError, http.client.HTTPException) as exc:
        server.check_running(scenario.key)
        raise server.failed(f"{scenario.key}: {exc!r}") from exc


def _answer(status: int, body: bytes, headers: Message) -> tuple[int, int, str]:
    media_type = headers.get("Content-Type", "").partition(";")[0]
    coding = headers.get("Content-Encoding", "")
    return int(status), len(body), media_type + (f", {coding}" if coding else "")


def check(server: Server, scenario: Scenario) -> tuple[int, str]:
    """The answer's size and kind; fail the stack unless it has the scenario's status.

    A 429 scenario's route admits one request an hour: it is asked until it
    has, and then must refuse.
    """
    if scenario.status == 429:
        for _ in range(ADMISSION_TRIES):
            if ask(server, scenario)[0] == 200:
                break
    status, size, kind = ask(server, scenario)
    if status != scenario.status:
        raise server.failed(f"{scenario.key}: status {status}, not {scenario.status}")
    return size, kind


def settle(server: Server, redis: RedisServer | None) -> tuple[float, Snapshot | None]:
    """The server's CPU time and Redis's counts once both have gone quiet.

    When wrk stops, every connection still has a request out, and a server
    finishes those after wrk has gone (gunicorn's sync worker has up to
    ``connections - 1`` of them waiting in its listen queue). They are this
    stack's work, so they must not be counted in the next stack's run.
    """
    cpu = cpu_seconds(server.process.pid)
    snapshot = redis.snapshot() if redis else None
    for _ in range(SETTLE_POLLS):
        time.sleep(SETTLE_INTERVAL)
        later_cpu = cpu_seconds(server.process.pid)
        later = redis.snapshot() if redis else None
        quiet = later is None or snapshot is None or (later - snapshot).round_trips == 0
        if later_cpu == cpu and quiet:
            break
        cpu, snapshot = later_cpu, later
    return cpu, snapshot


def run_once(server: Server, unit: Unit, redis: RedisServer | None, options: Options) -> Sample:
    scenario = unit.scenario
    before = settle(server, redis) if scenario.cost else None
    run = wrk_run(server, scenario.path, scenario.headers, options.seconds, options.connections,
                  scenario.key)  # fmt: skip
    cpu: float | None = None
    usage: Usage | None = None
    if before is not None:
        (cpu_before, redis_before), (cpu_after, redis_after) = before, settle(server, redis)
        cpu = cpu_after - cpu_before
        if redis_before is not None and redis_after is not None:
            usage = redis_after - redis_before
    # wrk counts non-2xx/3xx answers; a 429 scenario wants nothing else.
    wrong = run.non_2xx_3xx if scenario.status < 400 else run.requests - run.non_2xx_3xx
    return Sample(
        rps=run.rps, p50=run.p50, p99=run.p99, wire_bytes=run.wire_bytes,
        requests=run.requests + options.connections, wrong_status=wrong + run.connect_errors,
        cpu=cpu, redis=usage,
    )  # fmt: skip


def fail(units: list[Unit], exc: StackError) -> None:
    print(f"FAILED ({units[0].setup}) {exc}", file=sys.stderr)
    for unit in units:
        if unit.stack == exc.stack and not unit.error:
            unit.error = exc.reason


def measure_batch(
    units: list[Unit], servers: dict[str, Server], redis: RedisServer | None, options: Options
) -> None:
    """Every unit once a round, in turns; every other round backwards."""
    ready = []
    for unit in units:
        if unit.error:
            continue
        server = servers[unit.stack]
        try:
            unit.body_bytes, unit.kind = check(server, unit.scenario)
            wrk_run(server, unit.scenario.path, unit.scenario.headers, options.warmup,
                    options.connections, unit.scenario.key)  # fmt: skip
        except StackError as exc:
            fail(units, exc)
        else:
            ready.append(unit)
    for round_number in range(options.repeats):
        for unit in ready if round_number % 2 == 0 else ready[::-1]:
            if unit.error:
                continue
            try:
                unit.samples.append(run_once(servers[unit.stack], unit, redis, options))
            except StackError as exc:
                fail(units, exc)
    for unit in ready:
        wrong = sum(sample.wrong_status for sample in unit.samples)
        if wrong and not unit.error:  # the figures would be of something else
            unit.error = (
                f"{wrong:,} of {unit.served:,} answers were not {unit.scenario.status} "
                "(or failed to connect)"
            )
        if not unit.error:
            unit.rss = rss_bytes(servers[unit.stack].process.pid)
            print(f"{unit.setup:<7} {unit.scenario.key:<20} {unit.stack:<22} "
                  f"{unit.rps:>9,.0f} req/s {unit.median('p99') * 1e3:>7.1f} ms p99")  # fmt: skip


def measure_group(group: Group, setup: Setup, run_dir: Path, options: Options) -> list[Unit]:
    """The group's units; whatever goes wrong (its environment, a stack) is recorded in
    the units it touched, so the run goes on and the report shows it."""
    units = [Unit(setup.name, scenario, stack) for scenario in group.scenarios
             for stack in scenario.stacks]  # fmt: skip
    try:
        with environment(group, run_dir, setup):
            servers = start_all(group, setup, run_dir, units)
            try:
                batches: dict[str, list[Unit]] = {}
                for unit in units:
                    batches.setdefault(unit.scenario.rounds_with, []).append(unit)
                for batch in batches.values():
                    measure_batch(batch, servers, group.redis, options)
            finally:
                for server in servers.values():
                    server.stop()
            for server in servers.values():
                if STORE_FAILED in server.log.read_text(errors="replace"):
                    # It counted in its own memory for a while: not the store's figures.
                    fail(units, server.failed("its Redis store failed during the run"))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported, and the run goes on
        reason = f"{group.name} could not run: {type(exc).__name__}: {exc}"
        print(f"FAILED ({setup.name}) {reason}", file=sys.stderr)
        for unit in units:
            unit.error = unit.error or reason
    return units


def start_all(group: Group, setup: Setup, run_dir: Path, units: list[Unit]) -> dict[str, Server]:
    """Every stack of the group, started at once and then waited for."""
    launched = [launch(stack, run_dir, setup, environ=group.environ) for stack in group.stacks]
    servers: dict[str, Server] = {}
    for server in launched:
        try:
            servers[server.stack] = ready(server)
        except StackError as exc:
            fail(units, exc)
        except BaseException:
            for other in launched:
                other.stop()
            raise
    return servers
