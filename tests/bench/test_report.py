"""The benchmark's own logic: reading wrk, judging targets, and reporting failures."""

from __future__ import annotations

import math

import pytest

from bench.load import parse_wrk
from bench.measure import Options, Sample, Unit
from bench.report import ceilings_table, report, targets_table
from bench.suite import Scenario, Target

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8765/nonexistent
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.01ms    4.90ms  18.51ms   77.64%
    Req/Sec   731.20    554.88     1.56k    70.00%
  Latency Distribution
     50%  812.00us
     75%   10.32ms
     90%   14.80ms
     99%    1.20s
  728 requests in 1.00s, 369.69KB read
  Socket errors: connect 3, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 728
Requests/sec:    725.61
Transfer/sec:    368.47KB
"""

PAGE = Scenario("S1 br", "home page, br", "/", {}, ("shipshape", "flask-template"))
OPTIONS = {"pinned": Options(seconds=2, repeats=2, connections=32, warmup=1)}


def sample(rps: float, cpu: float | None = None) -> Sample:
    return Sample(rps=rps, p50=0.001, p99=0.01, wire_bytes=4000, requests=1000,
                  wrong_status=0, cpu=cpu, redis=None)  # fmt: skip


def test_parse_wrk_reads_every_figure() -> None:
    run = parse_wrk(WRK_OUTPUT)
    assert run is not None
    assert run.rps == 725.61
    assert run.requests == 728
    assert run.non_2xx_3xx == 728
    assert run.connect_errors == 3
    assert run.p50 == pytest.approx(812e-6)
    assert run.p99 == pytest.approx(1.2)
    assert run.wire_bytes == pytest.approx(368.47 * 1024 / 725.61)


def test_parse_wrk_without_a_latency_line_gives_nan_not_zero() -> None:
    run = parse_wrk(WRK_OUTPUT.replace("     99%    1.20s\n", ""))
    assert run is not None
    assert math.isnan(run.p99)


def test_parse_wrk_of_a_failed_run_is_none() -> None:
    assert parse_wrk("unable to connect to 127.0.0.1:9 Connection refused\n") is None


@pytest.mark.parametrize(
    ("target", "value", "met", "wanted"),
    [
        (Target("S1 br", "rps", ("S1 br", "a"), ("S1 br", "b"), least=3), 3.0, True, "≥ 3×"),
        (Target("S1 br", "rps", ("S1 br", "a"), ("S1 br", "b"), least=3), 2.99, False, "≥ 3×"),
        (Target("S4", "bytes", ("S4", "a"), ("S4", "b"), most=0.3), 0.31, False, "≤ 0.3×"),
        (Target("S5", "round trips", ("S5", "a"), None, least=1, most=1), 1.0, True, "= 1"),
        (Target("S5", "round trips", ("S5", "a"), None, least=1, most=1), 1.5, False, "= 1"),
        # Served requests are estimated (wrk's count plus those in flight): read to 2 places.
        (Target("S5", "round trips", ("S5", "a"), None, least=1, most=1), 0.998, True, "= 1"),
        (Target("S5", "round trips", ("S5", "a"), None, least=1, most=1), 1.02, False, "= 1"),
    ],
)
def test_target_judges_the_value(target: Target, value: float, met: bool, wanted: str) -> None:
    assert target.met(value) is met
    assert target.wanted == wanted


def test_targets_are_read_round_by_round() -> None:
    mine = Unit("pinned", PAGE, "shipshape", samples=[sample(300), sample(900)])
    peer = Unit("pinned", PAGE, "flask-template", samples=[sample(100), sample(450)])
    keyed = {(u.setup, u.scenario.key, u.stack): u for u in (mine, peer)}
    target = Target("S1 br", "rps", ("S1 br", "shipshape"), ("S1 br", "flask-template"), least=3)
    table = targets_table([target], keyed)
    # Round 1 is 3.00, round 2 is 2.00: the median of the ratios, not the ratio of medians.
    assert "2.50× (2.00–3.00)" in table
    assert table.rstrip().endswith("| **no** |")


def test_a_failed_stack_shows_its_error_never_a_zero() -> None:
    mine = Unit("pinned", PAGE, "shipshape", samples=[sample(300), sample(310)])
    failed = Unit("pinned", PAGE, "flask-template", error="exited with status 3 during S1 br")
    target = Target("S1 br", "rps", ("S1 br", "shipshape"), ("S1 br", "flask-template"), least=3)
    text = report(
        [mine, failed], [target], OPTIONS, when="now", minutes=1, command="python -m bench.run",
        extra_versions=[], appendix="",
    )  # fmt: skip
    assert "| `flask-template` | **failed**: exited with status 3 during S1 br |" in text
    # The target names the failed peer, and gives no verdict from the figures it lacks.
    assert (
        "| S1 br | `shipshape` req/s ≥ 3× `flask-template` "
        "| `flask-template` failed: exited with status 3 during S1 br | – | incomplete |"
    ) in text
    failed_mine = Unit("pinned", PAGE, "shipshape", error="did not answer within 30 s")
    keyed = {("pinned", "S1 br", "shipshape"): failed_mine}
    assert "failed: did not answer within 30 s" in targets_table([target], keyed)


def test_a_ceiling_is_read_round_by_round_and_reported_with_no_verdict() -> None:
    api = Scenario("S7 api SQLite", "list", "/api/things", {}, ("shipshape", "flask-things"))
    bare = Unit("pinned", api, "quart-things", samples=[sample(600), sample(500)])
    peer = Unit("pinned", api, "flask-things", samples=[sample(200), sample(500)])
    keyed = {(u.setup, u.scenario.key, u.stack): u for u in (bare, peer)}
    ceiling = Target("S7 api SQLite", "rps", (api.key, "quart-things"), (api.key, "flask-things"))
    table = ceilings_table([ceiling], keyed)
    # Rounds of 3.00 and 1.00: their median; the shared set-up has no figure.
    assert "| S7 api SQLite | `quart-things` req/s × `flask-things` | 2.00× (1.00–3.00) | – |" in (
        table
    )
    text = report(
        [bare, peer], [], OPTIONS, when="now", minutes=1, command="python -m bench.run",
        extra_versions=[], appendix="", ceilings=[ceiling],
    )  # fmt: skip
    assert "## Ceilings" in text and table in text
    assert "## Ceilings" not in report(
        [bare, peer], [], OPTIONS, when="now", minutes=1, command="python -m bench.run",
        extra_versions=[], appendix="",
    )  # fmt: skip
