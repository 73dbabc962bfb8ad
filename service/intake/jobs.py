"""Use cases behind the API: submit, read, list, cancel, delete a job.

Every read and write filters by the calling client: another client's job does
not exist as far as the caller can tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from service.db import artifacts as artifact_rows
from service.db import attempts as attempt_rows
from service.db import deliveries as delivery_rows
from service.db import events as event_rows
from service.db import jobs as job_rows
from service.db import trees as tree_rows
from service.dispatch import publish_new
from service.domain import cursors
from service.domain.control import tier_max_priority
from service.domain.options import JobOptions, Preset, normalize
from service.domain.states import Kind, Status, Step, is_terminal
from service.domain.urls import UrlRejected, normalize_url, refuse_non_public_literal
from service.errors import BadRequest, Conflict, InvalidInput, NotFound
from service.intake import admission
from service.webhooks.endpoints import check_url
from service.work import storage
from service.work.ending import ending
from service.work.room import give_room

if TYPE_CHECKING:
    import uuid
    from datetime import datetime
    from pathlib import Path

    from service.db.models import Artifact, Client, Job, JobAttempt, JobEvent
    from service.domain.playlists import Children
    from service.runtime import Runtime


log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class JobView:
    """A job as its owner sees it: the row, its file and, for a parent, its children."""

    job: Job
    artifact: Artifact | None = None
    children: Children | None = None
    #: The status of its latest webhook delivery; None when none was made.
    callback_status: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[JobView]
    next_cursor: str | None


def submit(
    rt: Runtime,
    client: Client,
    *,
    url: str,
    preset: Preset | None = None,
    options: JobOptions | None = None,
    priority: int = 0,
    metadata: dict[str, Any] | None = None,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    dedupe: bool = False,
) -> Job:
    """Insert the job, commit, then publish; a failed publish leaves the row queued, saying so.

    The broker's confirm is written to the row's ``published_at`` shortly after, in a
    batch off the request path (``dispatch.publish_new``).

    Raises :class:`admission.AlreadyAccepted` instead when the Idempotency-Key or
    ``dedupe`` names an earlier job (see ``service/intake/admission.py``).
    """
    try:
        clean_url = normalize_url(url)
        refuse_non_public_literal(clean_url, rt.settings.egress_policy)
    except UrlRejected as exc:
        raise InvalidInput(str(exc)) from exc
    clean_callback = check_url(rt, callback_url) if callback_url is not None else None
    highest = tier_max_priority(client.tier, rt.settings.tier_priorities)
    if not 0 <= priority <= highest:
        raise InvalidInput(
            f"priority must be between 0 and {highest} for a client of tier {client.tier!r}"
        )
    job = job_rows.new(
        client_id=client.id,
        url=clean_url,
        options=normalize(preset, options).model_dump(mode="json"),
        user_metadata=metadata or {},
        priority=priority,
        step=Step.PROBE.value,
        max_attempts=rt.settings.max_retries + 1,
        callback_url=clean_callback,
    )
    stored = admission.insert(rt, client, job, idempotency_key=idempotency_key, dedupe=dedupe)
    if stored.held is not None:
        return stored
    return publish_new(rt, stored)


def get(rt: Runtime, client: Client, job_id: uuid.UUID) -> JobView:
    with rt.db.session() as session:
        job = job_rows.get_for_client(session, job_id, client.id)
        if job is None:
            raise NotFound("no such job")
        artifact = artifact_rows.for_job(session, job.id)
        children = tree_rows.children(session, [job.id]).get(job.id)
        callback_status = delivery_rows.latest_status(session, [job.id]).get(job.id)
    return JobView(job=job, artifact=artifact, children=children, callback_status=callback_status)


def list_jobs(
    rt: Runtime,
    client: Client,
    *,
    status: Status | None = None,
    parent_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
    text: str | None = None,
    kind: Kind = Kind.DOWNLOAD,
) -> Page:
    """One page, newest first; ``next_cursor`` continues after its last item; ``text``
    keeps the jobs whose address or title contains it; ``kind``: downloads, or a
    subscription's checks."""
    limit = max(1, min(limit, rt.settings.page_size_max))
    after = decode_cursor(cursor) if cursor else None
    with rt.db.session() as session:
        rows = job_rows.list_for_client(
            session,
            client.id,
            status=status,
            parent_id=parent_id,
            after=after,
            limit=limit + 1,
            text=text.strip() if text else None,
            kind=kind,
        )
        page = rows[:limit]
        trees = tree_rows.children(session, [j.id for j in page])
        files = {a.job_id: a for a in artifact_rows.for_jobs(session, [j.id for j in page])}
        hooks = delivery_rows.latest_status(session, [j.id for j in page])
    last = page[-1] if len(rows) > limit else None
    return Page(
        items=[
            JobView(
                job=j,
                artifact=files.get(j.id),
                children=trees.get(j.id),
                callback_status=hooks.get(j.id),
            )
            for j in page
        ],
        next_cursor=encode_cursor(last) if last is not None else None,
    )


def cancel(rt: Runtime, client: Client, job_id: uuid.UUID) -> JobView:
    """Stop a job: a queued one never starts, a running one stops at its next heartbeat."""
    with ending(rt) as ends:
        job = job_rows.get_for_client(ends.session, job_id, client.id)
        if job is None:
            raise NotFound("no such job")
        if is_terminal(Status(job.status)):
            raise Conflict(f"the job already ended ({job.status}); nothing to cancel")
        if ends.cancel(job.id) is None:
            raise Conflict("the job changed state meanwhile; read it again")
    _room_freed(rt, job.client_id)
    return get(rt, client, job_id)


def delete(rt: Runtime, client: Client, job_id: uuid.UUID) -> None:
    """Remove the job, its children and their files; a worker still on it finds the row gone."""
    with ending(rt) as ends:
        job = job_rows.get_for_client(ends.session, job_id, client.id)
        if job is None:
            raise NotFound("no such job")
        children = tree_rows.delete_tree(ends.session, job.id)
        if job.parent_id is not None:
            ends.entry_left(job.parent_id)
    for gone in [job.id, *children]:
        storage.remove_job_files(rt.settings.storage_dir, job.client_id, gone)
    _room_freed(rt, job.client_id)


def _room_freed(rt: Runtime, client_id: uuid.UUID) -> None:
    """A cancel or delete made room under ``max_active_jobs``: the client's entries held
    ``client_full`` get it now, as after an attempt. The cancel stands if this fails (the
    sweep releases them then)."""
    try:
        give_room(rt, client_id)
    except Exception:
        log.warning("could not give held entries room; the sweep will", exc_info=True)


def attempts(rt: Runtime, client: Client, job_id: uuid.UUID) -> list[JobAttempt]:
    with rt.db.session() as session:
        if job_rows.get_for_client(session, job_id, client.id) is None:
            raise NotFound("no such job")
        return attempt_rows.for_job(session, job_id)


#: State changes a job's page lists; a job that changed more often shows its first ones.
HISTORY_MAX = 200


def history(rt: Runtime, client: Client, job_id: uuid.UUID) -> list[JobEvent]:
    """The job's changes of status and phase, oldest first: the rows a reconnecting
    event stream replays, read here for a person looking at one job."""
    with rt.db.session() as session:
        if job_rows.get_for_client(session, job_id, client.id) is None:
            raise NotFound("no such job")
        return event_rows.since(session, client.id, 0, job_id=job_id, limit=HISTORY_MAX)


def file_of(rt: Runtime, client: Client, job_id: uuid.UUID) -> tuple[Artifact, Path]:
    """The artifact of a succeeded job and where its file is."""
    view = get(rt, client, job_id)
    if view.artifact is None:
        raise NotFound(f"the job has no file (status {view.job.status})")
    path = storage.resolve(rt.settings.storage_dir, view.artifact.path)
    if not path.is_file():
        raise NotFound("the job's file is missing from storage")
    return view.artifact, path


def encode_cursor(job: Job) -> str:
    return cursors.encode(job.created_at, job.id)


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Parse a cursor from ``next_cursor``; anything else is a :class:`BadRequest`."""
    try:
        return cursors.decode(cursor)
    except cursors.CursorRejected as exc:
        raise BadRequest(str(exc)) from exc
