"""Explicit retry, backoff and time-limit options for every actor (never Dramatiq's defaults)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dramatiq

from service.dispatch import Queue, route
from service.domain.errors import ErrorClass
from service.errors import Permanent, Transient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.settings import Settings


def job_actor_options(settings: Settings, queue: Queue, time_limit_s: int) -> dict[str, Any]:
    return {
        "actor_name": route(queue, settings).actor_name,
        "queue_name": route(queue, settings).queue_name,
        "max_retries": settings.max_retries,
        "min_backoff": settings.min_backoff_ms,
        "max_backoff": settings.max_backoff_ms,
        "time_limit": time_limit_s * 1000,
        # Never retried: the row already says failed, the message goes to .XQ.
        "throws": (Permanent,),
    }


def parse_job_id(raw: str) -> uuid.UUID | None:
    """The job id of a message, or None for a malformed one (logged and dropped, never retried)."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


@contextmanager
def throttled_waits_longer(settings: Settings) -> Iterator[None]:
    """A site that throttles us is retried after a longer, fixed delay, not the backoff, and
    not before its breaker lets a job through again (the retry is then the breaker's trial)."""
    try:
        yield
    except Transient as exc:
        if exc.error_class != ErrorClass.RATE_LIMITED:
            raise
        delay = settings.rate_limited_backoff_ms
        if exc.retry_after_s is not None:
            delay = max(delay, int(exc.retry_after_s * 1000) + 250)
        raise dramatiq.Retry(exc.message, delay=delay) from exc
