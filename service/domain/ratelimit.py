"""Requests per minute as GCRA (the generic cell rate algorithm): one timestamp per client.

The theoretical arrival time ``tat`` moves ``PERIOD_S / limit`` ahead with each request
(from now, if it lies in the past), and a request is allowed while ``tat`` stays within
one period of now. A client that was idle may spend its whole minute at once, then one
request every ``PERIOD_S / limit``; idle time refills it. That is a bucket of ``limit``
refilled continuously: over any ``s`` seconds at most ``limit * (1 + s / PERIOD_S)``
requests pass. The database moves ``tat`` in one statement (``db/ratelimits.py``);
this module turns it into what the client is told.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

PERIOD_S = 60
#: Absorbs rounding of the interval to PostgreSQL's microseconds.
_SLACK = 1e-6


@dataclass(frozen=True)
class RateState:
    """Where a client stands after one request; ``retry_after_s`` is set when it was refused."""

    limit: int
    remaining: int
    #: Seconds until the whole quota is back.
    reset_s: int
    retry_after_s: int | None = None

    @property
    def allowed(self) -> bool:
        return self.retry_after_s is None


def interval(limit: int) -> timedelta:
    """How far one request moves ``tat``."""
    return timedelta(seconds=PERIOD_S / limit)


def period() -> timedelta:
    return timedelta(seconds=PERIOD_S)


def state(limit: int, tat: datetime, now: datetime, *, allowed: bool) -> RateState:
    """What ``tat`` means at ``now``: requests left, time to a full quota, and, for a
    refused request, when the next one would be allowed."""
    step = PERIOD_S / limit
    ahead = max(0.0, (tat - now).total_seconds())
    remaining = max(0, min(limit, math.floor((PERIOD_S - ahead) / step + _SLACK)))
    reset = math.ceil(ahead - _SLACK) if ahead > _SLACK else 0
    if allowed:
        return RateState(limit=limit, remaining=remaining, reset_s=reset)
    wait = max(1, math.ceil(ahead + step - PERIOD_S - _SLACK))
    return RateState(limit=limit, remaining=0, reset_s=reset, retry_after_s=wait)
