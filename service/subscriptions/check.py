"""One check of a subscription: list the feed, record each entry once, admit new ones.

1. The feed is listed flat (``media/feed.py``): no media is fetched. A listing that
   fails (unreachable, not a feed, refused by the egress policy) is written on the
   subscription (``last_outcome=failed``, ``last_error``, one more consecutive failure;
   the ``HAUL_SUBSCRIPTION_MAX_FAILURES``-th pauses it) and is not retried before the
   next interval.
2. The entries are inserted in one statement, ``ON CONFLICT DO NOTHING`` on the
   subscription and the entry's key; only those this check inserted are decided here:
   before the backfill (first check), filtered, or pending.
3. Pending entries, this check's and those a quota refused before, are admitted as jobs
   (at most ``HAUL_SUBSCRIPTION_MAX_NEW`` per check), each through ``intake.admission``
   in the transaction that links the entry to its job with a guarded UPDATE: two checks
   racing make one job per entry. A refused one stays pending, saying why.
4. Files beyond ``keep_last`` are removed.

What a check found or why it failed is announced (``events``: webhook and live stream)
in the transaction of step 1 or 2, so a redelivered check announces nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from service.db import clients as client_rows
from service.db import subscriptions as rows
from service.db.feeds import EntryState
from service.db.models import Job
from service.dispatch import publish_checked
from service.domain.states import Step
from service.domain.urls import UrlRejected, normalize_url
from service.errors import JobFailure, LimitExceeded
from service.intake.admission import AlreadyAccepted, insert
from service.media.feed import list_entries
from service.media.limits import Limits
from service.subscriptions import events
from service.subscriptions.filters import Filters, backfilled, parse_backfill, refusal
from service.subscriptions.keep import enforce_keep_last
from service.webhooks.outbox import announce_deliveries

if TYPE_CHECKING:
    import uuid

    from service.db.feeds import Subscription, SubscriptionEntry
    from service.db.models import Client
    from service.media.feed import FeedEntry
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


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


def run_check(rt: Runtime, sub_id: uuid.UUID) -> Outcome | None:
    """Check one subscription now; None when it no longer exists."""
    with rt.db.session() as session:
        sub = rows.get(session, sub_id, None)
        client = client_rows.get(session, sub.client_id) if sub is not None else None
    if sub is None or client is None:
        return None
    bound = log.bind(subscription_id=str(sub.id), client_id=str(sub.client_id))
    try:
        listing = list_entries(
            sub.url, max_entries=rt.settings.subscription_list_entries, limits=_limits(rt)
        )
    except JobFailure as exc:
        error = f"{exc.error_class}: {exc}"[:1000]
        most = rt.settings.subscription_max_failures
        sent: list[uuid.UUID] = []
        with rt.db.session() as session:
            after = rows.record_check(session, sub.id, error=error, max_failures=most)
            if after is not None:
                sent = events.check_failed(session, after, error, max_failures=most)
        announce_deliveries(rt, sent)
        bound.warning(
            "subscription check failed",
            error=error,
            paused=after is not None and after.paused_at is not None,
        )
        return Outcome(ok=False, error=error, lag_s=_lag(after))
    with rt.db.session() as session:
        first = not rows.has_entries(session, sub.id)
        decided = _decide(sub, listing.entries, first=first)
        # Only keys not seen before are inserted (usually none); ON CONFLICT settles races.
        known = rows.known_keys(session, sub.id, [r["key"] for r in decided])
        new = rows.record_entries(session, [r for r in decided if r["key"] not in known])
        after = rows.record_check(
            session, sub.id, error=None, max_failures=rt.settings.subscription_max_failures
        )
        found = events.entries_found(session, after or sub, new) if new else None
    if found is not None:
        announce_deliveries(rt, [found])
    queued = admit(rt, sub, client)
    enforce_keep_last(rt, sub)
    bound.info(
        "subscription checked",
        listed=len(listing.entries),
        new=len(new),
        queued=queued,
        capped=listing.capped,
    )
    return Outcome(
        ok=True, listed=len(listing.entries), new=len(new), queued=queued, lag_s=_lag(after)
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
