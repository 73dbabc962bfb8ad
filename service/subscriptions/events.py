"""What a subscription tells its client: new entries found, a check failed, it paused itself.

Each event goes two ways, both in the transaction that records the check, so it is
sent exactly when the check's outcome is committed and never twice for one entry (a
redelivered check finds its entries already recorded and finds nothing new):

* a webhook, through the outbox (``webhooks.outbox.record_event``: a delivery whose
  subject is the subscription), to the subscription's ``callback_url`` or else the
  client's default endpoint; published after the commit, or by the stale sweep;
* a notification on the live channel, which the client's ``GET /v1/events`` stream
  shows as a ``subscription`` message. It carries no event id and is not replayed
  after a reconnect (like a progress tick): the subscription's row and its entries
  are the durable record, and the webhook the durable announcement.

Event types (``type`` in the webhook body, ``event`` in the SSE data):
``subscription.entries_found``, ``subscription.check_failed``, ``subscription.paused``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from service.db.feeds import EntryState
from service.db.notify import notify
from service.domain.states import DeliverySubject
from service.webhooks.outbox import record_event

if TYPE_CHECKING:
    import uuid

    from service.db import Session
    from service.db.feeds import Subscription, SubscriptionEntry

#: Entries listed in one ``entries_found`` webhook; the rest are counted (read them at
#: ``/v1/subscriptions/{id}/entries``).
MAX_LISTED = 50


class SubscriptionEvent(StrEnum):
    """The events of a subscription, spelled once."""

    ENTRIES_FOUND = "subscription.entries_found"
    CHECK_FAILED = "subscription.check_failed"
    PAUSED = "subscription.paused"


def entries_found(
    session: Session, sub: Subscription, new: list[SubscriptionEntry]
) -> uuid.UUID | None:
    """Announce the entries this check recorded, unless all were before the backfill
    (a first check with ``backfill=none`` has nothing to say); the delivery's id, if any."""
    told = [e for e in new if e.state != EntryState.BEFORE_BACKFILL.value]
    if not told:
        return None
    by_state: dict[str, int] = {}
    for entry in told:
        by_state[entry.state] = by_state.get(entry.state, 0) + 1
    data = {
        **_about(sub),
        "new": len(told),
        "by_state": by_state,
        "entries": [_entry(e) for e in told[:MAX_LISTED]],
    }
    return _send(session, sub, SubscriptionEvent.ENTRIES_FOUND, data, summary={"new": len(told)})


def check_failed(
    session: Session, sub: Subscription, error: str, *, max_failures: int
) -> list[uuid.UUID]:
    """Announce a failed check and, when it was the ``max_failures``-th in a row, that the
    subscription paused itself; the deliveries' ids."""
    data = {**_about(sub), "error": error, "consecutive_failures": sub.consecutive_failures}
    made = [_send(session, sub, SubscriptionEvent.CHECK_FAILED, data, summary={"error": error})]
    if sub.consecutive_failures == max_failures and sub.paused_at is not None:
        paused = {**data, "paused_reason": sub.paused_reason}
        summary = {"paused_reason": sub.paused_reason}
        made.append(_send(session, sub, SubscriptionEvent.PAUSED, paused, summary=summary))
    return [m for m in made if m is not None]


def _send(
    session: Session,
    sub: Subscription,
    event: SubscriptionEvent,
    data: dict[str, Any],
    *,
    summary: dict[str, Any],
) -> uuid.UUID | None:
    notify(
        session,
        {
            "kind": "subscription",
            "event": event.value,
            "client_id": str(sub.client_id),
            "subscription_id": str(sub.id),
            "at": datetime.now(UTC).isoformat(),
            **{k: (v[:500] if isinstance(v, str) else v) for k, v in summary.items()},
        },
    )
    delivery = record_event(
        session,
        client_id=sub.client_id,
        kind=DeliverySubject.SUBSCRIPTION,
        subject_id=sub.id,
        event=event.value,
        data=data,
        own_url=sub.callback_url,
    )
    return delivery.id if delivery is not None else None


def _about(sub: Subscription) -> dict[str, Any]:
    return {
        "subscription": {
            "id": str(sub.id),
            "url": sub.url,
            "metadata": sub.user_metadata,
            "paused": sub.paused_at is not None,
        },
        "links": {
            "subscription": f"/v1/subscriptions/{sub.id}",
            "entries": f"/v1/subscriptions/{sub.id}/entries",
        },
    }


def _entry(entry: SubscriptionEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "url": entry.url,
        "title": entry.title,
        "published_at": entry.published_at.isoformat() if entry.published_at else None,
        "state": entry.state,
        "reason": entry.reason,
    }
