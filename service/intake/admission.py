"""What a submission passes before its job is inserted: its Idempotency-Key, ``dedupe``,
and the client's quotas.

:func:`insert` decides in the transaction that inserts the job, so what it decides
commits together with the job row, or not at all: a refused submission leaves
nothing behind, not even a claimed key. Locks are always taken in the same order (the
client's row, then the key's), so concurrent submissions queue up instead of
deadlocking.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from service.db import artifacts as artifact_rows
from service.db import clients as client_rows
from service.db import control as control_rows
from service.db import idempotency as key_rows
from service.db import jobs as job_rows
from service.domain.idempotency import KeyRejected, fingerprint, parse_key
from service.errors import BadRequest, KeyReused, QuotaExceeded
from service.intake.clients import limits_of

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from service.db import Session
    from service.db.models import Client, Job
    from service.domain.quotas import ClientLimits
    from service.runtime import Runtime


class AlreadyAccepted(Exception):
    """The request names a job accepted before: its Idempotency-Key was used with the same
    request, or ``dedupe`` found a succeeded twin. The caller answers with that job."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} was accepted before")
        self.job = job


def insert(
    rt: Runtime,
    client: Client,
    job: Job,
    *,
    idempotency_key: str | None,
    dedupe: bool,
    then: Callable[[Any], None] | None = None,
) -> Job:
    """Insert ``job`` and commit, or raise :class:`AlreadyAccepted` with the earlier job
    this request names; returns the job as stored. A job inserted while its queue or
    client is paused is held.

    A plain submission (no key, no ``dedupe``, no quota set, no ``then``) is one
    statement and one commit: the insert with the pause check folded in.

    ``then(session)`` runs after the insert, in the same transaction: what it writes
    commits with the job, and whatever it raises rolls the job back (a subscription
    links its entry to the job this way, exactly once).

    Raises :class:`KeyReused` for a live key sent with another request, and
    :class:`QuotaExceeded` when a new job would pass the client's quotas. A replay or
    a twin is answered even at a full quota: it creates nothing.
    """
    key = _parse(idempotency_key)
    limits = limits_of(rt.settings, client)
    if key is None and not dedupe and then is None and not _has_quota(limits):
        return job_rows.insert_unless_paused(rt.db.direct, job)
    with rt.db.session() as session:
        if limits.max_active_jobs is not None:
            client_rows.lock(session, client.id)
        earlier = (
            job_rows.succeeded_twin(session, client.id, job.url, job.options) if dedupe else None
        )
        if key is not None:
            request_hash = _request_hash(job, dedupe=dedupe)
            ttl = timedelta(seconds=rt.settings.idempotency_ttl_s)
            named = (earlier or job).id
            if not key_rows.claim(
                session, client.id, key, request_hash=request_hash, job_id=named, ttl=ttl
            ):
                earlier = _holder_job(session, client, key, request_hash)
        if earlier is None:
            _check_quotas(session, limits, client)
            # A paused queue or client holds the job from the start: no message is sent.
            held = control_rows.pause_reason(session, job.step, client.id)
            job.held = held.value if held is not None else None
            job_rows.insert(session, job)
            if then is not None:
                then(session)
    if earlier is not None:
        raise AlreadyAccepted(earlier)
    return job


def _parse(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return parse_key(raw)
    except KeyRejected as exc:
        raise BadRequest(str(exc)) from exc


def _request_hash(job: Job, *, dedupe: bool) -> str:
    """The request as the job stores it (normalized), so equal meaning is an equal hash."""
    return fingerprint(
        {
            "url": job.url,
            "options": job.options,
            "metadata": job.user_metadata,
            "priority": job.priority,
            "callback_url": job.callback_url,
            "dedupe": dedupe,
        }
    )


def _holder_job(
    session: Session,
    client: Client,
    key: str,
    request_hash: str,
) -> Job:
    held = key_rows.holder(session, client.id, key)
    assert held is not None  # claim() left it locked
    if held.request_hash != request_hash:
        raise KeyReused(
            "this Idempotency-Key was used with a different request; "
            "use a new key for a new request"
        )
    earlier = job_rows.get_for_client(session, held.job_id, client.id)
    assert earlier is not None  # the key goes when its job is deleted (cascade)
    return earlier


def check_replayed(rt: Runtime, session: Session, moved: list[Job]) -> None:
    """Refuse a retry that puts a client past its quotas; the caller's transaction rolls it
    all back. Its clients' rows were locked before its jobs (:func:`lock_clients`), so no
    submission or retry of theirs counts at the same time.

    A retry of jobs of several clients (an admin's) is refused whole when one is past.
    """
    for client_id in sorted({job.client_id for job in moved}):
        client = client_rows.get(session, client_id)
        if client is None:
            continue
        limits = limits_of(rt.settings, client)
        retried = sum(1 for job in moved if job.client_id == client_id)
        most = limits.max_active_jobs
        if most is not None and (active := job_rows.count_active(session, client_id)) > most:
            whose = "" if client_id == moved[0].client_id else f" (client {client_id})"
            raise QuotaExceeded(
                f"this retry would queue {retried} jobs{whose} with {active - retried} already "
                f"queued, retrying or running; the limit is {most} (max_active_jobs): wait for "
                "some to end, or retry fewer (filter by error_class or since)",
                limit="max_active_jobs",
                value=most,
                current=active - retried,
            )
        quota = limits.storage_quota_bytes
        if quota is not None and (used := artifact_rows.bytes_stored(session, client_id)) >= quota:
            raise QuotaExceeded(
                f"your files take {used} bytes; the limit is {quota} (storage_quota_bytes): "
                "delete some jobs to make room",
                limit="storage_quota_bytes",
                value=quota,
                current=used,
            )


def lock_clients(session: Session, client_ids: list[uuid.UUID]) -> None:
    """Lock clients' rows in id order, as a submission locks its own: before any job."""
    for client_id in sorted(client_ids):
        client_rows.lock(session, client_id)


def _has_quota(limits: ClientLimits) -> bool:
    """Whether a quota checked at submit applies (then the client's row is locked and its
    use counted before the insert)."""
    return any(getattr(limits, name) is not None for name, _, _ in _QUOTAS)


def _check_quotas(
    session: Session,
    limits: ClientLimits,
    client: Client,
) -> None:
    """Refuse a new job when the client is at one of its quotas."""
    for name, usage, message in _QUOTAS:
        most = getattr(limits, name)
        if most is None:
            continue
        used = usage(session, client.id)
        if used >= most:
            raise QuotaExceeded(
                message.format(used=used, most=most, name=name),
                limit=name,
                value=most,
                current=used,
            )


#: Each quota checked at submit: its name in ClientLimits, how to count its use, what to say.
_QUOTAS = (
    (
        "max_active_jobs",
        job_rows.count_active,
        "you have {used} jobs queued, retrying or running; the limit is {most} ({name}): "
        "wait for some to end, or cancel some",
    ),
    (
        "storage_quota_bytes",
        artifact_rows.bytes_stored,
        "your files take {used} bytes; the limit is {most} ({name}): delete some jobs to make room",
    ),
)
