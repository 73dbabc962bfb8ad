"""The scheduler's side: find due subscriptions and make their checks.

The tick (``actors/subscriptions.py``, every minute under ``periodiq actors``) claims
due subscriptions in batches with ``FOR UPDATE SKIP LOCKED``, moving each one's
``next_check_at`` one interval past now in the same statement (``db/subscriptions.py:
claim_due``), and in the same transaction inserts a check job for each one that has no
active check (``add_checks``). Two schedulers running by mistake split the due rows
between them; a scheduler that was down catches up with one check per subscription,
since the claim schedules from now and not from the missed due time.

The check is a job (kind ``check``, step ``subscriptions``): once committed it rings
like any job (``publish_checked``), and a publish that fails is written on its row and
sent again by the republish sweep, as for a download.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from service.db import subscriptions as rows
from service.dispatch import publish_checked

if TYPE_CHECKING:
    from service.db.models import Job
    from service.runtime import Runtime

log = structlog.get_logger(__name__)

#: Subscriptions claimed per transaction of a tick.
BATCH = 100


def tick(rt: Runtime) -> int:
    """Claim every due subscription and make its check; how many were claimed."""
    total = 0
    while True:
        with rt.db.session() as session:
            claimed = rows.claim_due(session, BATCH)
            checks = rows.add_checks(session, [sub for sub, _ in claimed], max_attempts(rt))
        if not claimed:
            return total
        now = datetime.now(UTC)
        lags = [(now - due).total_seconds() for _, due in claimed if due is not None]
        log.info("subscriptions due", count=len(claimed), max_lag_s=round(max(lags, default=0), 1))
        ring(rt, checks)
        total += len(claimed)
        if len(claimed) < BATCH:
            return total


def max_attempts(rt: Runtime) -> int:
    """A check gets the retry budget of any job: its first attempt and ``HAUL_MAX_RETRIES``."""
    return rt.settings.max_retries + 1


def ring(rt: Runtime, checks: list[Job]) -> None:
    """Publish each new check; one whose publish fails says so on its row (the sweep
    publishes it again)."""
    for job in checks:
        publish_checked(rt, job)
