"""Who may start work, and at what priority: the pure rules behind pausing, limits and tiers.

A job that may not start yet is *held*: it stays ``queued`` (or ``retrying``) in
its row, with the reason in ``held``, and no message for it waits in the broker.
When the reason goes away (a resume, a slot freeing), it is released in priority
order and published again. Nothing here touches the database.
"""

from __future__ import annotations

from enum import StrEnum


class Hold(StrEnum):
    """Why a waiting job may not start now."""

    #: Its queue is paused by an admin.
    QUEUE_PAUSED = "queue_paused"
    #: Its client is paused by an admin.
    CLIENT_PAUSED = "client_paused"
    #: Its queue already runs ``max_running`` jobs, fleet-wide.
    QUEUE_FULL = "queue_full"
    #: Its site (the media's site family) already runs its limit of jobs, fleet-wide.
    SITE_FULL = "site_full"
    #: A playlist entry past its client's ``max_active_jobs``: it waits, not counted as
    #: active, until the client's active jobs fall.
    CLIENT_FULL = "client_full"
    #: Its client already runs its ``max_running`` jobs, fleet-wide.
    CLIENT_BUSY = "client_busy"
    #: Its site's breaker is open for the job's identity (the site throttled us): it waits
    #: until the breaker's ``retry_at`` without spending an attempt.
    SITE_COOLING = "site_cooling"
    #: Its site is paced and the next start slots are taken: the start before it releases it.
    SITE_PACED = "site_paced"


class Queue(StrEnum):
    """haul's queues, spelled once: ``<HAUL_QUEUE_PREFIX>.<name>`` in RabbitMQ, the name an
    admin pauses, the ``step`` a waiting job's row names (``probe``, ``download``)."""

    PROBE = "probe"
    DOWNLOAD = "download"
    SWEEPS = "sweeps"
    #: Webhook deliveries.
    CALLBACKS = "callbacks"
    #: Subscription checks and the scheduler's tick that finds due ones.
    SUBSCRIPTIONS = "subscriptions"


#: The queues an admin can pause; ``max_running`` applies to the two job queues only.
PAUSABLE_QUEUES = (Queue.PROBE, Queue.DOWNLOAD, Queue.CALLBACKS)
LIMITED_QUEUES = (Queue.PROBE, Queue.DOWNLOAD)


def tier_max_priority(tier: str, bounds: dict[str, int]) -> int:
    """The highest priority a client of ``tier`` may ask for; unknown tiers get the lowest bound."""
    if tier in bounds:
        return bounds[tier]
    return min(bounds.values(), default=0)


def free_slots(max_running: int | None, running: int) -> int | None:
    """How many more may start under a limit; None when there is no limit."""
    if max_running is None:
        return None
    return max(0, max_running - running)
