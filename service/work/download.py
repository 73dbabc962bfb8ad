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

from contextlib import closing
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from service.db import artifacts as artifact_rows
from service.db.models import Artifact, Job
from service.domain.options import NormalizedOptions
from service.domain.states import AttemptOutcome, Phase, Status, Step
from service.errors import LeaseLost, Permanent
from service.fleet.gate import release_quietly
from service.media.download import download, reusable
from service.observe import worker_metrics
from service.work import cookies, storage
from service.work.claim import claim
from service.work.ending import ending
from service.work.lease import LeaseKeeper
from service.work.limits import check_file_size, check_quota_room, limits_for
from service.work.outcomes import (
    GONE,
    RUNNING,
    close_attempt,
    fail,
    hand_back,
    release_for_retry,
    site_answered,
)

if TYPE_CHECKING:
    import uuid

    from structlog.stdlib import BoundLogger

    from service.media.download import Downloaded
    from service.runtime import Runtime
    from service.work.claim import Claimed


log = structlog.get_logger(__name__)


def run_download(
    rt: Runtime, job_id: uuid.UUID, *, hand_back_on: tuple[type[BaseException], ...] = ()
) -> None:
    """Download, post-process and store the file, with progress and a lease kept alive.

    ``hand_back_on`` names the interruptions (a worker shutting down) after which
    the job is given back to the queue at once rather than retried or left to
    its lease.
    """
    claimed = claim(rt, job_id, Step.DOWNLOAD, Phase.DOWNLOADING)
    if claimed is None:
        return
    try:
        _download(rt, claimed, hand_back_on=hand_back_on)
    finally:
        if claimed.limited:
            release_quietly(rt)  # this attempt's slot is free: a held job may start


def _download(
    rt: Runtime, claimed: Claimed, *, hand_back_on: tuple[type[BaseException], ...]
) -> None:
    job, owner, bound = claimed.job, claimed.owner, claimed.log
    options = NormalizedOptions.model_validate(job.options)
    lease = timedelta(seconds=rt.settings.lease_s)
    try:
        limits = limits_for(rt, job, quota=claimed.storage_quota)
        with (
            storage.workdir(rt.settings.temp_dir, job.id) as workdir,
            LeaseKeeper(
                rt.db,
                job.id,
                owner,
                lease,
                rt.settings.heartbeat_s,
                parent_id=job.parent_id,
                parent_every=timedelta(seconds=rt.settings.playlist_progress_s),
            ) as keeper,
            closing(storage.StreamHash()) as streamed,
            cookies.lent(rt, job, workdir, maybe=claimed.has_cookies) as cookiefile,
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
                cookiefile=cookiefile,
                probed=reusable(claimed.probed, rt.settings.probed_info_max_age_s),
            )
            keeper.renew_if_due()  # a lease with room left covers the move and the final write
            if keeper.lost.is_set():
                raise LeaseLost()
            sha256 = streamed.digest_of(result.path)  # None when post-processing rewrote it
            _store_and_finish(
                rt,
                job,
                owner,
                result,
                bound,
                sha256=sha256,
                quota=claimed.storage_quota,
                unheard=claimed.unheard,
                breaker_seen=claimed.breaker_seen,
            )
    except LeaseLost:
        with rt.db.session() as session:
            close_attempt(session, job.id, owner, AttemptOutcome.ABANDONED, error_message=GONE)
        bound.info("stopped", reason="lease lost")
    except Permanent as exc:
        fail(rt, job, owner, exc, bound)
        raise
    except hand_back_on:
        hand_back(rt, job, owner, bound)
    except BaseException as exc:
        release_for_retry(rt, job, owner, exc, bound)
        raise


def _store_and_finish(
    rt: Runtime,
    job: Job,
    owner: str,
    result: Downloaded,
    bound: BoundLogger,
    *,
    sha256: str | None,
    quota: int | None,
    unheard: bool,
    breaker_seen: bool,
) -> None:
    check_file_size(rt, result.path.stat().st_size)
    stored = storage.store(
        rt.settings.storage_dir, job.client_id, job.id, result.path, sha256=sha256
    )
    info = {**job.info, "title": result.title or job.info.get("title"), "duration": result.duration}
    try:
        done = _finish(
            rt, job, owner, result, stored, info, quota, unheard=unheard, seen=breaker_seen
        )
    except Permanent:
        storage.remove_job_files(rt.settings.storage_dir, job.client_id, job.id)
        raise
    if done is None:
        # Cancelled or deleted while the file was moved: the file must not outlive the row's truth.
        storage.remove_job_files(rt.settings.storage_dir, job.client_id, job.id)
        raise LeaseLost()
    worker_metrics.stored(stored.size)
    bound.info("succeeded", bytes=stored.size, title=result.title)


def _finish(
    rt: Runtime,
    job: Job,
    owner: str,
    result: Downloaded,
    stored: storage.StoredFile,
    info: dict[str, Any],
    quota: int | None,
    *,
    unheard: bool,
    seen: bool,
) -> Job | None:
    """Succeed the job with its artifact, once the file is known to fit the client's quota
    (checked under its storage lock, in this transaction); None when the job moved on.
    ``unheard``: the job's end has no webhook delivery to announce."""
    with ending(rt) as ends:
        if unheard:
            ends.unheard.add(job.id)
        check_quota_room(ends.session, job.client_id, stored.size, quota)
        done = ends.job(
            job.id,
            Status.SUCCEEDED,
            owner=owner,
            only_from=RUNNING,
            progress=1.0,
            bytes_done=stored.size,
            eta=0,
            info={k: v for k, v in info.items() if v is not None},
            error_class=None,
            error_message=None,
            last_error=None,
            last_error_class=None,
        )
        if done is not None:
            artifact = Artifact(
                job_id=job.id,
                client_id=job.client_id,
                path=stored.path,
                filename=stored.filename,
                size=stored.size,
                sha256=stored.sha256,
                mime=stored.mime,
                duration=result.duration,
                title=result.title,
            )
            close_attempt(
                ends.session,
                job.id,
                owner,
                AttemptOutcome.SUCCEEDED,
                along=artifact_rows.inserted(artifact),
            )
            ends.deliveries.extend(site_answered(rt, ends.session, job.id, seen=seen))
    return done
