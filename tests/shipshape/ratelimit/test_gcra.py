from __future__ import annotations

import pytest

from shipshape.config import RateLimit
from shipshape.ratelimit.gcra import decide

PER_SECOND = RateLimit(2, 1)
PER_MINUTE = RateLimit(5, 60)


def run(times: list[float], limits: list[RateLimit]) -> list[bool]:
    tats = [times[0]] * len(limits)
    allowed = []
    for now in times:
        decision, tats = decide(tats, limits, now)
        allowed.append(decision.allowed)
    return allowed


#: (request times, limits, which are allowed): run by decide() here and by both stores
#: in test_stores.py.
CONFORMANCE = [
    ([0, 0, 0], [PER_SECOND], [True, True, False]),
    ([0, 0, 0.5], [PER_SECOND], [True, True, True]),  # one slot back after 0.5 s
    ([0, 0, 1, 1, 2, 2], [PER_SECOND], [True] * 6),
    ([0, 0, 1, 1, 2, 2], [PER_SECOND, PER_MINUTE], [True] * 5 + [False]),
    ([0, 0.1, 0.2, 0.3, 0.4, 0.5], [PER_SECOND, PER_MINUTE],
     [True, True, False, False, False, True]),
]  # fmt: skip


@pytest.mark.parametrize(("times", "limits", "expected"), CONFORMANCE)
def test_conformance(times: list[float], limits: list[RateLimit], expected: list[bool]) -> None:
    assert run(times, limits) == expected


def test_a_refused_request_consumes_no_limit() -> None:
    # Ten requests a second for a minute. 5/minute allows a burst of 5, then
    # one every 12 s: 9 in all. Were refused requests charged to the minute
    # limit, its TAT would run away and only the first 5 would ever pass.
    tats = [0.0, 0.0]
    passed = 0
    for step in range(600):
        decision, tats = decide(tats, [PER_SECOND, PER_MINUTE], step * 0.1)
        passed += decision.allowed
    assert passed == 9


def test_decision_reports_the_tightest_limit() -> None:
    tats = [0.0, 0.0]
    decision, tats = decide(tats, [PER_SECOND, PER_MINUTE], 0.0)
    assert (decision.limit, decision.remaining) == (PER_SECOND, 1)
    decision, tats = decide(tats, [PER_SECOND, PER_MINUTE], 0.0)
    assert (decision.limit, decision.remaining, decision.reset) == (PER_SECOND, 0, 1)
    refused, unchanged = decide(tats, [PER_SECOND, PER_MINUTE], 0.0)
    assert not refused.allowed and refused.retry_after == 1 and refused.remaining == 0
    assert unchanged == tats


def test_the_headers_describe_the_limit_closest_to_running_out_as_a_share() -> None:
    # 2/second;5/minute, a request every 0.6 s: the second's bucket has 1 of 2 left
    # after each, while the minute's falls to 2 of 5 (a smaller share) on the third.
    tats = [0.0, 0.0]
    reported = []
    for step in range(5):
        decision, tats = decide(tats, [PER_SECOND, PER_MINUTE], step * 0.6)
        assert decision.allowed
        reported.append((decision.limit, decision.remaining))
    assert reported == [
        (PER_SECOND, 1), (PER_SECOND, 1), (PER_MINUTE, 2), (PER_MINUTE, 1), (PER_MINUTE, 0),
    ]  # fmt: skip


def test_a_refusal_describes_the_limit_its_retry_after_comes_from() -> None:
    per_minute = RateLimit(4, 60)
    tats = [0.0, 0.0]
    for now in (0.0, 0.0, 1.0, 1.0):
        decision, tats = decide(tats, [PER_SECOND, per_minute], now)
        assert decision.allowed
    refused, _ = decide(tats, [PER_SECOND, per_minute], 1.0)
    assert not refused.allowed and refused.retry_after == 14
    # Both limits refuse (each has 0 left), but only the minute's wait is 14 s.
    assert (refused.limit, refused.remaining, refused.reset) == (per_minute, 0, 59)


def test_retry_after_is_the_longest_wait() -> None:
    tats = [0.0, 0.0]
    for now in (0, 1, 2, 3, 4):
        _, tats = decide(tats, [PER_SECOND, PER_MINUTE], float(now))
    refused, _ = decide(tats, [PER_SECOND, PER_MINUTE], 5.0)
    assert not refused.allowed
    assert refused.retry_after == 7  # the minute limit's next slot opens at 12 s


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="one TAT per limit"):
        decide([], [], 0.0)
    with pytest.raises(ValueError, match="one TAT per limit"):
        decide([0.0], [PER_SECOND, PER_MINUTE], 0.0)
