"""Use cases behind the workers: probe a URL, download it, and write every outcome to the row.

Each run claims the row first (a guarded update that also takes a lease and
counts the attempt); a message whose row cannot be claimed is dropped, because
the row has moved on. Outcomes:

* success: the file is stored, an artifact written, the row ``succeeded``;
* :class:`Permanent`: the row ``failed`` with the reason, then the error is raised
  again so Dramatiq dead-letters the message (``.XQ``) without retrying it;
* :class:`LeaseLost`: the job was cancelled, deleted or taken over; nothing written;
* anything else: the row goes to ``retrying`` and the error is raised again, so
  Dramatiq's ``Retries`` middleware schedules the next attempt (or dead-letters it).
"""

from __future__ import annotations

import secrets
from contextlib import closing
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from service import callbacks, clients, storage, worker_metrics
from service.control import release_quietly
from service.db import artifacts as artifact_rows
from service.db import attempts as attempt_rows
from service.db import control as control_rows
from service.db import jobs as job_rows
from service.db.engine import wait_out_outage
from service.db.models import Artifact, Job
from service.domain.control import Hold
from service.domain.options import NormalizedOptions
from service.domain.states import Phase, Status, Step
from service.domain.urls import UrlRejected, normalize_url
from service.errors import LeaseLost, Permanent
from service.jobs import publish_checked, publish_or_record
from service.lease import LeaseKeeper
from service.media.download import YTDLP_VERSION, download
from service.media.limits import Limits
from service.media.probe import probe

if TYPE_CHECKING:
    import uuid

    from structlog.stdlib import BoundLogger

    from service.media.download import Downloaded
    from service.runtime import Runtime

log = structlog.get_logger(__name__)

_RUNNING = (Status.RUNNING,)
_GONE = "the job was cancelled, deleted or taken over"


def _outcome(moved: Job | None) -> str:
    """An attempt whose final write matched no row was abandoned, not successful."""
    return "succeeded" if moved is not None else "abandoned"


def run_probe(rt: Runtime, job_id: uuid.UUID) -> None:
    """Find out what the URL is: hand a single item to download, expand a playlist into children."""
    claimed = _claim(rt, job_id, Step.PROBE, Phase.PROBING)
    if claimed is None:
        return
    job, owner, bound, limited = claimed
    try:
        _probe(rt, job, owner, bound)
    finally:
        if limited:
            release_quietly(rt)  # this attempt's slot is free: a held job may start


def _probe(rt: Runtime, job: Job, owner: str, bound: BoundLogger) -> None:
    try:
        found = probe(
            job.url, max_entries=rt.settings.playlist_max_entries, limits=_limits(rt, job)
        )
    except Permanent as exc:
        _fail(rt, job, owner, exc, bound)
        raise
    except BaseException as exc:
        _release_for_retry(rt, job, owner, exc, bound)
        raise
    if not found.is_playlist:
        with rt.db.session() as session:
            moved = job_rows.requeue(
                session,
                job.id,
                owner=owner,
                step=Step.DOWNLOAD.value,
                attempts=0,
                info=found.summary(),
                last_error=None,
            )
            _close_attempt(session, job.id, owner, _outcome(moved))
            # The download queue's pause is checked in this transaction, not another.
            if moved is not None:
                moved = control_rows.hold_if_paused(session, moved)
        if moved is not None:
            if moved.held is None:
                publish_checked(rt, moved)
            bound.info("probed", kind="single", title=found.title)
        return
    _expand(rt, job, owner, found.summary(), [e.url for e in found.entries], bound)


def _expand(
    rt: Runtime, parent: Job, owner: str, info: dict[str, Any], urls: list[str], bound: BoundLogger
) -> None:
    """Create one child download job per playlist entry; the parent waits for them."""
    children: list[Job] = []
    skipped = 0
    for url in urls:
        try:
            clean = normalize_url(url)
        except UrlRejected:
            skipped += 1
            continue
        children.append(
            Job(
                client_id=parent.client_id,
                parent_id=parent.id,
                url=clean,
                options=parent.options,
                user_metadata=parent.user_metadata,
                priority=parent.priority,
                step=Step.DOWNLOAD.value,
                max_attempts=parent.max_attempts,
            )
        )
    if not children:
        empty = Permanent("no entry of the playlist has a usable URL", error_class="empty_playlist")
        _fail(rt, parent, owner, empty, bound)
        raise empty
    info["playlist"]["entries_skipped"] = skipped
    with rt.db.session() as session:
        waiting = job_rows.await_children(session, parent.id, owner, info=info)
        if waiting is None:
            _close_attempt(session, parent.id, owner, _outcome(None), error_message=_GONE)
            return
        job_rows.insert_many(session, children)
        _close_attempt(session, parent.id, owner, "succeeded")
    for child in children:
        publish_or_record(rt, child)
    bound.info("probed", kind="playlist", children=len(children), capped=info["playlist"]["capped"])


def run_download(
    rt: Runtime, job_id: uuid.UUID, *, hand_back_on: tuple[type[BaseException], ...] = ()
) -> None:
    """Download, post-process and store the file, with progress and a lease kept alive.

    ``hand_back_on`` names the interruptions (a worker shutting down) after which
    the job is given back to the queue at once rather than retried or left to
    its lease.
    """
    claimed = _claim(rt, job_id, Step.DOWNLOAD, Phase.DOWNLOADING)
    if claimed is None:
        return
    job, owner, bound, limited = claimed
    try:
        _download(rt, job, owner, bound, hand_back_on=hand_back_on)
    finally:
        if limited:
            release_quietly(rt)  # this attempt's slot is free: a held job may start


def _download(
    rt: Runtime,
    job: Job,
    owner: str,
    bound: BoundLogger,
    *,
    hand_back_on: tuple[type[BaseException], ...],
) -> None:
    options = NormalizedOptions.model_validate(job.options)
    lease = timedelta(seconds=rt.settings.lease_seconds)
    try:
        limits = _limits(rt, job, with_quota=True)
        with (
            storage.workdir(rt.settings.temp_dir, job.id) as workdir,
            LeaseKeeper(
                rt.db,
                job.id,
                owner,
                lease,
                rt.settings.heartbeat_seconds,
                parent_id=job.parent_id,
                parent_every=timedelta(seconds=rt.settings.playlist_progress_seconds),
            ) as keeper,
            closing(storage.StreamHash()) as streamed,
        ):
            result = download(
                job.url,
                options,
                workdir,
                limits=limits,
                on_progress=worker_metrics.timing_first_byte(keeper.progress),
                on_postprocess=keeper.postprocessing,
                should_stop=keeper.lost.is_set,
                watch=streamed,
            )
            keeper.beat()  # a fresh lease covers the move and the final write
            if keeper.lost.is_set():
                raise LeaseLost()
            sha256 = streamed.digest_of(result.path)  # None when post-processing rewrote it
            _store_and_finish(rt, job, owner, result, bound, sha256=sha256)
    except LeaseLost:
        with rt.db.session() as session:
            _close_attempt(session, job.id, owner, "abandoned", error_message=_GONE)
        bound.info("stopped", reason="lease lost")
    except Permanent as exc:
        _fail(rt, job, owner, exc, bound)
        raise
    except hand_back_on:
        _hand_back(rt, job, owner, bound)
    except BaseException as exc:
        _release_for_retry(rt, job, owner, exc, bound)
        raise


def _limits(rt: Runtime, job: Job, *, with_quota: bool = False) -> Limits:
    """This job's bounds from the settings; a download also stays within its client's quota."""
    settings = rt.settings
    max_bytes, name = settings.max_file_bytes, "HAUL_MAX_FILE_BYTES"
    quota = clients.storage_quota(rt, job.client_id) if with_quota else None
    if quota is not None:
        with rt.db.session() as session:
            room = quota - artifact_rows.bytes_stored(session, job.client_id)
        if room <= 0:
            raise Permanent(
                f"the client's storage quota ({quota} bytes) is used up", error_class="quota"
            )
        if room < max_bytes:
            max_bytes, name = room, "the client's storage quota"
    return Limits(
        egress=settings.egress_policy,
        max_bytes=max_bytes,
        max_bytes_name=name,
        max_duration_s=settings.max_duration_s,
        generic_extractor=settings.generic_extractor,
    )


def _hand_back(rt: Runtime, job: Job, owner: str, bound: BoundLogger) -> None:
    """Queue the job again now, without spending an attempt: this worker is going away."""
    with rt.db.session() as session:
        moved = job_rows.requeue(session, job.id, owner=owner, attempts=Job.attempts - 1)
        _close_attempt(session, job.id, owner, "handed_back", error_message="the worker shut down")
    if moved is not None:
        publish_or_record(rt, moved)
    bound.info("handed back", reason="worker shutdown")


def _store_and_finish(
    rt: Runtime,
    job: Job,
    owner: str,
    result: Downloaded,
    bound: BoundLogger,
    *,
    sha256: str | None,
) -> None:
    stored = storage.store(
        rt.settings.storage_dir, job.client_id, job.id, result.path, sha256=sha256
    )
    info = {**job.info, "title": result.title or job.info.get("title"), "duration": result.duration}
    with rt.db.session() as session:
        done = job_rows.move(
            session,
            job.id,
            Status.SUCCEEDED,
            owner=owner,
            only_from=_RUNNING,
            progress=1.0,
            bytes_done=stored.size,
            eta=0,
            info={k: v for k, v in info.items() if v is not None},
            error_class=None,
            error_message=None,
            last_error=None,
        )
        if done is not None:
            artifact_rows.insert(
                session,
                Artifact(
                    job_id=job.id,
                    client_id=job.client_id,
                    path=stored.path,
                    filename=stored.filename,
                    size=stored.size,
                    sha256=stored.sha256,
                    mime=stored.mime,
                    duration=result.duration,
                    title=result.title,
                ),
            )
            _close_attempt(session, job.id, owner, "succeeded")
            if job.parent_id is not None:
                job_rows.finish_parent_if_done(session, job.parent_id)
    if done is None:
        # Cancelled or deleted while the file was moved: the file must not outlive the row's truth.
        storage.remove_job_files(rt.settings.storage_dir, job.client_id, job.id)
        raise LeaseLost()
    callbacks.announce(rt, job.id, job.parent_id)
    worker_metrics.stored(stored.size)
    bound.info("succeeded", bytes=stored.size, title=result.title)


def _close_attempt(
    session: Any,  # a db session; only service/db names its type
    job_id: uuid.UUID,
    owner: str,
    outcome: str,
    *,
    error_class: str | None = None,
    error_message: str | None = None,
) -> None:
    """Close the attempt's row and log its one summary line (outcome, duration, error class)."""
    done = attempt_rows.finish(
        session, job_id, owner, outcome, error_class=error_class, error_message=error_message
    )
    if done is None or done.started_at is None or done.finished_at is None:
        return
    seconds = (done.finished_at - done.started_at).total_seconds()
    worker_metrics.attempt_finished(done.step, outcome, seconds)
    log.info(
        "attempt finished",
        job_id=str(job_id),
        attempt=done.number,
        step=done.step,
        outcome=outcome,
        duration_s=round(seconds, 3),
        error_class=error_class,
    )


def _claim(
    rt: Runtime, job_id: uuid.UUID, step: Step, phase: Phase
) -> tuple[Job, str, BoundLogger, bool] | None:
    """Claim the row for one attempt: the job, the lease owner, a logger bound to both,
    and whether a queue or site limit applied (then its end frees a slot for a held job)."""
    owner = _owner(rt)
    outcome = wait_out_outage(
        lambda: _claim_or_give_up(rt, job_id, step, owner, phase),
        patience=rt.settings.database_wait_s,
    )
    if isinstance(outcome, Hold):
        log.info("job held", job_id=str(job_id), step=step.value, held=outcome.value)
        return None
    job, exhausted, limited = outcome
    if job is not None:
        # Every line of this attempt's work (lease keeper, yt-dlp) carries who and which.
        structlog.contextvars.bind_contextvars(
            job_id=str(job.id), client_id=str(job.client_id), attempt=job.attempts, step=step.value
        )
        bound = log.bind(
            job_id=str(job.id), client_id=str(job.client_id), attempt=job.attempts, step=step.value
        )
        return job, owner, bound, limited
    if exhausted is not None:
        log.warning("gave up", job_id=str(job_id), attempts=exhausted.attempts)
        _after_terminal(rt, exhausted)
    else:
        log.info("message dropped: the job is not claimable", job_id=str(job_id), step=step.value)
    return None


def _claim_or_give_up(
    rt: Runtime, job_id: uuid.UUID, step: Step, owner: str, phase: Phase
) -> tuple[Job | None, Job | None, bool] | Hold:
    """One transaction: the claimed job, or the job failed for having no attempts left,
    or why it is held instead (paused, or no free slot: no attempt is spent)."""
    lease = timedelta(seconds=rt.settings.lease_seconds)
    with rt.db.session() as session:
        verdict = control_rows.gate(session, job_id, step.value, rt.settings.site_max_running)
        held = verdict.hold
        if held is not None and control_rows.hold(session, job_id, held) is not None:
            return held
        job = job_rows.claim(session, job_id, step, owner, lease, phase)
        if job is not None:
            attempt_rows.start(session, job.id, job.attempts, step.value, owner, YTDLP_VERSION)
            return job, None, verdict.limited
        return None, job_rows.fail_exhausted(session, job_id), verdict.limited


def _fail(rt: Runtime, job: Job, owner: str, exc: Permanent, bound: BoundLogger) -> None:
    with rt.db.session() as session:
        failed = job_rows.move(
            session,
            job.id,
            Status.FAILED,
            owner=owner,
            only_from=_RUNNING,
            error_class=exc.error_class,
            error_message=exc.message,
        )
        _close_attempt(
            session, job.id, owner, "failed", error_class=exc.error_class, error_message=exc.message
        )
        if failed is not None and failed.parent_id is not None:
            job_rows.finish_parent_if_done(session, failed.parent_id)
    if failed is not None:
        callbacks.announce(rt, job.id, job.parent_id)
    bound.info("failed", error_class=exc.error_class, error=exc.message)


def _release_for_retry(
    rt: Runtime, job: Job, owner: str, exc: BaseException, bound: BoundLogger
) -> None:
    """Give the job back as ``retrying``; the middleware adds when the next attempt is due.

    A file this attempt already moved into storage goes too: a running job has no
    artifact, so nothing there is anyone else's.
    """
    error_class = getattr(exc, "error_class", type(exc).__name__)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__

    def release() -> Job | None:
        with rt.db.session() as session:
            moved = job_rows.move(
                session,
                job.id,
                Status.RETRYING,
                owner=owner,
                only_from=_RUNNING,
                phase=None,
                last_error=f"{error_class}: {message}"[:2000],
            )
            _close_attempt(
                session,
                job.id,
                owner,
                "retry",
                error_class=error_class,
                error_message=message[:2000],
            )
            return moved

    try:
        released = wait_out_outage(release, patience=rt.settings.database_wait_s)
    except Exception:
        bound.exception("could not record the failed attempt; the lease sweep will")
    else:
        if released is not None:
            storage.remove_job_files(rt.settings.storage_dir, job.client_id, job.id)
    bound.warning("attempt failed, will retry", error_class=error_class, error=message)


def _after_terminal(rt: Runtime, job: Job) -> None:
    if job.parent_id is not None:
        with rt.db.session() as session:
            job_rows.finish_parent_if_done(session, job.parent_id)
    callbacks.announce(rt, job.id, job.parent_id)


def _owner(rt: Runtime) -> str:
    """A lease owner name unique to this attempt: worker name plus a random tag."""
    return f"{rt.settings.worker_name}/{secrets.token_hex(4)}"
