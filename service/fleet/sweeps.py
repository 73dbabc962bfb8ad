"""Periodic repairs, found from the rows alone: nothing here trusts the broker.

Each sweep is state-based and idempotent: a missed tick is caught up by the next,
and two schedulers running by mistake only do the same harmless work twice
(rows are taken with ``FOR UPDATE SKIP LOCKED`` and moved by guarded updates).
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import structlog

from service.db import artifacts as artifact_rows
from service.db import attempts as attempt_rows
from service.db import deliveries as delivery_rows
from service.db import finders, transitions
from service.db import idempotency as key_rows
from service.dispatch import publish_or_record
from service.domain import BATCH
from service.domain.errors import ErrorClass
from service.domain.states import ACTIVE, AttemptOutcome, Status
from service.fleet.gate import release_held
from service.observe import worker_metrics
from service.webhooks.outbox import republish_stale
from service.work import storage
from service.work.ending import ending

if TYPE_CHECKING:
    import uuid
    from pathlib import Path

    from service.db.models import Job
    from service.runtime import Runtime

log = structlog.get_logger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True)
class SweepReport:
    requeued: int = 0
    failed: int = 0
    republished: int = 0
    parents_closed: int = 0
    pruned: int = 0
    callbacks_republished: int = 0
    released: int = 0
    keys_pruned: int = 0
    orphan_files: int = 0
    orphan_workdirs: int = 0


def expired_leases(rt: Runtime) -> tuple[int, int]:
    """Running jobs whose worker vanished: queued again, or failed past their attempts."""
    requeued: list[Job] = []
    failed = 0
    with ending(rt) as ends:
        for job in finders.expired_leases(ends.session, BATCH):
            attempt_rows.close_abandoned(
                ends.session,
                job.id,
                AttemptOutcome.ABANDONED,
                "the worker stopped renewing its lease",
            )
            if job.attempts >= job.max_attempts:
                ends.exhausted(job.id)
                failed += 1
                continue
            moved = transitions.requeue(
                ends.session,
                job.id,
                last_error="lease expired: the worker stopped renewing it",
                last_error_class=ErrorClass.LEASE_EXPIRED,
            )
            if moved is not None:
                requeued.append(moved)
        # The ending closes their parents last, in id order: the lock order of playlist trees.
    for job in requeued:
        publish_or_record(rt, job)
    return len(requeued), failed


def unpublished(rt: Runtime) -> int:
    """Queued jobs whose message was never sent or was lost, and retries whose delayed
    message never came: publish again (a duplicate is dropped at claim time)."""
    older_than = timedelta(seconds=rt.settings.republish_after_s)
    with rt.db.session() as session:
        waiting = finders.unpublished(session, older_than, BATCH)
        waiting += finders.overdue_retries(session, older_than, BATCH)
    return sum(1 for job in waiting if publish_or_record(rt, job))


def stranded_parents(rt: Runtime) -> int:
    """Playlist parents whose last child's finish did not close them."""
    closed = 0
    with rt.db.session() as session:
        parent_ids = finders.stranded_parents(session, BATCH)
    for parent_id in parent_ids:
        with ending(rt) as ends:
            ends.entry_left(parent_id)
        closed += len(ends.ended)
    return closed


def prune(rt: Runtime) -> int:
    """Ended jobs past the retention period: rows and files deleted (off unless configured);
    and the ended webhook deliveries of subscriptions (and sites) as old."""
    if rt.settings.retention_days is None:
        return 0
    older_than = timedelta(days=rt.settings.retention_days)
    with rt.db.session() as session:
        gone = finders.prune_ended(session, older_than, BATCH)
    for client_id, job_id in gone:
        storage.remove_job_files(rt.settings.storage_dir, client_id, job_id)
    with rt.db.session() as session:
        events = delivery_rows.prune_ended_events(session, older_than, BATCH)
    return len(gone) + events


def expired_keys(rt: Runtime) -> int:
    """Idempotency keys past ``HAUL_IDEMPOTENCY_TTL_S``: deleted (a claim takes one over anyway)."""
    with rt.db.session() as session:
        return key_rows.prune_expired(session, BATCH)


def orphan_files(rt: Runtime, now: float | None = None) -> int:
    """Files in storage that no artifact names: deleted once older than the lease plus
    ``HAUL_ORPHAN_GRACE_S``, unless their job is queued, running or retrying.

    A worker killed between the move into storage and its commit, or a crash, leaves
    them. A file being moved in right now belongs to a running attempt of an active
    job, and is fresh (a rename sets its ctime): both rules keep it. At most
    :data:`BATCH` job dirs are looked at per run, from a random place in the list, so
    a big storage dir is covered over several runs.
    """
    now = time.time() if now is None else now
    removed = 0
    for job_id, folder, status, kept in _owned(rt, storage.job_dirs(rt.settings.storage_dir)):
        if status in ACTIVE:
            continue
        for path in storage.files_in(folder):
            relative = str(path.relative_to(rt.settings.storage_dir))
            if relative != kept and storage.age_s(path, now) > _margin_s(rt):
                path.unlink(missing_ok=True)
                removed += 1
                log.info("orphan file removed", job_id=str(job_id), path=relative)
        storage.remove_if_empty(folder)
    return removed


def orphan_workdirs(rt: Runtime, now: float | None = None) -> int:
    """Attempts' work dirs in ``HAUL_TEMP_DIR`` whose job is not running (or is gone):
    deleted once older than the lease plus ``HAUL_ORPHAN_GRACE_S``.

    A running attempt removes its own work dir however it ends, unless its worker
    was killed. Every attempt makes a new one, so an old dir is never taken up again.
    """
    now = time.time() if now is None else now
    removed = 0
    for job_id, folder, status, _ in _owned(rt, storage.work_dirs(rt.settings.temp_dir)):
        if status != Status.RUNNING and storage.age_s(folder, now) > _margin_s(rt):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            log.info("orphan work dir removed", job_id=str(job_id), path=str(folder))
    return removed


def _margin_s(rt: Runtime) -> float:
    """How old a leftover must be before it is taken for an orphan."""
    return float(rt.settings.lease_s + rt.settings.orphan_grace_s)


def _owned(
    rt: Runtime, dirs: list[tuple[uuid.UUID, Path]]
) -> list[tuple[uuid.UUID, Path, str | None, str | None]]:
    """A batch of ``dirs``, each with its job's status and artifact path (None: no such job)."""
    dirs = _some(dirs, BATCH)
    with rt.db.session() as session:
        owners = artifact_rows.owners(session, [job_id for job_id, _ in dirs])
    return [(job_id, folder, *owners.get(job_id, (None, None))) for job_id, folder in dirs]


def _some(items: list[_T], n: int) -> list[_T]:
    """At most ``n`` of ``items``, from a random place on (wrapping round)."""
    if len(items) <= n:
        return items
    start = random.randrange(len(items))  # noqa: S311 (which part to look at, not a secret)
    return (items[start:] + items[:start])[:n]


def run_all(rt: Runtime) -> SweepReport:
    requeued, failed = expired_leases(rt)
    report = SweepReport(
        requeued=requeued,
        failed=failed,
        republished=unpublished(rt),
        parents_closed=stranded_parents(rt),
        pruned=prune(rt),
        callbacks_republished=republish_stale(rt),
        # A backstop: workers release held jobs after every attempt, unless one died first.
        released=release_held(rt),
        keys_pruned=expired_keys(rt),
        orphan_files=orphan_files(rt),
        orphan_workdirs=orphan_workdirs(rt),
    )
    log.info("sweep", **report.__dict__)
    worker_metrics.swept(report.__dict__)
    return report
