"""Rows of ``jobs`` in and out: insert, read a client's jobs, mark a message published
(or stamp it so in the UPDATE that queues it, unless its queue or client is paused).

A plain submission is one statement, :func:`insert_unless_paused` (the pause check
folded into the insert), and its publish is marked later in batches
(:func:`mark_confirmed`).

State changes live in ``transitions``, playlist trees in ``trees``, replay in
``replay`` and the sweeps' queries in ``finders``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from service.db.direct import compiled
from service.db.models import TIMESTAMP, Client, Job, QueueControl
from service.db.sql import NOW, UUIDS, detached, returning_all, returning_one, transient
from service.domain.control import Hold
from service.domain.errors import ErrorClass
from service.domain.sites import family_of_url
from service.domain.states import ACTIVE, Kind, Phase, Status

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence
    from datetime import datetime

    from sqlmodel import Session

    from service.db.direct import Direct


def new(**values: Any) -> Job:
    """A new job, as ``Job(**values)`` makes it but at a fraction of the cost (the
    submission's hot path: ``db/sql.py: transient``)."""
    return transient(Job, values)


def insert(session: Session, job: Job) -> Job:
    insert_many(session, [job])
    return job


def insert_many(session: Session, jobs: list[Job]) -> None:
    """Add jobs, each with its site family (what per-site limits, pacing and breakers count)
    filled in."""
    for job in jobs:
        job.site = job.site or family_of_url(job.url)
    session.add_all(jobs)
    session.flush()


_JOBS = Job.__table__
_QUEUES = QueueControl.__table__
_CLIENTS = Client.__table__


def _paused_at(table: sa.Table, key: sa.Column[Any], param: str) -> Any:
    """The row's ``paused_at``, read ``FOR SHARE``: a pause (an UPDATE of that row) waits
    until the transaction that read it ends, and every later one sees it."""
    read = sa.select(table.c.paused_at).where(key == sa.bindparam(param))
    return read.with_for_update(read=True).scalar_subquery()


#: Why a new job waits from the start, as ``control.pause_reason`` says: its queue is
#: paused, else its client is (the client's row is read only when the queue's is not).
_HELD_IF_PAUSED = sa.case(
    (
        _paused_at(_QUEUES, _QUEUES.c.queue, "held_queue").is_not(None),
        Hold.QUEUE_PAUSED.value,
    ),
    (
        _paused_at(_CLIENTS, _CLIENTS.c.id, "held_client").is_not(None),
        Hold.CLIENT_PAUSED.value,
    ),
    else_=sa.null(),
)
_INSERT_UNLESS_PAUSED = sa.insert(_JOBS).values(held=_HELD_IF_PAUSED).returning(*_JOBS.c)


def insert_unless_paused(direct: Direct, job: Job) -> Job:
    """Insert a new job, held from the start when its queue or client is paused (no
    message is to be sent then), in one statement; returns the row as stored.

    The same decision as ``control.pause_reason`` followed by :func:`insert`, with the
    same share locks, for the plain submission's one-statement path: prepared, in
    autocommit (the statement is its own transaction), the direct way (``db/direct.py``).
    """
    job.site = job.site or family_of_url(job.url)
    values: dict[str, Any] = {"held_queue": job.step, "held_client": job.client_id}
    for column, (name, as_json) in _INSERTED.items():
        value = getattr(job, name)
        if value is not None:
            values[column.name] = _json(value) if as_json else value
        elif column.default is not None:
            values[column.name] = None  # said outright, or SQLAlchemy's default would apply
    row = direct.one(compiled(_INSERT_UNLESS_PAUSED, tuple(values)), values, writes=True)
    assert row is not None  # INSERT … RETURNING returns the row it inserted
    return detached(Job, row)


def _json(value: Any) -> str:
    """A JSON value as text for a ``::JSONB`` parameter (psycopg's ``Jsonb`` wrapper built a
    dumper per value and execute, a visible share of a submission's CPU)."""
    return json.dumps(value, separators=(",", ":"))


#: The columns a submission may set (every one but ``held``): their attribute names, and
#: whether the value is JSON (bound as ``jsonb``). A column left None is left out of the
#: INSERT (its server default or NULL applies): fewer parameters to send.
_INSERTED = {
    column: (sa.inspect(Job).get_property_by_column(column).key, isinstance(column.type, sa.JSON))
    for column in _JOBS.c
    if column.name != "held"
}


#: The jobs confirmed, and when: ``unnest`` of two arrays bound as two parameters.
_CONFIRMED = (
    sa.func.unnest(sa.bindparam("ids", type_=UUIDS), sa.bindparam("ats", type_=ARRAY(TIMESTAMP)))
    .table_valued("id", "at")
    .render_derived(name="confirmed")
)
_MARK_CONFIRMED = (
    sa.update(_JOBS)
    .where(
        _JOBS.c.id == _CONFIRMED.c.id,
        _JOBS.c.status == Status.QUEUED.value,
        _JOBS.c.published_at.is_(None),
    )
    .values(published_at=_CONFIRMED.c.at, updated_at=NOW())
)


def mark_confirmed(direct: Direct, confirmed: Sequence[tuple[uuid.UUID, datetime]]) -> int:
    """Record when the broker confirmed each new job's message, many jobs in one UPDATE.

    Only rows still queued and never marked: a job a worker took meanwhile, or one
    published again since, keeps what it says. Returns how many rows were marked.
    """
    if not confirmed:
        return 0
    ids, ats = zip(*confirmed, strict=True)
    return direct.changed(compiled(_MARK_CONFIRMED), {"ids": list(ids), "ats": list(ats)})


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
    text: str | None = None,
    kind: Kind = Kind.DOWNLOAD,
) -> list[Job]:
    """Newest first; ``after`` is the (created_at, id) of the last row already seen.
    Jobs of one ``kind``: downloads unless checks are asked for.

    ``text`` keeps the jobs whose address or title contains it (any case). It filters
    the client's rows as the index walks them newest first, so a rare word reads
    further down the client's jobs before a page fills: bounded by the client's size,
    not the table's.
    """
    stmt = sa.select(Job).where(Job.client_id == client_id, Job.kind == kind.value)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        title = Job.info["title"].as_string()
        stmt = stmt.where(
            sa.or_(Job.url.ilike(pattern, escape="\\"), title.ilike(pattern, escape="\\"))
        )
    if status is not None:
        stmt = stmt.where(Job.status == status.value)
    if parent_id is not None:
        stmt = stmt.where(Job.parent_id == parent_id)
    if after is not None:
        stmt = stmt.where(sa.tuple_(Job.created_at, Job.id) < sa.tuple_(*after))
    stmt = stmt.order_by(sa.desc(Job.created_at), sa.desc(Job.id)).limit(limit)
    return list(session.execute(stmt).scalars())


def mark_published(session: Session, job_ids: list[uuid.UUID]) -> list[Job]:
    """Record that the doorbell rang; clears a previous publish error. Returns the rows."""
    publish_failed = Job.last_error_class == ErrorClass.PUBLISH_FAILED.value
    stmt = (
        sa.update(Job)
        .where(Job.id.in_(job_ids), Job.status.in_([Status.QUEUED.value, Status.RETRYING.value]))
        .values(
            published_at=NOW(),
            last_error=sa.case((publish_failed, None), else_=Job.last_error),
            last_error_class=sa.case((publish_failed, None), else_=Job.last_error_class),
            updated_at=NOW(),
        )
    )
    return returning_all(session, stmt)


def mark_publish_failed(session: Session, job_id: uuid.UUID, reason: str) -> Job | None:
    """The broker did not take the message: the row says why (the sweep publishes it again)."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.QUEUED.value)
        .values(
            published_at=None,  # a hand-over may have written it before the publish
            last_error=f"publish failed: {reason}",
            last_error_class=ErrorClass.PUBLISH_FAILED.value,
            updated_at=NOW(),
        )
    )
    return returning_one(session, stmt)


def count_active(session: Session, client_id: uuid.UUID) -> int:
    """A client's jobs that are queued, retrying or running, as ``max_active_jobs`` counts them.

    Playlist entries count; a playlist waiting for its entries counts through them (else a
    limit of 1 would let its entries never start), and an entry held ``client_full``
    counts once it is given room. A subscription's checks do not count: a client at its
    limit still has its feeds checked (the entries found then wait for room).
    """
    stmt = sa.select(sa.func.count()).where(
        Job.client_id == client_id,
        Job.kind == Kind.DOWNLOAD.value,
        Job.status.in_([s.value for s in ACTIVE]),
        Job.held.is_distinct_from(Hold.CLIENT_FULL.value),
        Job.phase.is_distinct_from(Phase.AWAITING_CHILDREN.value),
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


def hold_when_paused(queue: str) -> Any:
    """``held`` for a job written into ``queue``: why it may not be sent now (its queue or
    its client is paused) or NULL, as an expression of the row's UPDATE. Both rows are
    read ``FOR SHARE``, as :func:`control.pause_reason` reads them, in the same statement."""
    queue_paused = (
        sa.select(QueueControl.paused_at)
        .where(QueueControl.queue == queue)
        .with_for_update(read=True)
        .scalar_subquery()
    )
    client_paused = (
        sa.select(Client.paused_at)
        .where(Client.id == Job.client_id)
        .with_for_update(read=True)
        .scalar_subquery()
    )
    return sa.case(
        (queue_paused.is_not(None), Hold.QUEUE_PAUSED.value),
        (client_paused.is_not(None), Hold.CLIENT_PAUSED.value),
        else_=sa.null(),
    )


def sent_unless_paused(queue: str) -> dict[str, Any]:
    """Values for a job's UPDATE into ``queue`` that hold it when its queue or client is
    paused (:func:`hold_when_paused`) and otherwise stamp it published, for a caller
    that publishes it right after the commit (``dispatch.publish_stamped``)."""
    held = hold_when_paused(queue)
    return {"held": held, "published_at": sa.case((held.is_(None), NOW()), else_=sa.null())}
