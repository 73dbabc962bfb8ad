"""A client's live view of its jobs: state changes and progress as they happen; the
client-wide view also shows its subscriptions' events (new entries, failed checks).

State changes carry the id of their ``job_events`` row, so a client that
reconnects with ``Last-Event-ID`` is sent every change it missed (replayed from
the table) before the live ones; progress ticks carry no id and are simply the
latest numbers. A one-job view ends after the job's terminal state.

A client holds at most ``HAUL_SSE_MAX_STREAMS_PER_CLIENT`` views open on one API
process (the next is refused before its answer starts), and every open view checks
once per heartbeat that its key still stands: a revoked or replaced key's streams
end within one heartbeat, not when the client hangs up.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyio import to_thread

from service.db import clients as client_rows
from service.db import events as event_rows
from service.db import jobs as job_rows
from service.domain.states import TERMINAL, Status
from service.errors import NotFound, TooManyStreams

if TYPE_CHECKING:
    import uuid
    from collections.abc import AsyncIterator

    from service.db.models import Client, Job, JobEvent
    from service.live.hub import EventHub, Subscription
    from service.runtime import Runtime

_PROGRESS_FIELDS = ("phase", "progress", "bytes_done", "bytes_total", "speed", "eta")
_TERMINAL = {s.value for s in TERMINAL}


@dataclass(frozen=True)
class LiveEvent:
    """One message of the stream: ``state``, ``progress``, ``site`` (a breaker moved; admins
    only), ``subscription`` (what a subscription's check found or why it failed), or a
    keep-alive (``kind=None``)."""

    kind: str | None
    data: dict[str, Any]
    id: int | None = None

    @property
    def ends_job(self) -> bool:
        return self.kind == "state" and self.data.get("status") in _TERMINAL


def _state(event: JobEvent) -> LiveEvent:
    data = {"job_id": str(event.job_id), "status": event.status, "phase": event.phase}
    if event.at is not None:
        data["at"] = event.at.isoformat()
    return LiveEvent("state", data, event.id)


_SITE_FIELDS = ("site", "identity", "state", "failures", "opens", "retry_at", "reason")


def _from_change(change: dict[str, Any]) -> LiveEvent:
    if change.get("kind") == "site":
        # A breaker's move, for admins: live only (not replayed after a reconnect; GET
        # /v1/sites has the state).
        return LiveEvent("site", {k: change.get(k) for k in _SITE_FIELDS})
    if change.get("kind") == "subscription":
        # A subscription's check (service/subscriptions/events.py): live only, no id.
        data = {k: v for k, v in change.items() if k not in ("kind", "client_id")}
        return LiveEvent("subscription", data)
    if change.get("event_id") is not None:
        data = {
            "job_id": change["job_id"],
            "status": change["status"],
            "phase": change.get("phase"),
            "at": change.get("updated_at"),
        }
        if change.get("error_class"):
            data["error_class"] = change["error_class"]
        return LiveEvent("state", data, int(change["event_id"]))
    progress = {k: change.get(k) for k in _PROGRESS_FIELDS}
    return LiveEvent(
        "progress", {"job_id": change["job_id"], **progress, "at": change.get("updated_at")}
    )


def _snapshot(rt: Runtime, client: Client, job_id: uuid.UUID) -> tuple[Job, int]:
    with rt.db.session() as session:
        job = job_rows.get_for_client(session, job_id, client.id)
        if job is None:
            raise NotFound("no such job")
        return job, event_rows.last_id(session, client.id, job_id=job_id)


def check_job(rt: Runtime, client: Client, job_id: uuid.UUID) -> None:
    """Raise NotFound unless the job is the client's (before a stream is opened)."""
    _snapshot(rt, client, job_id)


def open_stream(
    rt: Runtime,
    hub: EventHub,
    client: Client,
    *,
    job_id: uuid.UUID | None = None,
    last_event_id: int | None = None,
    sites: bool = False,
) -> AsyncIterator[LiveEvent]:
    """The live events of one job, or of all the client's jobs (with ``sites``, an admin's,
    also the moves of site breakers); :class:`TooManyStreams` when the client already
    holds its limit of streams here.

    Subscribes now, before the answer starts, so neither a burst of requests can pass
    the limit nor a change slip between replay and live. The view lets go when it
    ends; should it never be started, when it is collected.
    """
    settings = rt.settings
    limit = settings.sse_max_streams_per_client
    if hub.streams_of(client.id) >= limit:
        raise TooManyStreams(value=limit, retry_after_s=math.ceil(settings.sse_heartbeat_s))
    sub = hub.subscribe(client.id, job_id, sites=sites and job_id is None)
    events = stream(
        rt,
        hub,
        client,
        sub,
        job_id=job_id,
        last_event_id=last_event_id,
        heartbeat_s=settings.sse_heartbeat_s,
    )
    weakref.finalize(events, hub.unsubscribe, sub)
    return events


async def stream(
    rt: Runtime,
    hub: EventHub,
    client: Client,
    sub: Subscription,
    *,
    job_id: uuid.UUID | None = None,
    last_event_id: int | None = None,
    heartbeat_s: float = 15.0,
) -> AsyncIterator[LiveEvent]:
    """The live events of one job, or of all the client's jobs, from ``sub`` (taken
    before the first replay); ends early once the client's key no longer stands."""
    loop = asyncio.get_running_loop()
    check_at = loop.time() + heartbeat_s
    sent: deque[int] = deque(maxlen=4096)  # ids already sent: commits may arrive out of id order
    try:
        if last_event_id is None and job_id is not None:
            job, newest = await to_thread.run_sync(_snapshot, rt, client, job_id)
            first = _job_state(job, newest)
            sent.append(newest)
            yield first
            if first.ends_job:
                return
            last = newest
        elif last_event_id is None:
            last = await to_thread.run_sync(last_id, rt, client)
        else:
            last = last_event_id
            async for event in _replay(rt, client, job_id, last, sent):
                last = max(last, event.id or last)
                yield event
                if job_id is not None and event.ends_job:
                    return
        while True:
            if sub.behind:
                sub.behind = False
                _drain(sub)
                async for event in _replay(rt, client, job_id, last, sent):
                    last = max(last, event.id or last)
                    yield event
                    if job_id is not None and event.ends_job:
                        return
            if loop.time() >= check_at:
                if not await to_thread.run_sync(_key_stands, rt, client):
                    return
                check_at = loop.time() + heartbeat_s
            try:
                change = await asyncio.wait_for(
                    sub.queue.get(), timeout=max(0.0, check_at - loop.time())
                )
            except TimeoutError:
                yield LiveEvent(None, {})
                continue
            event = _from_change(change)
            if event.id is not None:
                if event.id in sent:
                    continue
                sent.append(event.id)
                last = max(last, event.id)
            yield event
            if job_id is not None and event.ends_job:
                return
    finally:
        hub.unsubscribe(sub)


def _job_state(job: Job, event_id: int) -> LiveEvent:
    data: dict[str, Any] = {
        "job_id": str(job.id),
        "status": job.status,
        "phase": job.phase,
        "at": job.updated_at.isoformat() if job.updated_at else None,
    }
    if job.status == Status.RUNNING.value:
        data.update({k: getattr(job, k) for k in _PROGRESS_FIELDS})
    if job.error_class:
        data["error_class"] = job.error_class
    return LiveEvent("state", data, event_id or None)


def _key_stands(rt: Runtime, client: Client) -> bool:
    """The stream's key is still the client's, and not revoked."""
    with rt.db.session() as session:
        now = client_rows.get(session, client.id)
    return now is not None and now.revoked_at is None and now.key_hash == client.key_hash


def last_id(rt: Runtime, client: Client) -> int:
    """The client's newest state change: a page rendered after reading it connects its
    stream from there (``?after=``), so a change made meanwhile is replayed, not lost."""
    with rt.db.session() as session:
        return event_rows.last_id(session, client.id)


async def _replay(
    rt: Runtime, client: Client, job_id: uuid.UUID | None, after: int, sent: deque[int]
) -> AsyncIterator[LiveEvent]:
    def load() -> list[JobEvent]:
        with rt.db.session() as session:
            return event_rows.since(session, client.id, after, job_id=job_id)

    for row in await to_thread.run_sync(load):
        if row.id in sent:
            continue
        sent.append(row.id)  # type: ignore[arg-type]
        yield _state(row)


def _drain(sub: Subscription) -> None:
    while not sub.queue.empty():
        sub.queue.get_nowait()
