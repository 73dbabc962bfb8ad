"""Rows of ``subscriptions`` and ``subscription_entries``: in, out, claimed, counted.

The two guarantees live here, as single statements:

- :func:`claim_due` takes due subscriptions ``FOR UPDATE SKIP LOCKED`` and moves their
  ``next_check_at`` one interval past *now* in the same statement: two schedulers never
  take one subscription twice, and one that was down for hours takes each due
  subscription once, not once per missed interval.
- :func:`record_entries` inserts a check's listing ``ON CONFLICT DO NOTHING`` on the
  (subscription, key) unique constraint, returning only the rows it inserted: of two
  checks racing, exactly one decides about each entry. :func:`attach_job` then moves an
  entry from ``pending`` with a guard, in the transaction that inserts its job.
- :func:`add_checks` makes the check jobs of subscriptions whose rows the caller holds
  (the tick's claim, "check now"), at most one active check each (also a partial
  unique index, ``ux_jobs_active_check``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.db import jobs as job_rows
from service.db.feeds import EntryState, Subscription, SubscriptionEntry
from service.db.models import Artifact, Job
from service.db.sql import NOW
from service.domain.states import ACTIVE, Kind, Step

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from sqlmodel import Session

_NEXT = NOW() + sa.func.make_interval(0, 0, 0, 0, 0, 0, Subscription.interval_s)


def _returning(session: Session, stmt: Any) -> list[Subscription]:
    options = {"synchronize_session": False, "populate_existing": True}
    rows = session.execute(stmt.returning(Subscription).execution_options(**options))
    return list(rows.scalars())


def insert(session: Session, sub: Subscription) -> Subscription:
    session.add(sub)
    session.flush()
    session.refresh(sub)
    return sub


def get(session: Session, sub_id: uuid.UUID, client_id: uuid.UUID | None) -> Subscription | None:
    """One subscription; ``client_id`` None reads any client's (admins, workers)."""
    stmt = sa.select(Subscription).where(Subscription.id == sub_id)
    if client_id is not None:
        stmt = stmt.where(Subscription.client_id == client_id)
    return session.execute(stmt.execution_options(populate_existing=True)).scalars().first()


def page(
    session: Session,
    client_id: uuid.UUID | None,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Subscription]:
    """Newest first; ``client_id`` None lists every client's."""
    stmt = sa.select(Subscription)
    if client_id is not None:
        stmt = stmt.where(Subscription.client_id == client_id)
    if after is not None:
        stmt = stmt.where(sa.tuple_(Subscription.created_at, Subscription.id) < after)
    stmt = stmt.order_by(Subscription.created_at.desc(), Subscription.id.desc()).limit(limit)
    return list(session.execute(stmt).scalars())


def count_for_client(session: Session, client_id: uuid.UUID) -> int:
    stmt = sa.select(sa.func.count()).where(Subscription.client_id == client_id)
    return int(session.execute(stmt).scalar_one())


def update(
    session: Session, sub_id: uuid.UUID, client_id: uuid.UUID, values: dict[str, Any]
) -> Subscription | None:
    stmt = (
        sa.update(Subscription)
        .where(Subscription.id == sub_id, Subscription.client_id == client_id)
        .values(**values, updated_at=NOW())
    )
    found = _returning(session, stmt)
    return found[0] if found else None


def delete(session: Session, sub_id: uuid.UUID, client_id: uuid.UUID) -> list[uuid.UUID] | None:
    """Remove the subscription and its entries; the ids of the jobs it made (None: no such)."""
    jobs = sa.select(SubscriptionEntry.job_id).where(
        SubscriptionEntry.subscription_id == sub_id, SubscriptionEntry.job_id.is_not(None)
    )
    made = list(session.execute(jobs).scalars())
    gone = session.execute(
        sa.delete(Subscription)
        .where(Subscription.id == sub_id, Subscription.client_id == client_id)
        .returning(Subscription.id)
    ).first()
    return made if gone is not None else None


def claim_due(session: Session, limit: int) -> list[tuple[Subscription, datetime]]:
    """Take up to ``limit`` due, unpaused subscriptions and schedule their next check;
    each with the time it was due (for the lag metric)."""
    due = (
        sa.select(Subscription.id, Subscription.next_check_at.label("due_at"))
        .where(Subscription.paused_at.is_(None), Subscription.next_check_at <= NOW())
        .order_by(Subscription.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    stmt = (
        sa.update(Subscription)
        .where(Subscription.id == due.c.id)
        .values(next_check_at=_NEXT, last_due_at=due.c.due_at, updated_at=NOW())
        .returning(Subscription, due.c.due_at)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def claim_now(session: Session, sub_id: uuid.UUID, client_id: uuid.UUID) -> Subscription | None:
    """``check now``: schedule the next check one interval from now (the check runs now)."""
    stmt = (
        sa.update(Subscription)
        .where(Subscription.id == sub_id, Subscription.client_id == client_id)
        .values(next_check_at=_NEXT, last_due_at=NOW(), updated_at=NOW())
    )
    found = _returning(session, stmt)
    return found[0] if found else None


def add_checks(session: Session, subs: list[Subscription], max_attempts: int) -> list[Job]:
    """A queued check job for each subscription that has no active one; the jobs made.

    The caller holds the subscriptions' rows (``claim_due``, ``claim_now``), so two
    callers cannot both find a subscription without a check.
    """
    if not subs:
        return []
    busy = set(
        session.execute(
            sa.select(Job.subscription_id).where(
                Job.subscription_id.in_([s.id for s in subs]), _active_check()
            )
        ).scalars()
    )
    made = [
        Job(
            client_id=sub.client_id,
            kind=Kind.CHECK.value,
            subscription_id=sub.id,
            url=sub.url,
            step=Step.CHECK.value,
            max_attempts=max_attempts,
        )
        for sub in subs
        if sub.id not in busy
    ]
    job_rows.insert_many(session, made)
    return made


def active_check(session: Session, sub_id: uuid.UUID) -> Job | None:
    """The subscription's check that is queued, running or retrying, if any."""
    stmt = sa.select(Job).where(Job.subscription_id == sub_id, _active_check())
    return session.execute(stmt).scalars().first()


def _active_check() -> Any:
    return sa.and_(Job.kind == Kind.CHECK.value, Job.status.in_([s.value for s in ACTIVE]))


def latest_checks(session: Session, sub_ids: list[uuid.UUID]) -> dict[uuid.UUID, Job]:
    """Each subscription's newest check job, for a whole page in one statement (one index
    probe per subscription, however many checks it has had)."""
    if not sub_ids:
        return {}
    check = sa.orm.aliased(Job)
    newest = (
        sa.select(check.id)
        .where(check.subscription_id == Subscription.id)
        .order_by(check.created_at.desc(), check.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    of_page = sa.select(newest).where(Subscription.id.in_(sub_ids))
    stmt = sa.select(Job).where(Job.id.in_(of_page))
    found = session.execute(stmt).scalars()
    return {job.subscription_id: job for job in found if job.subscription_id is not None}


def record_check(
    session: Session, sub_id: uuid.UUID, *, error: str | None, max_failures: int
) -> Subscription | None:
    """Write a check's outcome; the ``max_failures``-th failure in a row pauses it, saying why."""
    if error is None:
        values: dict[str, Any] = {"consecutive_failures": 0, "last_error": None}
    else:
        failures = Subscription.consecutive_failures + 1
        pausing = failures >= max_failures
        values = {
            "consecutive_failures": failures,
            "last_error": error,
            "paused_at": sa.case(
                (pausing, sa.func.coalesce(Subscription.paused_at, NOW())),
                else_=Subscription.paused_at,
            ),
            "paused_reason": sa.case(
                (pausing, f"paused after {max_failures} failed checks in a row: {error}"),
                else_=Subscription.paused_reason,
            ),
        }
    stmt = (
        sa.update(Subscription)
        .where(Subscription.id == sub_id)
        .values(
            last_checked_at=NOW(),
            last_outcome="ok" if error is None else "failed",
            updated_at=NOW(),
            **values,
        )
    )
    found = _returning(session, stmt)
    return found[0] if found else None


def has_entries(session: Session, sub_id: uuid.UUID) -> bool:
    stmt = sa.select(sa.exists().where(SubscriptionEntry.subscription_id == sub_id))
    return bool(session.execute(stmt).scalar_one())


def known_keys(session: Session, sub_id: uuid.UUID, keys: list[str]) -> set[str]:
    """Which of ``keys`` this subscription has seen: one statement, keys bound as one array."""
    if not keys:
        return set()
    stmt = sa.select(SubscriptionEntry.key).where(
        SubscriptionEntry.subscription_id == sub_id,
        SubscriptionEntry.key == sa.func.any(sa.cast(sa.bindparam("keys"), ARRAY(sa.Text))),
    )
    return set(session.execute(stmt, {"keys": keys}).scalars())


def record_entries(session: Session, rows: list[dict[str, Any]]) -> list[SubscriptionEntry]:
    """Insert the entries not seen before, in one statement; the ones it inserted."""
    if not rows:
        return []
    stmt = (
        pg_insert(SubscriptionEntry)
        .values(rows)
        .on_conflict_do_nothing(constraint="uq_subscription_entries_key")
        .returning(SubscriptionEntry)
    )
    return list(session.execute(stmt).scalars())


def pending(session: Session, sub_id: uuid.UUID, limit: int) -> list[SubscriptionEntry]:
    """Entries waiting for admission, oldest first (new ones in listing order)."""
    stmt = (
        sa.select(SubscriptionEntry)
        .where(
            SubscriptionEntry.subscription_id == sub_id,
            SubscriptionEntry.state == EntryState.PENDING.value,
        )
        .order_by(SubscriptionEntry.id)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def attach_job(
    session: Session, entry_id: int, job_id: uuid.UUID, state: EntryState, reason: str | None
) -> bool:
    """Move a pending entry to ``state`` with its job; False when another check did first."""
    stmt = (
        sa.update(SubscriptionEntry)
        .where(
            SubscriptionEntry.id == entry_id,
            SubscriptionEntry.state == EntryState.PENDING.value,
        )
        .values(state=state.value, job_id=job_id, reason=reason)
        .returning(SubscriptionEntry.id)
    )
    return session.execute(stmt).first() is not None


def note_pending(session: Session, entry_id: int, reason: str) -> None:
    """Say why a pending entry still waits (a quota, the active-jobs limit)."""
    session.execute(
        sa.update(SubscriptionEntry)
        .where(SubscriptionEntry.id == entry_id, SubscriptionEntry.state == "pending")
        .values(reason=reason)
    )


def entries(
    session: Session, sub_id: uuid.UUID, *, after: int | None, limit: int
) -> list[tuple[SubscriptionEntry, str | None]]:
    """Entries newest seen first, each with its job's status (None: no job, or deleted)."""
    stmt = (
        sa.select(SubscriptionEntry, Job.status)
        .outerjoin(Job, Job.id == SubscriptionEntry.job_id)
        .where(SubscriptionEntry.subscription_id == sub_id)
    )
    if after is not None:
        stmt = stmt.where(SubscriptionEntry.id < after)
    stmt = stmt.order_by(SubscriptionEntry.id.desc()).limit(limit)
    return [(entry, status) for entry, status in session.execute(stmt)]


def summaries(session: Session, sub_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Per subscription: entries seen, its jobs by status, the bytes their files take and
    its newest check job, in three queries for a whole page."""
    out: dict[uuid.UUID, dict[str, Any]] = {
        s: {"entries_seen": 0, "jobs": {}, "bytes_stored": 0, "check": None} for s in sub_ids
    }
    if not sub_ids:
        return out
    for sub_id, check in latest_checks(session, sub_ids).items():
        out[sub_id]["check"] = check
    E = SubscriptionEntry
    seen = (
        sa.select(E.subscription_id, Job.status, sa.func.count(E.id))
        .outerjoin(Job, Job.id == E.job_id)
        .where(E.subscription_id.in_(sub_ids))
        .group_by(E.subscription_id, Job.status)
    )
    for sub_id, status, n in session.execute(seen):
        out[sub_id]["entries_seen"] += int(n)
        if status is not None:
            out[sub_id]["jobs"][status] = int(n)
    stored = (
        sa.select(E.subscription_id, sa.func.coalesce(sa.func.sum(Artifact.size), 0))
        .join(Artifact, Artifact.job_id == E.job_id)
        .where(E.subscription_id.in_(sub_ids))
        .group_by(E.subscription_id)
    )
    for sub_id, size in session.execute(stored):
        out[sub_id]["bytes_stored"] = int(size)
    return out


def surplus_files(session: Session, sub_id: uuid.UUID, keep: int) -> list[tuple[uuid.UUID, str]]:
    """The files of this subscription's jobs beyond the newest ``keep``: (job id, path)."""
    E = SubscriptionEntry
    stmt = (
        sa.select(Artifact.job_id, Artifact.path)
        .join(E, E.job_id == Artifact.job_id)
        .where(E.subscription_id == sub_id)
        .order_by(Artifact.created_at.desc(), Artifact.job_id.desc())
        .offset(keep)
    )
    return [(job_id, path) for job_id, path in session.execute(stmt)]


def forget_files(session: Session, job_ids: list[uuid.UUID], reason: str) -> list[uuid.UUID]:
    """Delete these jobs' artifact rows and note on each job why its file went; the jobs
    that had one."""
    gone = list(
        session.execute(
            sa.delete(Artifact).where(Artifact.job_id.in_(job_ids)).returning(Artifact.job_id)
        ).scalars()
    )
    if gone:
        note = sa.func.jsonb_build_object("file_removed", reason, "file_removed_at", NOW())
        session.execute(
            sa.update(Job)
            .where(Job.id.in_(gone))
            .values(info=Job.info.op("||")(note), updated_at=NOW())
        )
    return gone
