"""What the API does for a client's subscriptions: create, read, list, change, delete,
and check now. Every read and write filters by the calling client (admins may list all)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from service.db import clients as client_rows
from service.db import subscriptions as rows
from service.db.feeds import Subscription
from service.domain import cursors
from service.domain.options import JobOptions, Preset, normalize
from service.domain.states import DeliverySubject
from service.domain.urls import UrlRejected, normalize_url, refuse_non_public_literal
from service.errors import BadRequest, Forbidden, InvalidInput, NotFound, QuotaExceeded
from service.intake.clients import is_admin, limits_of
from service.subscriptions.filters import Backfill, Filters
from service.subscriptions.keep import remove_files
from service.subscriptions.schedule import max_attempts, ring
from service.webhooks.endpoints import check_url, subject_deliveries

if TYPE_CHECKING:
    import uuid

    from service.db.feeds import SubscriptionEntry
    from service.db.models import Client, Job
    from service.runtime import Runtime
    from service.webhooks.endpoints import DeliveryView

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription with what its checks found: entries seen, jobs by status, bytes."""

    sub: Subscription
    entries_seen: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    bytes_stored: int = 0
    #: Its newest check (a job of kind ``check``), None before the first.
    check: Job | None = None


@dataclass(frozen=True)
class Page:
    items: list[SubscriptionView]
    next_cursor: str | None


def create(
    rt: Runtime,
    client: Client,
    *,
    url: str,
    preset: Preset | None = None,
    options: JobOptions | None = None,
    interval_s: int = 3600,
    filters: Filters | None = None,
    backfill: Backfill = "none",
    keep_last: int | None = None,
    callback_url: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> SubscriptionView:
    """Store the subscription and ring for its first check at once.

    The URL is only checked for shape and address here: an unreachable or single-item
    URL is accepted, and its first check says what is wrong with it.
    """
    try:
        clean_url = normalize_url(url)
        refuse_non_public_literal(clean_url, rt.settings.egress_policy)
    except UrlRejected as exc:
        raise InvalidInput(str(exc)) from exc
    _check_interval(rt, interval_s)
    sub = Subscription(
        client_id=client.id,
        url=clean_url,
        options=normalize(preset, options).model_dump(mode="json"),
        user_metadata=metadata or {},
        callback_url=check_url(rt, callback_url) if callback_url is not None else None,
        interval_s=interval_s,
        filters=(filters or Filters()).model_dump(mode="json", exclude_none=True),
        backfill=str(backfill),
        keep_last=keep_last,
    )
    most = limits_of(rt.settings, client).max_subscriptions
    with rt.db.session() as session:
        if most is not None:
            client_rows.lock(session, client.id)  # concurrent creations count one by one
            used = rows.count_for_client(session, client.id)
            if used >= most:
                raise QuotaExceeded(
                    f"you have {used} subscriptions; the limit is {most} (max_subscriptions): "
                    "delete one first",
                    limit="max_subscriptions",
                    value=most,
                    current=used,
                )
        rows.insert(session, sub)
    check_now(rt, client, sub.id)
    return get(rt, client, sub.id)


def get(rt: Runtime, client: Client, sub_id: uuid.UUID) -> SubscriptionView:
    with rt.db.session() as session:
        sub = rows.get(session, sub_id, client.id)
        if sub is None:
            raise NotFound("no such subscription")
        found = rows.summaries(session, [sub.id])[sub.id]
    return SubscriptionView(sub=sub, **found)


def list_subscriptions(
    rt: Runtime, client: Client, *, every_client: bool = False, cursor: str | None, limit: int
) -> Page:
    """One page, newest first; ``every_client`` (admins) lists all clients' subscriptions."""
    limit = max(1, min(limit, rt.settings.page_size_max))
    after = _after(cursor) if cursor else None
    if every_client and not is_admin(client):
        raise Forbidden("listing every client's subscriptions needs an admin key")
    owner = None if every_client else client.id
    with rt.db.session() as session:
        found = rows.page(session, owner, after=after, limit=limit + 1)
        shown = found[:limit]
        sums = rows.summaries(session, [s.id for s in shown])
    last = shown[-1] if len(found) > limit else None
    return Page(
        items=[SubscriptionView(sub=s, **sums[s.id]) for s in shown],
        next_cursor=cursors.encode(last.created_at, last.id) if last is not None else None,
    )


def change(
    rt: Runtime,
    client: Client,
    sub_id: uuid.UUID,
    *,
    values: dict[str, Any],
    preset: Preset | None = None,
    options: JobOptions | None = None,
) -> SubscriptionView:
    """Change the interval, filters, paused, keep_last, callback or, for entries found from
    now on, preset and options. Resuming clears the failure count and the pause reason."""
    update: dict[str, Any] = {}
    if "interval_s" in values:
        _check_interval(rt, values["interval_s"])
        update["interval_s"] = values["interval_s"]
    if "filters" in values:
        filters = values["filters"] or Filters()
        update["filters"] = filters.model_dump(mode="json", exclude_none=True)
    if "keep_last" in values:
        update["keep_last"] = values["keep_last"]
    if "metadata" in values:
        update["user_metadata"] = values["metadata"] or {}
    if "callback_url" in values:
        raw = values["callback_url"]
        update["callback_url"] = check_url(rt, raw) if raw is not None else None
    if preset is not None or options is not None:
        update["options"] = normalize(preset, options).model_dump(mode="json")
    if "paused" in values:
        if values["paused"]:
            update |= {"paused_at": datetime.now().astimezone(), "paused_reason": "paused by you"}
        else:
            update |= {"paused_at": None, "paused_reason": None, "consecutive_failures": 0}
    with rt.db.session() as session:
        if rows.get(session, sub_id, client.id) is None:
            raise NotFound("no such subscription")
        if update:
            rows.update(session, sub_id, client.id, update)
    return get(rt, client, sub_id)


def delete(rt: Runtime, client: Client, sub_id: uuid.UUID, *, delete_files: bool) -> None:
    """Stop following; with ``delete_files`` also remove the files of the jobs it made
    (the jobs stay, as any job, so their history is kept)."""
    with rt.db.session() as session:
        made = rows.delete(session, sub_id, client.id)
    if made is None:
        raise NotFound("no such subscription")
    if delete_files:
        remove_files(rt, client.id, made, reason="its subscription was deleted")


def check_now(rt: Runtime, client: Client, sub_id: uuid.UUID) -> Job:
    """Make a check job now (also of a paused subscription), or answer with the one still
    queued, running or retrying; the next scheduled check moves one interval past now."""
    with rt.db.session() as session:
        claimed = rows.claim_now(session, sub_id, client.id)
        if claimed is None:
            raise NotFound("no such subscription")
        made = rows.add_checks(session, [claimed], max_attempts(rt))
        job = made[0] if made else rows.active_check(session, sub_id)
        if job is None:  # the active check ended in between: this one is the next
            made = rows.add_checks(session, [claimed], max_attempts(rt))
            job = made[0]
    ring(rt, made)
    return job


def deliveries(rt: Runtime, client: Client, sub_id: uuid.UUID) -> list[DeliveryView]:
    """The latest webhooks about this subscription (its events), each with its attempts."""
    with rt.db.session() as session:
        if rows.get(session, sub_id, client.id) is None:
            raise NotFound("no such subscription")
    return subject_deliveries(rt, client, DeliverySubject.SUBSCRIPTION, sub_id)


def entries(
    rt: Runtime, client: Client, sub_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[tuple[SubscriptionEntry, str | None]], str | None]:
    """Every entry seen, newest first, each with its job's status; and the next cursor."""
    limit = max(1, min(limit, rt.settings.page_size_max))
    try:
        after = int(cursor) if cursor else None
    except ValueError as exc:
        raise BadRequest("cursor is not valid; use next_cursor from a previous page") from exc
    with rt.db.session() as session:
        if rows.get(session, sub_id, client.id) is None:
            raise NotFound("no such subscription")
        found = rows.entries(session, sub_id, after=after, limit=limit + 1)
    shown = found[:limit]
    more = len(found) > limit
    return shown, str(shown[-1][0].id) if more else None


def _check_interval(rt: Runtime, interval_s: int | None) -> None:
    least = rt.settings.subscription_min_interval_s
    if interval_s is None:
        raise InvalidInput("interval_s cannot be null: leave it out to keep the interval")
    if interval_s < least:
        raise InvalidInput(f"interval_s must be at least {least} seconds")


def _after(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        return cursors.decode(cursor)
    except cursors.CursorRejected as exc:
        raise BadRequest(str(exc)) from exc
