"""Claim a job for one attempt: the gate (pauses, limits), then the guarded claim.

A claim is one transaction: the gate may *hold* the job instead (no attempt is
spent), the claim takes a lease owned by ``<worker>/<random tag>`` and counts the
attempt, or the job has no attempts left and is failed. A message whose row
cannot be claimed is dropped: the row has moved on.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from service.db import control as control_rows
from service.db import transitions
from service.db.engine import wait_out_outage
from service.domain.control import Hold
from service.fleet.gate import release_paced, site_defaults
from service.media.download import YTDLP_VERSION
from service.work.ending import ending

if TYPE_CHECKING:
    import uuid

    from structlog.stdlib import BoundLogger

    from service.db.models import Job
    from service.domain.states import Phase, Step
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Claimed:
    """One attempt's hold on a job."""

    job: Job
    #: The lease owner: every write of this attempt names it.
    owner: str
    #: A logger bound to the job, its client, the attempt and the step.
    log: BoundLogger
    #: Whether a queue, client or site limit applied, or the client's entries wait for room:
    #: then the attempt's end releases held jobs.
    limited: bool
    #: The probe's info for a download, when the probe kept one (``media/download.py``
    #: reuses it while it is fresh instead of extracting the URL again).
    probed: dict[str, Any] | None = None
    #: The client's storage quota in bytes (its own, else the default); None: none.
    storage_quota: int | None = None
    #: Whether the client keeps cookies for any site (else the attempt never looks).
    has_cookies: bool = True
    #: Whether the client had a default webhook endpoint when the claim read it.
    has_endpoint: bool = True
    #: Whether the job's site had a breaker for its identity when the claim read it; a
    #: success then closes it (``outcomes.site_answered``). Without one there is nothing
    #: to close: a breaker another job's throttle starts meanwhile is reset by the next
    #: success claimed after it.
    breaker_seen: bool = True

    @property
    def unheard(self) -> bool:
        """Whether the job's end writes no webhook delivery (no ``callback_url``, no default
        endpoint): then there is nothing to announce. An endpoint set meanwhile gets
        its delivery from the database's trigger all the same, sent by the sweep."""
        return self.job.callback_url is None and not self.has_endpoint


@dataclass(frozen=True)
class _Taken:
    """What the claim's transaction did: the job it took (None: not claimable, and ended if it
    had no attempts left), and whether a queue or site limit applied."""

    job: Job | None
    limited: bool = False
    #: Seconds to wait for the paced site's reserved start, and that site.
    wait_s: float = 0.0
    paced_site: str | None = None
    probed: dict[str, Any] | None = None
    own_quota: int | None = None
    has_cookies: bool = True
    has_endpoint: bool = True
    breaker_seen: bool = True


def claim(rt: Runtime, job_id: uuid.UUID, step: Step, phase: Phase) -> Claimed | None:
    """Claim the row for one attempt; None when it is held, given up or not claimable."""
    owner = _owner(rt)
    taken = wait_out_outage(
        lambda: _claim_or_give_up(rt, job_id, step, owner, phase),
        patience=rt.settings.database_wait_s,
    )
    if isinstance(taken, Hold):
        log.info("job held", job_id=str(job_id), step=step.value, held=taken.value)
        return None
    job = taken.job
    if taken.paced_site is not None:
        _start_on_time(rt, taken)
    if job is not None:
        # Every line of this attempt's work (lease keeper, yt-dlp) carries who and which.
        structlog.contextvars.bind_contextvars(
            job_id=str(job.id), client_id=str(job.client_id), attempt=job.attempts, step=step.value
        )
        bound = log.bind(
            job_id=str(job.id), client_id=str(job.client_id), attempt=job.attempts, step=step.value
        )
        quota = taken.own_quota
        if quota is None:
            quota = rt.settings.client_storage_quota_bytes
        return Claimed(
            job,
            owner,
            bound,
            taken.limited,
            taken.probed,
            quota,
            taken.has_cookies,
            taken.has_endpoint,
            taken.breaker_seen,
        )
    log.info("message dropped: the job is not claimable", job_id=str(job_id), step=step.value)
    return None


def _claim_or_give_up(
    rt: Runtime, job_id: uuid.UUID, step: Step, owner: str, phase: Phase
) -> _Taken | Hold:
    """One transaction: the claimed job (None when it was not claimable, and then failed
    if it had no attempts left), or why it is held instead (paused, or no free slot:
    no attempt is spent)."""
    with ending(rt) as ends:
        session = ends.session
        verdict = control_rows.gate(
            session,
            job_id,
            step.value,
            rt.settings.site_max_running,
            rt.settings.client_max_running,
            site_defaults(rt),
        )
        held = verdict.hold
        if held is not None:
            if control_rows.hold(session, job_id, held) is not None:
                return held
            # Not a waiting row: one that ended, or a running one whose lease ran out,
            # whose takeover would be a start the gate refuses. The lease sweep requeues
            # that one, and publishing it then holds it.
            return _Taken(None)
        # A paced start waits for its slot: the lease covers the wait.
        lease = timedelta(seconds=rt.settings.lease_s + verdict.wait_s)
        taken = transitions.claim_attempt(session, job_id, step, owner, lease, phase, YTDLP_VERSION)
        if taken is None:
            ends.exhausted(job_id)
        return _Taken(
            taken.job if taken is not None else None,
            verdict.limited,
            verdict.wait_s,
            verdict.paced_site,
            probed=taken.probed if taken is not None else None,
            own_quota=verdict.storage_quota_bytes,
            has_cookies=verdict.has_cookies,
            has_endpoint=verdict.has_endpoint,
            breaker_seen=verdict.breaker_seen,
        )


def _start_on_time(rt: Runtime, taken: _Taken) -> None:
    """Wait for the paced site's reserved start, then let the next job held ``site_paced``
    on that site come and reserve the start after it (one waiter per paced site)."""
    if taken.job is not None and taken.wait_s > 0:
        time.sleep(taken.wait_s)
    if taken.paced_site is not None:
        release_paced(rt, taken.paced_site)


def _owner(rt: Runtime) -> str:
    """A lease owner name unique to this attempt: worker name plus a random tag."""
    return f"{rt.settings.worker_name}/{secrets.token_hex(4)}"
