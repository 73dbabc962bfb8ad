"""Which ended jobs a retry puts back, and the one guarded UPDATE that queues them afresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db.models import Job
from service.db.sql import NOW, UUIDS, returning_all
from service.db.transitions import from_states
from service.domain.playlists import ENTRIES_RETRIED
from service.domain.states import TERMINAL, TRANSITIONS, Kind, Status, sources

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from sqlmodel import Session


@dataclass(frozen=True)
class EndedJobs:
    """Which ended jobs a replay takes: one of these states, and the filter's other terms."""

    statuses: tuple[Status, ...]
    job_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    error_class: str | None = None
    finished_since: datetime | None = None

    def terms(self, table: Any) -> list[Any]:
        """The filter's terms on ``table`` (jobs, or an alias of it), its state aside."""
        found = []
        if self.job_id is not None:
            found.append(table.id == self.job_id)
        if self.client_id is not None:
            found.append(table.client_id == self.client_id)
        if self.error_class is not None:
            found.append(table.error_class == self.error_class)
        if self.finished_since is not None:
            found.append(table.finished_at >= self.finished_since)
        return found


#: The ends a replay starts from: the table's ways back to ``queued`` out of a terminal state.
_ENDED = tuple(s for s in sources(Status.QUEUED) if s in TERMINAL)


def _queued_afresh() -> dict[str, Any]:
    """A replayed job's row: queued, with a fresh attempt budget and no trace of its end."""
    return {
        "status": Status.QUEUED.value,
        "phase": None,
        "attempts": 0,
        "progress": None,
        "bytes_done": None,
        "speed": None,
        "eta": None,
        "error_class": None,
        "error_message": None,
        "last_error": None,
        "last_error_class": None,
        "next_attempt_at": None,
        "dead_lettered_at": None,
        "finished_at": None,
        "queued_at": NOW(),
        "published_at": None,
        "updated_at": NOW(),
    }


def replay(session: Session, ended: EndedJobs) -> list[Job]:
    """Put ended jobs back in the queue with a fresh attempt budget: the matching jobs,
    and the entries each matching ended playlist's ending calls for (``ENTRIES_RETRIED``).

    A playlist parent is not queued itself (the caller reopens it in the same
    transaction, :func:`reopen_parents`), and neither is an entry of a playlist
    that succeeded: that parent cannot reopen, and would go on saying succeeded
    whatever the entry did.

    The rows are locked first, in id order, as :func:`lock_entries` locks a
    playlist's; then one guarded UPDATE moves those still ended: a row or a
    parent that moved meanwhile is not touched, so two retries of one playlist
    queue its entries once.
    """
    taken = sa.or_(_replayable(ended), _entries_retried(ended))
    lock = sa.select(Job.id).where(taken).order_by(Job.id).with_for_update()
    ids = list(session.execute(lock).scalars())
    if not ids:
        return []
    stmt = sa.update(Job).where(
        Job.id == sa.any_(sa.literal(ids, UUIDS)), from_states(Status.QUEUED, _ENDED), taken
    )
    return returning_all(session, stmt.values(**_queued_afresh()))


def clients_of(session: Session, ended: EndedJobs) -> list[uuid.UUID]:
    """The clients whose jobs a replay of ``ended`` would queue, in id order (the order their
    rows are locked in, before the jobs)."""
    taken = sa.or_(_replayable(ended), _entries_retried(ended))
    stmt = sa.select(Job.client_id).where(taken).distinct().order_by(Job.client_id)
    return list(session.execute(stmt).scalars())


def _replayable(ended: EndedJobs) -> Any:
    """Matching ended downloads that are neither a parent nor an entry of a succeeded
    playlist. A subscription's check is not replayed: checking again makes a new one."""
    allowed = [s.value for s in ended.statuses if Status.QUEUED in TRANSITIONS[s]]
    child = sa.orm.aliased(Job)
    parent = sa.orm.aliased(Job)
    return sa.and_(
        Job.status.in_(allowed),
        Job.kind == Kind.DOWNLOAD.value,
        ~sa.exists().where(child.parent_id == Job.id),
        ~sa.exists().where(parent.id == Job.parent_id, parent.status == Status.SUCCEEDED.value),
        *ended.terms(Job),
    )


def _entries_retried(ended: EndedJobs) -> Any:
    """Entries of matching ended playlists in a state their parent's ending retries."""
    parent = sa.orm.aliased(Job)
    taken = [
        sa.and_(parent.status == end.value, Job.status.in_([s.value for s in entries]))
        for end, entries in ENTRIES_RETRIED.items()
        if end in ended.statuses
    ]
    if not taken:
        return sa.false()
    return sa.and_(
        Job.parent_id.is_not(None),
        sa.exists().where(parent.id == Job.parent_id, sa.or_(*taken), *ended.terms(parent)),
    )
