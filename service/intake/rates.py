"""Requests per minute per client, counted in PostgreSQL so every API process spends
from one budget (a process's memory would give each process its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.db import ratelimits as rate_rows
from service.domain.ratelimit import RateState, interval, period, state
from service.errors import RateLimited
from service.intake.clients import limits_of

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime


def spend(rt: Runtime, client: Client) -> RateState | None:
    """Count one request of ``client``; None when it has no rate limit.

    Raises :class:`RateLimited` (with when to try again) when its budget is spent;
    a refused request spends nothing.
    """
    limit = limits_of(rt.settings, client).requests_per_minute
    if limit is None:
        return None
    with rt.db.session() as session:
        allowed, tat, now = rate_rows.take(session, client.id, interval(limit), period())
    rate = state(limit, tat, now, allowed=allowed)
    if not allowed:
        raise RateLimited(
            f"more than {limit} requests per minute (requests_per_minute); "
            f"try again in {rate.retry_after_s} s",
            rate=rate,
        )
    return rate
