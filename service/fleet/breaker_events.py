"""What a site's breaker tells admins by webhook when it opens or closes.

A move is announced in the transaction that makes it, so the event is sent exactly
when the move is committed: a throttle that opens a breaker
(``work/outcomes.py``), a success that closes one, an admin's reset
(``fleet/admin.py``). Each writes one delivery to every admin client (scope
``admin``, not revoked) with an enabled default webhook endpoint, through the
outbox (``webhooks.outbox.record_event``, subject kind ``site``); the caller
publishes the returned ids after its commit (``announce_deliveries``), and the
stale sweep if that publish is lost. A throttle counted without opening and a
success on a clean breaker announce nothing: the common path writes nothing here.

Admins' ``GET /v1/events`` streams see every change as a ``site`` message already
(a trigger, migration 0014); the webhook is the durable announcement of the moves.

Event types: ``site.breaker_opened``, ``site.breaker_closed``; the body's ``data`` is
``{site, identity, state, failures, opens, retry_at, reason}``. The delivery's
``subject_id`` is :func:`subject_id`: ``uuid5(SUBJECT_NAMESPACE, f"{site}/{identity}")``,
the same for every event of one breaker, so a receiver can group them.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from service.db import clients as client_rows
from service.domain.breaker import BreakerState
from service.domain.states import DeliverySubject
from service.intake.clients import ADMIN
from service.webhooks.outbox import record_event

if TYPE_CHECKING:
    from datetime import datetime

    from service.db import Session
    from service.db.models import SiteBreaker

#: The namespace of breakers' subject ids (fixed forever: receivers may store the ids).
SUBJECT_NAMESPACE = uuid.UUID("5c0e6a8e-2b1f-4d7e-9a43-3f1b6c9d2e70")


class BreakerEvent(StrEnum):
    """The events of a site's breaker, spelled once."""

    OPENED = "site.breaker_opened"
    CLOSED = "site.breaker_closed"


@dataclass(frozen=True)
class BreakerMove:
    """A breaker as an event reports it, right after the move."""

    site: str
    identity: str
    state: str
    failures: int
    opens: int
    retry_at: datetime | None
    reason: str | None

    @classmethod
    def of(cls, row: SiteBreaker) -> BreakerMove:
        return cls(
            site=row.site,
            identity=row.identity,
            state=row.state,
            failures=row.failures,
            opens=row.opens,
            retry_at=row.retry_at,
            reason=row.reason,
        )

    @classmethod
    def closed(cls, site: str, identity: str, reason: str | None) -> BreakerMove:
        """A breaker just closed (counts cleared); ``reason`` is the last throttle's error."""
        state = BreakerState.CLOSED.value
        return cls(site, identity, state, failures=0, opens=0, retry_at=None, reason=reason)


def subject_id(site: str, identity: str) -> uuid.UUID:
    """The stable subject id of the breaker of ``site`` for ``identity``."""
    return uuid.uuid5(SUBJECT_NAMESPACE, f"{site}/{identity}")


def breaker_moved(session: Session, event: BreakerEvent, move: BreakerMove) -> list[uuid.UUID]:
    """Put the event in the outbox for every admin's default endpoint, in the caller's
    transaction; the deliveries' ids, to announce after the commit."""
    data = asdict(move)
    data["retry_at"] = move.retry_at.isoformat() if move.retry_at is not None else None
    made = []
    for admin in client_rows.with_default_endpoint(session, ADMIN):
        delivery = record_event(
            session,
            client_id=admin.id,
            kind=DeliverySubject.SITE,
            subject_id=subject_id(move.site, move.identity),
            event=event.value,
            data=data,
            own_url=None,
        )
        if delivery is not None:
            made.append(delivery.id)
    return made
