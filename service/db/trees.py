"""Playlist trees: a parent and its entries, in the one lock order.

Every path that touches an entry and its parent locks the entries first, in id
order, then the parent (see docs/architecture.md, "Lock order of playlist trees"),
so no two of them deadlock and whichever commits second sees what the first did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db.models import Job
from service.db.sql import NOW, returning_all
from service.db.transitions import end, end_job, from_states
from service.domain.playlists import REOPENABLE, Children, parent_outcome
from service.domain.states import Phase, Status

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta

    from sqlmodel import Session


def lock_entries(session: Session, parent_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock every entry of a parent, in id order, and return their ids.

    The first step of anything that changes a whole playlist (cancel, delete): the
    lock order is entries first, in id order, then their parent, as a finishing
    entry and a retry take them, so none of these can deadlock with another.
    """
    stmt = sa.select(Job.id).where(Job.parent_id == parent_id).order_by(Job.id).with_for_update()
    return list(session.execute(stmt).scalars())


def cancel_tree(session: Session, job_id: uuid.UUID) -> list[Job]:
    """Cancel a job and every unfinished entry of it: the job first, then its entries;
    empty when the job cannot be cancelled.

    Its entries are locked before it (:func:`lock_entries`) and cancelled after it
    moved: a retry of an entry that committed first is seen and cancelled too; one
    that comes second finds the parent cancelled and reopens it. Either way, no
    entry is left active under an ended parent.
    """
    lock_entries(session, job_id)
    moved = end_job(session, job_id, Status.CANCELLED)
    if moved is None:
        return []
    return [moved, *end(session, Status.CANCELLED, Job.parent_id == job_id)]


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
    ending = parent_outcome(entries)
    extra: dict[str, Any] = {"progress": 1.0} if ending.status is Status.SUCCEEDED else {}
    if ending.error_class is not None:
        extra = {"error_class": ending.error_class, "error_message": ending.error_message}
    return end_job(session, parent_id, ending.status, only_from=(Status.RUNNING,), **extra)


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
            Job.updated_at < NOW() - every,
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
    session.execute(stmt.values(updated_at=NOW()))


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
        .where(Job.id.in_(parent_ids), from_states(Status.RUNNING, REOPENABLE))
        .values(
            status=Status.RUNNING.value,
            phase=Phase.AWAITING_CHILDREN.value,
            lease_owner=None,
            lease_expires_at=None,
            progress=None,
            error_class=None,
            error_message=None,
            last_error=None,
            last_error_class=None,
            dead_lettered_at=None,
            finished_at=None,
            updated_at=NOW(),
        )
    )
    return returning_all(session, stmt)
