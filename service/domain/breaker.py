"""A circuit breaker per site family and identity: the pure state machine.

A site that throttles us (HTTP 429, a bot check, "try again later") counts what it
does to one identity (the client's cookies for that site, or none: a guest), since
rate limits follow accounts and addresses, not host names. After ``threshold``
throttled attempts in a row, none further apart than ``window``, the breaker
*opens*: the site's waiting jobs for that identity are held (``site_cooling``)
until ``retry_at``, spending no attempt. Then one job goes through (*half-open*);
its success closes the breaker, another throttle opens it again for longer.

The database keeps the state (``db/sites.py``); this module decides every move, so
one exhaustive test covers them all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

#: The identity of an attempt made without cookies.
GUEST = "guest"


class BreakerState(StrEnum):
    """Where a site's breaker stands for one identity."""

    #: Jobs start freely; throttles are counted.
    CLOSED = "closed"
    #: Jobs wait (``site_cooling``) until ``retry_at``.
    OPEN = "open"
    #: One job (the trial) runs; the others wait for its outcome.
    HALF_OPEN = "half_open"


class Admission(StrEnum):
    """What the breaker says to a job that wants to start."""

    GO = "go"
    #: Start, as the one trial of a half-open breaker.
    TRIAL = "trial"
    #: Wait, held ``site_cooling``.
    COOL = "cool"


@dataclass(frozen=True)
class Policy:
    """When a breaker opens and for how long (``HAUL_BREAKER_*``)."""

    #: Throttled attempts in a row that open the breaker.
    threshold: int = 3
    #: A throttle further than this from the first of the run starts a new count.
    window: timedelta = timedelta(minutes=10)
    #: The first cooling period; each reopening without a success doubles it.
    cooldown: timedelta = timedelta(minutes=2)
    #: The longest cooling period.
    max_cooldown: timedelta = timedelta(hours=6)

    def cooling(self, opens: int) -> timedelta:
        """The cooling period after the ``opens``-th opening in a row (1, 2, …)."""
        factor = 1 << min(max(opens, 1) - 1, 30)
        return min(self.cooldown * factor, self.max_cooldown)


@dataclass(frozen=True)
class Breaker:
    """One breaker's state, as its row holds it."""

    state: BreakerState = BreakerState.CLOSED
    #: Throttled attempts in the current run (reset by a success).
    failures: int = 0
    #: When the current run's first throttle happened.
    window_started_at: datetime | None = None
    #: Openings since the last success: how long the next cooling lasts.
    opens: int = 0
    #: When an open breaker lets its trial through.
    retry_at: datetime | None = None
    #: The last throttle's error, for operators.
    reason: str | None = None

    def throttled(self, policy: Policy, now: datetime, reason: str) -> Breaker:
        """An attempt was throttled (rate limit, bot check)."""
        if self.state is BreakerState.HALF_OPEN:
            return self._open(policy, now, reason, failures=self.failures + 1)
        if self.state is BreakerState.OPEN:
            # An attempt that started before the breaker opened: counted, cools no longer.
            return replace(self, failures=self.failures + 1, reason=reason)
        fresh = self.window_started_at is None or now - self.window_started_at > policy.window
        failures = 1 if fresh or self.failures == 0 else self.failures + 1
        started = now if fresh or self.failures == 0 else self.window_started_at
        if failures >= policy.threshold:
            return self._open(policy, now, reason, failures=failures, started=started)
        return replace(self, failures=failures, window_started_at=started, reason=reason)

    def _open(
        self,
        policy: Policy,
        now: datetime,
        reason: str,
        *,
        failures: int,
        started: datetime | None = None,
    ) -> Breaker:
        opens = self.opens + 1
        return Breaker(
            state=BreakerState.OPEN,
            failures=failures,
            window_started_at=started or self.window_started_at,
            opens=opens,
            retry_at=now + policy.cooling(opens),
            reason=reason,
        )

    def succeeded(self) -> Breaker:
        """An attempt succeeded: the site answers this identity again."""
        return Breaker()

    def admit(self, now: datetime, *, trial_running: bool) -> Admission:
        """May a job start now? ``trial_running``: a half-open breaker's trial is still live."""
        if self.state is BreakerState.CLOSED:
            return Admission.GO
        if self.state is BreakerState.OPEN:
            due = self.retry_at is None or self.retry_at <= now
            return Admission.TRIAL if due else Admission.COOL
        return Admission.COOL if trial_running else Admission.TRIAL

    def trial(self) -> Breaker:
        """The state once a job went through as the trial."""
        return replace(self, state=BreakerState.HALF_OPEN)
