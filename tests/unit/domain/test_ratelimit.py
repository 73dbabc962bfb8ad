"""The request rate (service/domain/ratelimit.py): GCRA over a minute, checked against a fake
clock and store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.domain.ratelimit import PERIOD_S, RateState, interval, period, state

# --- request rate (GCRA) --------------------------------------------------------------------


T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeRates:
    """The statement of ``db/ratelimits.py: take`` over a dict, with a clock the test moves."""

    def __init__(self) -> None:
        self.tat: dict[str, datetime] = {}
        self.now = T0

    def spend(self, client: str, limit: int) -> RateState:
        step = interval(limit)
        ahead = max(self.tat.get(client, self.now), self.now) + step
        allowed = ahead <= self.now + period()
        if allowed:
            self.tat[client] = ahead
        return state(limit, self.tat[client], self.now, allowed=allowed)


def test_an_idle_client_may_spend_its_whole_minute_at_once_then_waits() -> None:
    # Given a client allowed 6 requests per minute, idle so far
    rates = FakeRates()

    # When it sends 7 at once
    answers = [rates.spend("a", 6) for _ in range(7)]

    # Then 6 pass, counting down, and the 7th is told to come back in 10 s
    assert [a.allowed for a in answers] == [True] * 6 + [False]
    assert [a.remaining for a in answers] == [5, 4, 3, 2, 1, 0, 0]
    assert answers[0].reset_s == 10
    assert answers[5].reset_s == PERIOD_S
    assert answers[6].retry_after_s == 10


def test_after_retry_after_one_request_passes_and_the_next_waits_again() -> None:
    rates = FakeRates()
    for _ in range(6):
        rates.spend("a", 6)
    refused = rates.spend("a", 6)
    assert refused.retry_after_s is not None

    # When the client waits exactly as long as it was told
    rates.now += timedelta(seconds=refused.retry_after_s)

    # Then one request passes, and the one right after it is refused
    assert rates.spend("a", 6).allowed
    assert not rates.spend("a", 6).allowed


def test_clients_have_budgets_of_their_own() -> None:
    rates = FakeRates()
    for _ in range(3):
        rates.spend("a", 3)

    assert not rates.spend("a", 3).allowed
    assert rates.spend("b", 3).allowed


def test_a_minute_of_idleness_refills_the_whole_quota() -> None:
    rates = FakeRates()
    for _ in range(10):
        rates.spend("a", 10)
    rates.now += period()

    assert rates.spend("a", 10).remaining == 9


@given(
    limit=st.integers(min_value=1, max_value=1000),
    gaps_ms=st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=300),
)
def test_no_span_of_time_lets_more_through_than_a_full_bucket_and_its_refill(
    limit: int, gaps_ms: list[int]
) -> None:
    # Given requests arriving at any spacing
    rates = FakeRates()
    passed: list[datetime] = []
    for gap in gaps_ms:
        rates.now += timedelta(milliseconds=gap)
        answer = rates.spend("a", limit)
        # Then what the client is told is consistent with the answer
        assert 0 <= answer.remaining <= limit
        assert answer.allowed == (answer.retry_after_s is None)
        if answer.allowed:
            passed.append(rates.now)
    # and between any two requests that passed, at most a full bucket plus what refilled
    # meanwhile passed: limit * (1 + s / 60) over s seconds (one interval, as stored)
    step = interval(limit).total_seconds()
    for i, first in enumerate(passed):
        for j in range(i, len(passed)):
            span = (passed[j] - first).total_seconds()
            assert j - i + 1 <= (span + PERIOD_S) / step + 1e-6
    # and never more than the limit at one instant
    assert max((passed.count(t) for t in set(passed)), default=0) <= limit
