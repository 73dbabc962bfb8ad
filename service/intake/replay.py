"""Replay ended jobs from their rows: one job, or every job matching a filter.

Rows are the source of replay, never the dead-letter queue: a replayed job goes
back to ``queued`` with a fresh attempt budget and is published again.

A playlist is replayed through its entries. Retrying an ended parent queues the
entries its ending calls for (``domain/playlists.py: ENTRIES_RETRIED``); any
entry queued again, that way or on its own, reopens its ended parent, which
then waits for it and ends again by what its entries did. All of it happens in
one transaction, entries first and parent last, as a finishing entry locks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from service.db import jobs as job_rows
from service.db import replay as replay_rows
from service.db import trees as tree_rows
from service.db.replay import EndedJobs
from service.dispatch import publish_or_record
from service.domain.states import Kind, Status
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.intake.admission import check_replayed, lock_clients
from service.intake.clients import is_admin
from service.intake.jobs import JobView, get

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from service.db import Session
    from service.db.models import Client, Job
    from service.runtime import Runtime

log = structlog.get_logger(__name__)

REPLAYABLE = (Status.FAILED, Status.CANCELLED)


def retry_one(rt: Runtime, client: Client, job_id: uuid.UUID) -> JobView:
    """Queue a failed or cancelled job again; for a playlist, the entries it calls for."""
    with rt.db.session() as session:
        job = job_rows.get_for_client(session, job_id, client.id)
        if job is None:
            raise NotFound("no such job")
        if Status(job.status) not in REPLAYABLE:
            raise Conflict(
                f"only failed or cancelled jobs can be retried; this one is {job.status}"
            )
        moved = _replay(rt, session, EndedJobs(REPLAYABLE, job_id=job.id))
        if not moved and job_rows.get(session, job.id) is None:
            raise NotFound("no such job")
        if not moved:
            raise Conflict(_why_not(session, job))
    _publish(rt, moved)
    return get(rt, client, job_id)


def _why_not(session: Session, job: Job) -> str:
    """Why a retry of an ended job queued nothing."""
    if job.kind == Kind.CHECK.value:
        return "a subscription's check is not retried; ask its subscription for a new check"
    parent = job_rows.get(session, job.parent_id) if job.parent_id is not None else None
    if parent is not None and parent.status == Status.SUCCEEDED.value:
        return "its playlist already succeeded; submit this entry's URL as a new job"
    if tree_rows.child_ids(session, job.id):
        return "no entry of this playlist is left to retry"
    return "the job changed state meanwhile; read it again"


def retry_many(
    rt: Runtime,
    client: Client,
    *,
    status: Status = Status.FAILED,
    error_class: str | None = None,
    since: datetime | None = None,
    client_id: uuid.UUID | None = None,
) -> int:
    """Queue again every matching ended job of the caller (an admin: anyone's); returns how many."""
    if status not in REPLAYABLE:
        raise InvalidInput("status must be failed or cancelled")
    if client_id is not None and client_id != client.id and not is_admin(client):
        raise Forbidden("only an admin key may retry another client's jobs")
    scope = client_id if client_id is not None else (None if is_admin(client) else client.id)
    ended = EndedJobs((status,), client_id=scope, error_class=error_class, finished_since=since)
    with rt.db.session() as session:
        moved = _replay(rt, session, ended)
    _publish(rt, moved)
    log.info("jobs replayed", count=len(moved), status=status.value, error_class=error_class)
    return len(moved)


def _replay(rt: Runtime, session: Session, ended: EndedJobs) -> list[Job]:
    """Queue the matching jobs and the entries of matching playlists; reopen their parents.

    A retry is admitted like a submission: its clients' rows are locked first, and a retry
    that would put one past ``max_active_jobs`` or its storage quota is refused whole
    (:class:`QuotaExceeded`, a 403), nothing queued.
    """
    lock_clients(session, replay_rows.clients_of(session, ended))
    moved = replay_rows.replay(session, ended)
    tree_rows.reopen_parents(session, {j.parent_id for j in moved if j.parent_id is not None})
    check_replayed(rt, session, moved)
    return moved


def _publish(rt: Runtime, jobs: list[Job]) -> None:
    for job in jobs:
        publish_or_record(rt, job)
