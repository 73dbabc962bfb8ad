"""Fan job changes out to live subscribers, with one database listener per process.

Any API process can serve any client: the changes come from PostgreSQL
(``LISTEN haul_jobs``), not from the worker that made them. A subscriber has a
bounded queue and the dispatcher never waits on it, so a slow client cannot slow
the others: when its queue is full it is marked ``behind`` and catches up from
``job_events`` instead (state changes are never lost; progress ticks may be).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from service.db.notify import job_changes

if TYPE_CHECKING:
    import uuid

log = structlog.get_logger(__name__)


@dataclass(eq=False)
class Subscription:
    """One live view: all of a client's jobs, or one job."""

    client_id: uuid.UUID
    job_id: uuid.UUID | None
    #: An admin's view of all jobs also gets the moves of site breakers (``kind: site``).
    sites: bool = False
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(256))
    #: Set when changes were dropped (queue full, listener reconnected): replay from the table.
    behind: bool = False

    def wants(self, change: dict[str, Any]) -> bool:
        if change.get("kind") == "site":
            return self.sites
        if change.get("client_id") != str(self.client_id):
            return False
        return self.job_id is None or change.get("job_id") == str(self.job_id)


class EventHub:
    """The process's listener and its subscribers; ``start``/``stop`` with the app."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._connections = 0
        self.connected = asyncio.Event()

    def subscribe(
        self, client_id: uuid.UUID, job_id: uuid.UUID | None = None, *, sites: bool = False
    ) -> Subscription:
        sub = Subscription(client_id, job_id, sites=sites)
        self._subscribers.add(sub)
        return sub

    def streams_of(self, client_id: uuid.UUID) -> int:
        """How many live views this client holds open on this process."""
        return sum(1 for sub in self._subscribers if sub.client_id == client_id)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def dispatch(self, change: dict[str, Any]) -> None:
        """Hand a change to every subscriber that wants it, without ever waiting."""
        for sub in list(self._subscribers):
            if not sub.wants(change):
                continue
            try:
                sub.queue.put_nowait(change)
            except asyncio.QueueFull:
                sub.behind = True

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="job-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        async for change in job_changes(self.database_url, on_connect=self._connected):
            self.dispatch(change)

    async def _connected(self) -> None:
        """After a reconnect, notifications sent meanwhile are gone: everyone replays."""
        self._connections += 1
        if self._connections > 1:
            for sub in self._subscribers:
                sub.behind = True
            log.info("job change listener reconnected", subscribers=len(self._subscribers))
        self.connected.set()
