"""The scheduler's side: find due subscriptions and ring for their checks.

The tick (``actors/subscriptions.py``, every minute under ``periodiq actors``) claims
due subscriptions in batches with ``FOR UPDATE SKIP LOCKED``, moving each one's
``next_check_at`` one interval past now in the same statement (``db/subscriptions.py:
claim_due``). Two schedulers running by mistake split the due rows between them; a
scheduler that was down catches up with one check per subscription, since the claim
schedules from now and not from the missed due time. A check that could not be
published is due again at once; one lost after the broker confirmed it costs one
interval: the row is due again then.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from service.db import subscriptions as rows

if TYPE_CHECKING:
    import uuid

    from service.runtime import Runtime

log = structlog.get_logger(__name__)

#: Subscriptions claimed per transaction of a tick.
BATCH = 100


def tick(rt: Runtime) -> int:
    """Claim every due subscription and ring for its check; how many were claimed."""
    total = 0
    while True:
        with rt.db.session() as session:
            claimed = rows.claim_due(session, BATCH)
        if not claimed:
            return total
        now = datetime.now(UTC)
        lags = [(now - due).total_seconds() for _, due in claimed if due is not None]
        log.info("subscriptions due", count=len(claimed), max_lag_s=round(max(lags, default=0), 1))
        ring(rt, [sub.id for sub, _ in claimed])
        total += len(claimed)
        if len(claimed) < BATCH:
            return total


def ring(rt: Runtime, sub_ids: list[uuid.UUID]) -> None:
    """Publish a check per subscription; one whose publish fails is made due again at
    once, so the next tick tries it instead of waiting out its interval."""
    for sub_id in sub_ids:
        try:
            rt.publish_check(sub_id)
        except Exception as exc:
            log.warning("check not published", subscription_id=str(sub_id), error=repr(exc))
            with rt.db.session() as session:
                rows.due_now(session, sub_id)
