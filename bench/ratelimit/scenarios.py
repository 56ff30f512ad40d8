"""What the rate-limit scenarios ask each stack, and what one measured run records."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.peers.shipshape_ratelimit import REFUSED_PATH
from bench.ratelimit.redis_server import Usage

# What current Chrome sends for a page (Accept) and what current browsers accept (encodings).
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate, br, zstd",
}
API_CLIENT = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate, br, zstd"}


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    headers: Mapping[str, str]
    status: int  # what every measured request must be answered


ADMITTED = Scenario("admitted", "/", {"Accept": "application/json"}, 200)
PAGE = Scenario("home page, 200", "/", BROWSER, 200)
REFUSED_HTML = Scenario("429, browser Accept", REFUSED_PATH, BROWSER, 429)
REFUSED_JSON = Scenario("429, Accept: application/json", REFUSED_PATH, API_CLIENT, 429)

SHIPSHAPE = "shipshape-ratelimit"
#: S5's limiters, each with the same app without it: the difference is the limiter's own cost.
BASELINES = {
    "quart-rate-limiter": "quart-unlimited",
    SHIPSHAPE: "shipshape-exempt",
    "flask-limiter": "flask-unlimited",
    "flask-limiter-bare": "flask-unlimited",
}
#: S5's stacks in the order of a round: Shipshape next to quart-rate-limiter (the issue's
#: comparison) and to its own baseline, each peer next to its baseline.
PEERS = [
    "quart-unlimited",
    "quart-rate-limiter",
    SHIPSHAPE,
    "shipshape-exempt",
    "flask-unlimited",
    "flask-limiter",
    "flask-limiter-bare",
]
#: S6's stacks: the example app plus a refusing route, over Redis and over memory.
EXAMPLES = ["shipshape-example-redis", "shipshape-example-memory"]
#: The issue's targets.
TARGET_RATIO = 1.5  # × quart-rate-limiter's requests/second
TARGET_ROUND_TRIPS = 1  # Redis round trips per admitted request
TARGET_REFUSAL_CPU = 0.2  # a 429's server CPU per request, × a served page's


@dataclass(frozen=True)
class Run:
    """One measured wrk run and what it cost the server and Redis."""

    rps: float
    requests: int  # served: wrk's answered requests plus each connection's last one
    wrong_status: int  # answers other than the scenario's status, and failed connects
    cpu: float  # seconds of the server's CPU time
    redis: Usage  # what Redis did during the run


@dataclass
class Measured:
    stack: str
    scenario: Scenario
    body_bytes: int  # of the answer checked before the runs
    kind: str  # its media type, and its coding when compressed
    runs: list[Run] = field(default_factory=list)

    @property
    def rounds(self) -> list[float]:
        return [run.rps for run in self.runs]

    @property
    def rps(self) -> float:
        return statistics.median(self.rounds)

    @property
    def cpu_rounds(self) -> list[float]:
        """Microseconds of server CPU per request, each round."""
        return [run.cpu / run.requests * 1e6 for run in self.runs]

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs)

    @property
    def wrong_status(self) -> int:
        return sum(run.wrong_status for run in self.runs)

    def per_request(self, count: float) -> float:
        return count / self.requests

    @property
    def calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for run in self.runs:
            total += run.redis.calls
        return total

    @property
    def round_trips(self) -> float:
        return self.per_request(sum(run.redis.round_trips for run in self.runs))

    @property
    def connections(self) -> int:
        """Redis connections the stack opened while measured."""
        return sum(run.redis.opened for run in self.runs)

    @property
    def redis_cpu(self) -> float:
        """Microseconds of Redis's CPU per request."""
        return self.per_request(sum(run.redis.cpu for run in self.runs)) * 1e6


@dataclass
class Outcome:
    """A whole run: the results, and what went wrong."""

    results: list[Measured] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # stack: why it has no results
    outages: dict[str, int] = field(default_factory=dict)  # stack: store failures it logged
    redis_version: str = ""
