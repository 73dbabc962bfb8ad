"""One check of a subscription: a job of kind ``check``, run like any job.

0. The check job is claimed (``work/claim.py``: a lease, the attempt counted and its
   ``job_attempts`` row) and its lease kept by a heartbeat while the feed is listed, so
   attempts, retries with backoff, the lease sweep and the dead letter apply as to a
   download. It fires no job-ended webhook (the trigger skips ``kind='check'``), does not
   count toward ``max_active_jobs`` and is left out of the default job list.
1. The feed is listed flat (``media/feed.py``): no media is fetched. A listing that fails
   for good (not a feed, refused by the egress policy, a 404) fails the job and is written
   on the subscription in the same transaction (``last_outcome=failed``, ``last_error``,
   one more consecutive failure; the ``HAUL_SUBSCRIPTION_MAX_FAILURES``-th pauses it). A
   failure that may pass (unreachable, 5xx) is retried with backoff like any job's; only
   its last attempt counts as a failed check on the subscription.
2. The entries are inserted in one statement, ``ON CONFLICT DO NOTHING`` on the
   subscription and the entry's key; only those this check inserted are decided here:
   before the backfill (first check), filtered, or pending. The job ends ``succeeded`` in
   that transaction (guarded by its lease: a worker that lost it writes nothing).
3. Pending entries, this check's and those a quota refused before, are admitted as jobs
   (at most ``HAUL_SUBSCRIPTION_MAX_NEW`` per check), each through ``intake.admission``
   in the transaction that links the entry to its job with a guarded UPDATE: two checks
   racing make one job per entry. A refused one stays pending, saying why.
4. Files beyond ``keep_last`` are removed.

What a check found or why it failed is announced (``events``: webhook and live stream)
in the transaction of step 1 or 2, so a redelivered check announces nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from service.db import clients as client_rows
from service.db import subscriptions as rows
from service.db.feeds import EntryState
from service.db.models import Job
from service.dispatch import publish_checked
from service.domain.states import AttemptOutcome, Phase, Status, Step
from service.domain.urls import UrlRejected, normalize_url
from service.errors import JobFailure, LeaseLost, LimitExceeded, Permanent
from service.intake.admission import AlreadyAccepted, insert
from service.media.feed import list_entries
from service.media.limits import Limits
from service.subscriptions import events
from service.subscriptions.filters import Filters, backfilled, parse_backfill, refusal
from service.subscriptions.keep import enforce_keep_last
from service.webhooks.outbox import announce_deliveries
from service.work.claim import claim
from service.work.ending import ending
from service.work.lease import LeaseKeeper
from service.work.outcomes import GONE, close_attempt, release_for_retry

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from structlog.stdlib import BoundLogger

    from service.db.feeds import Subscription, SubscriptionEntry
    from service.db.models import Client
    from service.media.feed import FeedEntry, Listing
    from service.runtime import Runtime

log = structlog.get_logger(__name__)

_RUNNING = (Status.RUNNING,)


@dataclass(frozen=True)
class Outcome:
    """What one check did, for its log line, the metrics and the tests."""

    ok: bool
    listed: int = 0
    new: int = 0
    queued: int = 0
    error: str | None = None
    #: Seconds from the check falling due to its outcome being recorded (the lag metric).
    lag_s: float | None = None


class _TakenMeanwhile(Exception):
    """Another check linked this entry first; this job is rolled back."""


def _unobserved(outcome: Outcome) -> None:
    """No metrics (the bench and the tests run checks in process)."""


def run_check(
    rt: Runtime, job_id: uuid.UUID, observe: Callable[[Outcome], None] = _unobserved
) -> Outcome | None:
    """Run one check job: its outcome, also given to ``observe`` once it is written on the
    subscription; None when there was nothing to run (not claimable, or its subscription
    went). A failure to retry is raised again after the job says ``retrying``."""
    claimed = claim(rt, job_id, Step.CHECK, Phase.PROBING)
    if claimed is None:
        return None
    job, owner = claimed.job, claimed.owner
    with rt.db.session() as session:
        sub = rows.get(session, job.subscription_id, None) if job.subscription_id else None
        client = client_rows.get(session, job.client_id)
    if sub is None or client is None:
        return None  # deleted meanwhile: its check jobs went with it
    bound = claimed.log.bind(subscription_id=str(sub.id))
    try:
        with LeaseKeeper(
            rt.db, job.id, owner, timedelta(seconds=rt.settings.lease_s), rt.settings.heartbeat_s
        ) as keeper:
            listing = list_entries(
                sub.url, max_entries=rt.settings.subscription_list_entries, limits=_limits(rt)
            )
            if keeper.lost.is_set():  # cancelled, deleted or taken over meanwhile
                raise LeaseLost()
        outcome = _record(rt, sub, job, owner, listing)
    except LeaseLost:
        with rt.db.session() as session:
            close_attempt(session, job.id, owner, AttemptOutcome.ABANDONED, error_message=GONE)
        bound.info("stopped", reason="lease lost")
        return None
    except Permanent as exc:
        observe(_failed_for_good(rt, sub, job, owner, exc, bound))
        raise
    except BaseException as exc:
        release_for_retry(rt, job, owner, exc, bound)
        if job.attempts >= job.max_attempts:  # its last attempt: the check failed
            observe(_record_failure(rt, sub, _error_of(exc), bound))
        raise
    observe(outcome)
    queued = admit(rt, sub, client)
    enforce_keep_last(rt, sub)
    bound.info(
        "subscription checked",
        listed=outcome.listed,
        new=outcome.new,
        queued=queued,
        capped=listing.capped,
    )
    return replace(outcome, queued=queued)


def _record(rt: Runtime, sub: Subscription, job: Job, owner: str, listing: Listing) -> Outcome:
    """End the check job and record what it found, in one transaction; ``LeaseLost`` (and
    nothing written) when the job is no longer this worker's."""
    with ending(rt) as ends:
        session = ends.session
        first = not rows.has_entries(session, sub.id)
        decided = _decide(sub, listing.entries, first=first)
        # Only keys not seen before are inserted (usually none); ON CONFLICT settles races.
        known = rows.known_keys(session, sub.id, [r["key"] for r in decided])
        new = rows.record_entries(session, [r for r in decided if r["key"] not in known])
        info = {
            "check": {"listed": len(listing.entries), "new": len(new), "capped": listing.capped}
        }
        if ends.job(job.id, Status.SUCCEEDED, owner=owner, only_from=_RUNNING, info=info) is None:
            raise LeaseLost()
        close_attempt(session, job.id, owner, AttemptOutcome.SUCCEEDED)
        after = rows.record_check(
            session, sub.id, error=None, max_failures=rt.settings.subscription_max_failures
        )
        found = events.entries_found(session, after or sub, new) if new else None
        if found is not None:
            ends.deliveries.append(found)
    return Outcome(ok=True, listed=len(listing.entries), new=len(new), lag_s=_lag(after))


def _error_of(exc: BaseException) -> str:
    if isinstance(exc, JobFailure):
        return f"{exc.error_class}: {exc}"[:1000]
    return f"{type(exc).__name__}: {exc}"[:1000]


def _failed_for_good(
    rt: Runtime, sub: Subscription, job: Job, owner: str, exc: Permanent, bound: BoundLogger
) -> Outcome:
    """The listing cannot succeed: the job fails and the subscription counts a failed check,
    in one transaction."""
    error = _error_of(exc)
    most = rt.settings.subscription_max_failures
    after = None
    with ending(rt) as ends:
        failed = ends.job(
            job.id,
            Status.FAILED,
            owner=owner,
            only_from=_RUNNING,
            error_class=exc.error_class,
            error_message=exc.message,
        )
        close_attempt(
            ends.session,
            job.id,
            owner,
            AttemptOutcome.FAILED,
            error_class=exc.error_class,
            error_message=exc.message,
        )
        if failed is not None:
            after = rows.record_check(ends.session, sub.id, error=error, max_failures=most)
            if after is not None:
                ends.deliveries.extend(
                    events.check_failed(ends.session, after, error, max_failures=most)
                )
    _log_failure(bound, error, after)
    return Outcome(ok=False, error=error, lag_s=_lag(after))


def _record_failure(rt: Runtime, sub: Subscription, error: str, bound: BoundLogger) -> Outcome:
    """The check's last attempt failed: the subscription counts a failed check."""
    most = rt.settings.subscription_max_failures
    sent: list[uuid.UUID] = []
    with rt.db.session() as session:
        after = rows.record_check(session, sub.id, error=error, max_failures=most)
        if after is not None:
            sent = events.check_failed(session, after, error, max_failures=most)
    announce_deliveries(rt, sent)
    _log_failure(bound, error, after)
    return Outcome(ok=False, error=error, lag_s=_lag(after))


def _log_failure(bound: BoundLogger, error: str, after: Subscription | None) -> None:
    bound.warning(
        "subscription check failed",
        error=error,
        paused=after is not None and after.paused_at is not None,
    )


def _lag(sub: Subscription | None) -> float | None:
    """Seconds from when this check fell due to when its outcome was recorded."""
    if sub is None or sub.last_due_at is None or sub.last_checked_at is None:
        return None
    return max(0.0, (sub.last_checked_at - sub.last_due_at).total_seconds())


def _decide(sub: Subscription, listed: list[FeedEntry], *, first: bool) -> list[dict[str, Any]]:
    """A row per listed entry (first of each key), in listing order, with its state."""
    filters = Filters.model_validate(sub.filters)
    kept = backfilled(listed, parse_backfill(sub.backfill)) if first else None
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(listed):
        reason: str | None
        try:
            url = normalize_url(entry.url)
        except UrlRejected as exc:
            url, state, reason = entry.url[:2048], EntryState.FILTERED, f"unusable URL: {exc}"
        else:
            state, reason = EntryState.PENDING, None
            if kept is not None and i not in kept:
                state, reason = (
                    EntryState.BEFORE_BACKFILL,
                    f"listed at the first check ({sub.backfill})",
                )
            elif (why := refusal(filters, entry)) is not None:
                state, reason = EntryState.FILTERED, why
        key = entry.key or f"url:{url}"
        if key in seen:
            continue
        seen.add(key)
        out.append(
            {
                "subscription_id": sub.id,
                "key": key,
                "url": url,
                "title": entry.title,
                "duration_s": entry.duration_s,
                "published_at": entry.published_at,
                "state": state.value,
                "reason": reason,
            }
        )
    return out


def admit(rt: Runtime, sub: Subscription, client: Client) -> int:
    """Make a job of each pending entry, through the client's admission; how many."""
    with rt.db.session() as session:
        waiting = rows.pending(session, sub.id, rt.settings.subscription_max_new)
    made = 0
    for entry in waiting:
        try:
            job = _admit_one(rt, sub, client, entry)
        except LimitExceeded as exc:
            assert entry.id is not None
            with rt.db.session() as session:
                rows.note_pending(session, entry.id, f"waiting for admission: {exc}")
            break  # the next entries would meet the same limit; the next check tries again
        if job is None:
            continue
        made += 1
        if job.held is None:
            publish_checked(rt, job)
    return made


def _admit_one(
    rt: Runtime, sub: Subscription, client: Client, entry: SubscriptionEntry
) -> Job | None:
    assert entry.id is not None
    entry_id = entry.id
    job = Job(
        client_id=sub.client_id,
        url=entry.url,
        options=sub.options,
        user_metadata=sub.user_metadata,
        step=Step.DOWNLOAD.value,
        max_attempts=rt.settings.max_retries + 1,
        callback_url=sub.callback_url,
    )

    def link(session: Any) -> None:
        if not rows.attach_job(session, entry_id, job.id, EntryState.QUEUED, None):
            raise _TakenMeanwhile

    try:
        insert(rt, client, job, idempotency_key=None, dedupe=True, then=link)
    except _TakenMeanwhile:
        return None
    except AlreadyAccepted as twin:
        with rt.db.session() as session:
            rows.attach_job(
                session,
                entry_id,
                twin.job.id,
                EntryState.DUPLICATE,
                f"already downloaded by job {twin.job.id}",
            )
        return None
    return job


def _limits(rt: Runtime) -> Limits:
    return Limits(
        egress=rt.settings.egress_policy,
        generic_extractor=rt.settings.generic_extractor,
        proxy=rt.settings.proxy,
        max_page_bytes=rt.settings.max_page_bytes,
    )
