"""Queries on ``jobs``. Every state change is one guarded UPDATE … RETURNING.

A guarded update names the states it may start from (from the state machine)
and, for a worker, the lease it must hold. When it matches no row, the caller
learns that the job moved on (cancelled, deleted, taken over) and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from service.db.models import Job
from service.domain.control import site_of
from service.domain.playlists import ENTRIES_RETRIED, REOPENABLE, Children
from service.domain.states import ACTIVE, TERMINAL, TRANSITIONS, Phase, Status, Step, sources

if TYPE_CHECKING:
    import uuid

    from sqlmodel import Session

#: The database's clock: the one clock the whole fleet shares.
_NOW = sa.func.now
PUBLISH_FAILED = "publish failed:"
#: Ids bound as one array parameter, however many there are.
_UUIDS = ARRAY(sa.Uuid)


def _returning_all(session: Session, stmt: Any) -> list[Job]:
    """The rows as the UPDATE left them, also when the session had read them before."""
    options = {"synchronize_session": False, "populate_existing": True}
    return list(session.execute(stmt.returning(Job).execution_options(**options)).scalars())


def _returning_one(session: Session, stmt: Any) -> Job | None:
    found = _returning_all(session, stmt)
    return found[0] if found else None


def insert(session: Session, job: Job) -> Job:
    insert_many(session, [job])
    return job


def insert_many(session: Session, jobs: list[Job]) -> None:
    """Add jobs, each with its site (the host that per-site limits count) filled in."""
    for job in jobs:
        job.site = job.site or site_of(job.url)
    session.add_all(jobs)
    session.flush()


def get(session: Session, job_id: uuid.UUID) -> Job | None:
    return session.get(Job, job_id, populate_existing=True)


def get_for_client(session: Session, job_id: uuid.UUID, client_id: uuid.UUID) -> Job | None:
    stmt = sa.select(Job).where(Job.id == job_id, Job.client_id == client_id)
    return session.execute(stmt).scalars().first()


def list_for_client(
    session: Session,
    client_id: uuid.UUID,
    *,
    status: Status | None,
    parent_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Job]:
    """Newest first; ``after`` is the (created_at, id) of the last row already seen."""
    stmt = sa.select(Job).where(Job.client_id == client_id)
    if status is not None:
        stmt = stmt.where(Job.status == status.value)
    if parent_id is not None:
        stmt = stmt.where(Job.parent_id == parent_id)
    if after is not None:
        stmt = stmt.where(sa.tuple_(Job.created_at, Job.id) < sa.tuple_(*after))
    stmt = stmt.order_by(sa.desc(Job.created_at), sa.desc(Job.id)).limit(limit)
    return list(session.execute(stmt).scalars())


def move(
    session: Session,
    job_id: uuid.UUID,
    to: Status,
    *,
    owner: str | None = None,
    only_from: tuple[Status, ...] | None = None,
    **values: Any,
) -> Job | None:
    """Move a job to ``to`` if the state machine allows it from where it is now.

    ``owner`` additionally requires that this worker still holds the lease.
    Leaving ``running`` always clears the lease.
    """
    allowed = only_from if only_from is not None else sources(to)
    stmt = sa.update(Job).where(Job.id == job_id, Job.status.in_([s.value for s in allowed]))
    if owner is not None:
        stmt = stmt.where(Job.lease_owner == owner)
    changes: dict[str, Any] = {"status": to.value, "held": None, "updated_at": _NOW(), **values}
    if to is not Status.RUNNING:
        changes.setdefault("lease_owner", None)
        changes.setdefault("lease_expires_at", None)
    if to in TERMINAL:
        changes.setdefault("finished_at", _NOW())
        changes.setdefault("phase", None)
    return _returning_one(session, stmt.values(**changes))


def _claimable() -> Any:
    """Waiting for a worker, or running under a lease that expired."""
    return sa.or_(
        Job.status.in_([Status.QUEUED.value, Status.RETRYING.value]),
        sa.and_(Job.status == Status.RUNNING.value, Job.lease_expires_at < _NOW()),
    )


def requeue(
    session: Session, job_id: uuid.UUID, *, owner: str | None = None, **values: Any
) -> Job | None:
    """Put a running job back in the queue, as if just submitted; the caller publishes it.

    The one way back from ``running`` to ``queued``: the probe handing over to the
    download, a worker shutting down, the sweep taking an expired lease.
    """
    return move(
        session,
        job_id,
        Status.QUEUED,
        owner=owner,
        only_from=(Status.RUNNING,),
        phase=None,
        queued_at=_NOW(),
        published_at=None,
        **values,
    )


def claim(
    session: Session, job_id: uuid.UUID, step: Step, owner: str, lease: timedelta, phase: Phase
) -> Job | None:
    """Take the job for this worker: from queued/retrying, or running with an expired lease.

    Counts the attempt in the row, so a job that kills its worker cannot loop forever.
    """
    claimable = _claimable()
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.step == step.value, claimable, Job.attempts < Job.max_attempts)
        .values(
            status=Status.RUNNING.value,
            phase=phase.value,
            held=None,
            lease_owner=owner,
            lease_expires_at=_NOW() + lease,
            attempts=Job.attempts + 1,
            started_at=sa.func.coalesce(Job.started_at, _NOW()),
            next_attempt_at=None,
            updated_at=_NOW(),
        )
    )
    return _returning_one(session, stmt)


def heartbeat(
    session: Session, job_id: uuid.UUID, owner: str, lease: timedelta, **progress: Any
) -> bool:
    """Renew the lease and write progress; False when this worker no longer holds the job."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.RUNNING.value, Job.lease_owner == owner)
        .values(lease_expires_at=_NOW() + lease, updated_at=_NOW(), **progress)
    )
    return session.execute(stmt).rowcount == 1


def mark_published(session: Session, job_ids: list[uuid.UUID]) -> list[Job]:
    """Record that the doorbell rang; clears a previous publish error. Returns the rows."""
    stmt = (
        sa.update(Job)
        .where(Job.id.in_(job_ids), Job.status.in_([Status.QUEUED.value, Status.RETRYING.value]))
        .values(
            published_at=_NOW(),
            last_error=sa.case(
                (Job.last_error.like(f"{PUBLISH_FAILED}%"), None), else_=Job.last_error
            ),
            updated_at=_NOW(),
        )
    )
    return _returning_all(session, stmt)


def mark_publish_failed(session: Session, job_id: uuid.UUID, reason: str) -> Job | None:
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.QUEUED.value)
        .values(last_error=f"{PUBLISH_FAILED} {reason}", updated_at=_NOW())
    )
    return _returning_one(session, stmt)


def lock_entries(session: Session, parent_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock every entry of a parent, in id order, and return their ids.

    The first step of anything that changes a whole playlist (cancel, delete): the
    lock order is entries first, in id order, then their parent, as a finishing
    entry and a retry take them, so none of these can deadlock with another.
    """
    stmt = sa.select(Job.id).where(Job.parent_id == parent_id).order_by(Job.id).with_for_update()
    return list(session.execute(stmt).scalars())


def cancel_tree(session: Session, job_id: uuid.UUID) -> Job | None:
    """Cancel a job and every unfinished entry of it; None when it cannot be cancelled.

    Its entries are locked before it (:func:`lock_entries`) and cancelled after it
    moved: a retry of an entry that committed first is seen and cancelled too; one
    that comes second finds the parent cancelled and reopens it. Either way, no
    entry is left active under an ended parent.
    """
    lock_entries(session, job_id)
    moved = move(session, job_id, Status.CANCELLED)
    if moved is not None:
        cancel_children(session, job_id)
    return moved


def cancel_children(session: Session, parent_id: uuid.UUID) -> int:
    """Cancel every unfinished child of a parent; returns how many."""
    stmt = (
        sa.update(Job)
        .where(Job.parent_id == parent_id, Job.status.in_([s.value for s in ACTIVE]))
        .values(
            status=Status.CANCELLED.value,
            phase=None,
            held=None,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=_NOW(),
            updated_at=_NOW(),
        )
    )
    return session.execute(stmt).rowcount


def children(session: Session, parent_ids: list[uuid.UUID]) -> dict[uuid.UUID, Children]:
    """Each parent's entries by state, with the running ones' progress summed.

    One grouped query for any number of parents (a page of a listing); parents
    without children are absent.
    """
    if not parent_ids:
        return {}
    stmt = (
        sa.select(
            Job.parent_id,
            Job.status,
            sa.func.count(),
            sa.func.sum(sa.func.coalesce(Job.progress, 0.0)),
        )
        .where(Job.parent_id.in_(parent_ids))
        .group_by(Job.parent_id, Job.status)
    )
    counts: dict[uuid.UUID, dict[Status, int]] = {}
    running: dict[uuid.UUID, float] = {}
    for parent_id, status, n, progress in session.execute(stmt):
        counts.setdefault(parent_id, {})[Status(status)] = n
        if status == Status.RUNNING.value:
            running[parent_id] = float(progress)
    return {p: Children(c, running.get(p, 0.0)) for p, c in counts.items()}


def finish_parent_if_done(session: Session, parent_id: uuid.UUID) -> Job | None:
    """Close a parent whose children are all terminal; safe under concurrency.

    The parent row is locked first, so of two children finishing at once the
    second always sees the first one's committed state.
    """
    parent = (
        session.execute(
            sa.select(Job)
            .where(Job.id == parent_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        .scalars()
        .first()
    )
    if parent is None or parent.status != Status.RUNNING.value:
        return None
    entries = children(session, [parent_id]).get(parent_id, Children())
    if entries.active:
        _show_progress(session, parent, entries)
        return None
    total = entries.total
    failed = entries.counts.get(Status.FAILED, 0)
    succeeded = entries.counts.get(Status.SUCCEEDED, 0)
    if failed:
        return move(
            session,
            parent_id,
            Status.FAILED,
            error_class="children_failed",
            error_message=f"{failed} of {total} entries failed",
        )
    if succeeded == 0 and total > 0:
        return move(session, parent_id, Status.CANCELLED)
    return move(session, parent_id, Status.SUCCEEDED, progress=1.0)


def spread_progress(session: Session, parent_id: uuid.UUID, every: timedelta) -> None:
    """Write a waiting parent's own progress from its entries, at most once per ``every``.

    Called by an entry's heartbeat after it renewed its lease (the entry, then
    the parent: the one lock order). The parent is taken ``SKIP LOCKED`` and only
    when its row is older than ``every``, so sibling heartbeats never wait on it
    and a playlist gets one such write per ``every`` however many entries run.
    """
    stale = (
        sa.select(Job)
        .where(
            Job.id == parent_id,
            Job.status == Status.RUNNING.value,
            Job.phase == Phase.AWAITING_CHILDREN.value,
            Job.updated_at < _NOW() - every,
        )
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    parent = session.execute(stale).scalars().first()
    if parent is not None:
        _show_progress(session, parent, children(session, [parent_id]).get(parent_id, Children()))


def _show_progress(session: Session, parent: Job, entries: Children) -> None:
    """Put the playlist's overall progress on the (locked) parent row, when it moved.

    The row's trigger announces it, so a watcher of the parent sees it move.
    """
    if parent.progress == entries.progress:
        return
    stmt = sa.update(Job).where(Job.id == parent.id).values(progress=entries.progress)
    session.execute(stmt.values(updated_at=_NOW()))


def child_ids(session: Session, parent_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.execute(sa.select(Job.id).where(Job.parent_id == parent_id)).scalars())


def delete_tree(session: Session, job_id: uuid.UUID) -> list[uuid.UUID]:
    """Delete a job with its entries (by cascade); returns the entries' ids.

    The entries are locked first (:func:`lock_entries`), so a retry or a finish
    of one of them, which locks the entry and then the parent, is waited for
    rather than deadlocked with.
    """
    entries = lock_entries(session, job_id)
    session.execute(sa.delete(Job).where(Job.id == job_id))
    return entries


def expired_leases(session: Session, limit: int) -> list[Job]:
    """Running jobs whose worker stopped renewing its lease, oldest first."""
    stmt = (
        sa.select(Job)
        .where(Job.status == Status.RUNNING.value, Job.lease_expires_at < _NOW())
        .order_by(Job.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def unpublished(session: Session, older_than: timedelta, limit: int) -> list[Job]:
    """Queued jobs never published, or published long ago and never claimed."""
    stale = sa.or_(Job.published_at.is_(None), Job.published_at < _NOW() - older_than)
    stmt = (
        sa.select(Job)
        .where(
            Job.status == Status.QUEUED.value,
            Job.held.is_(None),
            Job.queued_at < _NOW() - timedelta(seconds=5),
            stale,
        )
        .order_by(Job.queued_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def overdue_retries(session: Session, older_than: timedelta, limit: int) -> list[Job]:
    """Retrying jobs whose next attempt is long overdue: the delayed message was lost
    (the broker was down when the retry was scheduled) or never sent.

    A job republished here is not taken again until ``older_than`` has passed once more.
    """
    cutoff = _NOW() - older_than
    stmt = (
        sa.select(Job)
        .where(
            Job.status == Status.RETRYING.value,
            Job.held.is_(None),
            Job.updated_at < cutoff,
            sa.func.coalesce(Job.next_attempt_at, Job.updated_at) < cutoff,
            sa.or_(Job.published_at.is_(None), Job.published_at < cutoff),
        )
        .order_by(Job.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def stranded_parents(session: Session, limit: int) -> list[uuid.UUID]:
    """Parents still running although no child is active (a finish that was missed)."""
    child = sa.orm.aliased(Job)
    active_child = sa.exists().where(
        child.parent_id == Job.id,
        child.status.in_([s.value for s in ACTIVE]),
    )
    stmt = (
        sa.select(Job.id)
        .where(
            Job.status == Status.RUNNING.value,
            Job.phase == Phase.AWAITING_CHILDREN.value,
            ~active_child,
        )
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def await_children(
    session: Session, job_id: uuid.UUID, owner: str, *, info: dict[str, Any]
) -> Job | None:
    """A probed playlist stays ``running`` without a lease until its children finish."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.RUNNING.value, Job.lease_owner == owner)
        .values(
            phase=Phase.AWAITING_CHILDREN.value,
            lease_owner=None,
            lease_expires_at=None,
            info=info,
            last_error=None,
            updated_at=_NOW(),
        )
    )
    return _returning_one(session, stmt)


def fail_exhausted(session: Session, job_id: uuid.UUID) -> Job | None:
    """Fail a job that was claimed ``max_attempts`` times without an outcome.

    This is what stops a job that kills its worker (redelivered forever otherwise).
    """
    claimable = _claimable()
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, claimable, Job.attempts >= Job.max_attempts)
        .values(
            status=Status.FAILED.value,
            phase=None,
            held=None,
            lease_owner=None,
            lease_expires_at=None,
            error_class="attempts_exhausted",
            error_message=sa.func.concat(
                "gave up after ", Job.attempts, " attempts without an outcome"
            ),
            finished_at=_NOW(),
            updated_at=_NOW(),
        )
    )
    return _returning_one(session, stmt)


def schedule_retry(session: Session, job_id: uuid.UUID, delay: timedelta) -> None:
    """Record when the next attempt of a ``retrying`` job is due."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.RETRYING.value)
        .values(next_attempt_at=_NOW() + delay, updated_at=_NOW())
    )
    session.execute(stmt)


def dead_letter(session: Session, job_id: uuid.UUID, fallback_reason: str) -> Job | None:
    """The message went to ``.XQ``: the row says ``failed`` with the last error it saw.

    A permanent failure was already written by the worker that met it; then only the
    time of the dead letter is added.
    """
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status.in_([Status.QUEUED.value, Status.RETRYING.value]))
        .values(
            status=Status.FAILED.value,
            phase=None,
            held=None,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=None,
            error_class=sa.func.coalesce(sa.func.split_part(Job.last_error, ":", 1), "dead_letter"),
            error_message=sa.func.coalesce(Job.last_error, fallback_reason),
            dead_lettered_at=_NOW(),
            finished_at=_NOW(),
            updated_at=_NOW(),
        )
    )
    failed = _returning_one(session, stmt)
    if failed is not None:
        return failed
    stamp = (
        sa.update(Job)
        .where(
            Job.id == job_id,
            Job.status == Status.FAILED.value,
            Job.dead_lettered_at.is_(None),
        )
        .values(dead_lettered_at=_NOW(), updated_at=_NOW())
    )
    return _returning_one(session, stamp)


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
        "next_attempt_at": None,
        "dead_lettered_at": None,
        "finished_at": None,
        "queued_at": _NOW(),
        "published_at": None,
        "updated_at": _NOW(),
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
    stmt = sa.update(Job).where(Job.id == sa.any_(sa.literal(ids, _UUIDS)), taken)
    return _returning_all(session, stmt.values(**_queued_afresh()))


def _replayable(ended: EndedJobs) -> Any:
    """Matching ended jobs that are neither a parent nor an entry of a succeeded playlist."""
    allowed = [s.value for s in ended.statuses if Status.QUEUED in TRANSITIONS[s]]
    child = sa.orm.aliased(Job)
    parent = sa.orm.aliased(Job)
    return sa.and_(
        Job.status.in_(allowed),
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


def reopen_parents(session: Session, parent_ids: set[uuid.UUID]) -> list[Job]:
    """Ended parents of entries just queued again go back to awaiting them.

    Not probed again (that would make a second set of entries): ``running`` in
    phase ``awaiting_children``, without a lease, its end cleared, as the probe
    left it. A parent still running just waits for one more entry; a succeeded
    one is not reopened (:func:`replay` leaves its entries alone).

    Call it after queueing the entries, in their transaction. Every parent is
    locked first, running or not, as :func:`finish_parent_if_done` does: an entry
    finishing meanwhile either closed its parent before (then it is reopened
    here) or counts the entries queued here once this commits, so a parent is
    never left ended with an entry active, nor running with none.
    """
    if not parent_ids:
        return []
    lock = sa.select(Job.id).where(Job.id.in_(parent_ids)).order_by(Job.id).with_for_update()
    session.execute(lock)
    stmt = (
        sa.update(Job)
        .where(Job.id.in_(parent_ids), Job.status.in_([s.value for s in REOPENABLE]))
        .values(
            status=Status.RUNNING.value,
            phase=Phase.AWAITING_CHILDREN.value,
            lease_owner=None,
            lease_expires_at=None,
            progress=None,
            error_class=None,
            error_message=None,
            last_error=None,
            dead_lettered_at=None,
            finished_at=None,
            updated_at=_NOW(),
        )
    )
    return _returning_all(session, stmt)


def prune_ended(
    session: Session, older_than: timedelta, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Delete top-level jobs that ended long ago (children go with them by cascade).

    Locks in the order of playlist trees: the entries of the chosen jobs first, in id
    order, then the jobs, which are deleted only if they are still ended and old (a
    retry may have reopened one meanwhile). Returns (client_id, job_id) of every
    deleted job, children included, so their files can be removed after the commit.
    """
    old = sa.and_(
        Job.parent_id.is_(None),
        Job.status.in_([s.value for s in TERMINAL]),
        Job.finished_at < _NOW() - older_than,
    )
    chosen = list(session.execute(sa.select(Job.id).where(old).limit(limit)).scalars())
    if not chosen:
        return []
    entries = sa.select(Job.id).where(Job.parent_id.in_(chosen)).order_by(Job.id)
    session.execute(entries.with_for_update())
    still_old = sa.select(Job.id).where(Job.id.in_(chosen), old).order_by(Job.id)
    ids = list(session.execute(still_old.with_for_update()).scalars())
    if not ids:
        return []
    doomed = sa.select(Job.client_id, Job.id).where(sa.or_(Job.id.in_(ids), Job.parent_id.in_(ids)))
    gone = [(client_id, job_id) for client_id, job_id in session.execute(doomed)]
    session.execute(sa.delete(Job).where(Job.id.in_(ids)))
    return gone


def count_active(session: Session, client_id: uuid.UUID) -> int:
    """A client's jobs that are queued, retrying or running, playlist entries included."""
    stmt = sa.select(sa.func.count()).where(
        Job.client_id == client_id, Job.status.in_([s.value for s in ACTIVE])
    )
    return int(session.execute(stmt).scalar_one())


def succeeded_twin(
    session: Session, client_id: uuid.UUID, url: str, options: dict[str, Any]
) -> Job | None:
    """The client's newest succeeded job for this normalized URL and these normalized options."""
    stmt = (
        sa.select(Job)
        .where(
            Job.client_id == client_id,
            Job.status == Status.SUCCEEDED.value,
            sa.func.md5(Job.url) == sa.func.md5(url),
            Job.url == url,
            Job.options == options,
        )
        .order_by(sa.desc(Job.finished_at), sa.desc(Job.id))
        .limit(1)
    )
    return session.execute(stmt).scalars().first()
