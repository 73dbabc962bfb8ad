"""The breaker of a site family and identity (service/domain/breaker.py): every move, and
properties over any sequence of throttles, successes and starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.breaker import Admission, Breaker, BreakerState, Policy

T0 = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = Policy(
    threshold=3,
    window=timedelta(minutes=10),
    cooldown=timedelta(minutes=2),
    max_cooldown=timedelta(minutes=30),
)


def throttles(
    n: int, *, every: timedelta = timedelta(seconds=1), start: Breaker | None = None
) -> Breaker:
    breaker = start or Breaker()
    for i in range(n):
        breaker = breaker.throttled(POLICY, T0 + i * every, "rate_limited: HTTP Error 429")
    return breaker


def test_it_opens_after_threshold_throttles_in_a_row_and_holds_until_retry_at() -> None:
    # Given two throttles: still closed, counting
    two = throttles(2)
    assert (two.state, two.failures) == (BreakerState.CLOSED, 2)
    assert two.admit(T0, trial_running=False) is Admission.GO

    # When the third comes
    opened = throttles(3)

    # Then it is open for the first cooling period, and jobs cool until then
    assert opened.state is BreakerState.OPEN
    assert opened.retry_at == T0 + 2 * timedelta(seconds=1) + POLICY.cooldown
    assert opened.admit(opened.retry_at - timedelta(seconds=1), trial_running=False) is (
        Admission.COOL
    )
    assert opened.admit(opened.retry_at, trial_running=False) is Admission.TRIAL


def test_throttles_further_apart_than_the_window_start_a_new_count() -> None:
    spread = throttles(5, every=POLICY.window + timedelta(seconds=1))

    assert (spread.state, spread.failures) == (BreakerState.CLOSED, 1)


def test_a_success_between_throttles_starts_the_count_again() -> None:
    breaker = throttles(2).succeeded()
    breaker = breaker.throttled(POLICY, T0 + timedelta(seconds=5), "429")

    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 1)


def test_half_open_lets_one_trial_through_and_its_success_closes() -> None:
    opened = throttles(3)
    trial = opened.trial()

    assert trial.state is BreakerState.HALF_OPEN
    assert trial.admit(T0 + timedelta(hours=1), trial_running=True) is Admission.COOL
    # a trial that ended without a verdict (its worker died, another error) makes room
    assert trial.admit(T0 + timedelta(hours=1), trial_running=False) is Admission.TRIAL
    assert trial.succeeded() == Breaker()


def test_a_throttled_trial_opens_again_for_twice_as_long_up_to_the_cap() -> None:
    breaker = throttles(3)
    periods = []
    for n in range(8):
        now = T0 + timedelta(hours=n)
        breaker = breaker.trial().throttled(POLICY, now, "429")
        assert breaker.state is BreakerState.OPEN
        assert breaker.retry_at is not None
        periods.append(breaker.retry_at - now)

    assert periods[:3] == [timedelta(minutes=4), timedelta(minutes=8), timedelta(minutes=16)]
    assert max(periods) == POLICY.max_cooldown


def test_a_throttle_of_an_attempt_begun_before_the_opening_does_not_extend_it() -> None:
    opened = throttles(3)
    late = opened.throttled(POLICY, T0 + timedelta(seconds=30), "429")

    assert (late.state, late.retry_at, late.failures) == (BreakerState.OPEN, opened.retry_at, 4)


@pytest.mark.parametrize("opens", [0, 1, 2, 40])
def test_cooling_grows_and_stays_within_bounds(opens: int) -> None:
    assert POLICY.cooldown <= POLICY.cooling(opens) <= POLICY.max_cooldown


# --- properties over any history ------------------------------------------------------------------

steps = st.lists(
    st.tuples(st.sampled_from(["throttle", "success", "start"]), st.integers(0, 900)),
    max_size=60,
)


@given(steps)
def test_any_history_keeps_the_invariants(history: list[tuple[str, int]]) -> None:
    breaker, now = Breaker(), T0
    for step, seconds in history:
        now += timedelta(seconds=seconds)
        before = breaker
        if step == "throttle":
            breaker = breaker.throttled(POLICY, now, "429")
        elif step == "success":
            breaker = breaker.succeeded()
        elif breaker.admit(now, trial_running=False) is Admission.TRIAL:
            breaker = breaker.trial()
        # Only throttles open a breaker, and only a success closes an open one.
        if breaker.state is BreakerState.OPEN and before.state is not BreakerState.OPEN:
            assert step == "throttle"
        if before.state is not BreakerState.CLOSED and breaker.state is BreakerState.CLOSED:
            assert step == "success"
        # An open breaker always says until when, within the cooling bounds.
        if breaker.state is BreakerState.OPEN:
            assert breaker.retry_at is not None
            assert breaker.retry_at - now <= POLICY.max_cooldown
        # A closed breaker never holds anyone back, and counts below the threshold.
        if breaker.state is BreakerState.CLOSED:
            assert breaker.admit(now, trial_running=True) is Admission.GO
            assert breaker.failures < POLICY.threshold
        # Only one job at a time goes through while it is not closed.
        if breaker.state is BreakerState.HALF_OPEN:
            assert breaker.admit(now, trial_running=True) is Admission.COOL


@given(st.integers(1, 50), st.integers(0, 59))
def test_threshold_throttles_within_the_window_always_open(threshold: int, gap: int) -> None:
    policy = Policy(threshold=threshold, window=timedelta(minutes=threshold))
    breaker = Breaker()
    for i in range(threshold):
        breaker = breaker.throttled(policy, T0 + timedelta(seconds=gap * i), "429")
    assert breaker.state is BreakerState.OPEN
