"""The probe step: find out what a URL is, then hand a single item to the download
step or expand a playlist into child jobs that its parent waits for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.db import extractions as extraction_rows
from service.db import jobs as job_rows
from service.db import room as room_rows
from service.db import transitions
from service.db.models import Job
from service.dispatch import publish_or_record, publish_stamped
from service.domain.control import Hold
from service.domain.errors import ErrorClass
from service.domain.states import AttemptOutcome, Phase, Step
from service.domain.urls import UrlRejected, normalize_url
from service.errors import Permanent
from service.fleet.gate import release_quietly
from service.media.probe import probe
from service.webhooks.outbox import announce_deliveries
from service.work import cookies, storage
from service.work.claim import claim
from service.work.limits import limits_for
from service.work.outcomes import (
    GONE,
    close_attempt,
    fail,
    outcome_of,
    release_for_retry,
    site_answered,
)

if TYPE_CHECKING:
    import uuid

    from structlog.stdlib import BoundLogger

    from service.media.probe import ProbeResult
    from service.runtime import Runtime
    from service.work.claim import Claimed


def run_probe(rt: Runtime, job_id: uuid.UUID) -> None:
    """Find out what the URL is: hand a single item to download, expand a playlist into children."""
    claimed = claim(rt, job_id, Step.PROBE, Phase.PROBING)
    if claimed is None:
        return
    try:
        _probe(rt, claimed)
    finally:
        if claimed.limited:
            release_quietly(rt)  # this attempt's slot is free: a held job may start


def _probe(rt: Runtime, claimed: Claimed) -> None:
    job, owner, bound = claimed.job, claimed.owner, claimed.log
    try:
        with (
            storage.workdir(rt.settings.temp_dir, job.id) as workdir,
            cookies.lent(rt, job, workdir, maybe=claimed.has_cookies) as cookiefile,
        ):
            found = probe(
                job.url,
                max_entries=rt.settings.playlist_max_entries,
                limits=limits_for(rt, job),
                cookiefile=cookiefile,
            )
    except Permanent as exc:
        fail(rt, job, owner, exc, bound)
        raise
    except BaseException as exc:
        release_for_retry(rt, job, owner, exc, bound)
        raise
    if not found.is_playlist:
        _hand_over(rt, claimed, found)
        return
    urls = [e.url for e in found.entries]
    _expand(rt, job, owner, found.summary(), urls, bound, seen=claimed.breaker_seen)


def _hand_over(rt: Runtime, claimed: Claimed, found: ProbeResult) -> None:
    """A single item: back to ``queued`` for the download step, in one transaction with
    the attempt's end, the info the download will reuse and the download queue's pause
    check (a paused queue or client holds it: no message). The row is stamped published
    in it, so the publish after the commit writes nothing more unless it fails."""
    job, owner, bound = claimed.job, claimed.owner, claimed.log
    told: list[uuid.UUID] = []
    with rt.db.session() as session:
        moved = transitions.requeue(
            session,
            job.id,
            owner=owner,
            step=Step.DOWNLOAD.value,
            attempts=0,
            info=found.summary(),
            last_error=None,
            last_error_class=None,
            **job_rows.sent_unless_paused(Step.DOWNLOAD.value),
        )
        keep = None
        if moved is not None and found.info is not None:
            keep = extraction_rows.kept(job.id, found.info)
        close_attempt(session, job.id, owner, outcome_of(moved), along=keep)
        if moved is not None:
            told = site_answered(rt, session, job.id, seen=claimed.breaker_seen)
    announce_deliveries(rt, told)
    if moved is not None:
        if moved.held is None:
            publish_stamped(rt, moved)
        bound.info("probed", kind="single", title=found.title)


def hold_past_room(entries: list[Job], room: int | None) -> None:
    """Entries past the client's room under ``max_active_jobs`` wait, held ``client_full``
    (no message), until its active jobs fall (``fleet/gate.py: release_held``)."""
    if room is None:
        return
    for entry in entries[room:]:
        entry.held = Hold.CLIENT_FULL.value


def _expand(
    rt: Runtime,
    parent: Job,
    owner: str,
    info: dict[str, Any],
    urls: list[str],
    bound: BoundLogger,
    *,
    seen: bool,
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
        empty = Permanent(
            "no entry of the playlist has a usable URL", error_class=ErrorClass.EMPTY_PLAYLIST
        )
        fail(rt, parent, owner, empty, bound)
        raise empty
    info["playlist"]["entries_skipped"] = skipped
    most = rt.settings.client_max_active_jobs
    with rt.db.session() as session:
        room_rows.lock_room(session, parent.client_id, most)  # the client's row before the parent's
        waiting = transitions.await_children(session, parent.id, owner, info=info)
        if waiting is None:
            close_attempt(session, parent.id, owner, outcome_of(None), error_message=GONE)
            return
        hold_past_room(children, room_rows.lock_room(session, parent.client_id, most))
        job_rows.insert_many(session, children)
        close_attempt(session, parent.id, owner, AttemptOutcome.SUCCEEDED)
        told = site_answered(rt, session, parent.id, seen=seen)
    announce_deliveries(rt, told)
    for child in children:
        if child.held is None:
            publish_or_record(rt, child)
    bound.info("probed", kind="playlist", children=len(children), capped=info["playlist"]["capped"])
