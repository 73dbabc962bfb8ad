"""The job state machine, written once.

Every state change in the database is a guarded update whose ``WHERE status IN``
list comes from :func:`sources`, so the SQL cannot allow what this table forbids;
and a trigger on ``jobs``, generated from :data:`TRANSITIONS` (migration 0008),
refuses any other move, so neither can SQL written by hand.
"""

from __future__ import annotations

from enum import StrEnum

from service.domain.control import Queue


class Status(StrEnum):
    """Where a job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Phase(StrEnum):
    """What a running job is doing."""

    PROBING = "probing"
    DOWNLOADING = "downloading"
    POSTPROCESSING = "postprocessing"
    AWAITING_CHILDREN = "awaiting_children"


class Step(StrEnum):
    """Which actor a queued job waits for: the one of its queue, which has the same name."""

    PROBE = Queue.PROBE.value
    DOWNLOAD = Queue.DOWNLOAD.value
    #: A subscription's check, taken by ``check_subscription`` on the subscriptions queue.
    CHECK = Queue.SUBSCRIPTIONS.value


class Kind(StrEnum):
    """What a job is for: ``jobs.kind``, fixed at insert (its ``step`` moves, its kind never).

    A ``check`` lists a subscription's feed: a job like any other for attempts, retries,
    leases and sweeps, but it fires no job-ended webhook, does not count toward
    ``max_active_jobs`` and is left out of the job lists unless asked for.
    """

    DOWNLOAD = "download"
    CHECK = "check"


class AttemptOutcome(StrEnum):
    """How one attempt (one claim of a job) ended: ``job_attempts.outcome``, a metric label."""

    #: Its work is done: the file stored, the probe handed over, the playlist expanded.
    SUCCEEDED = "succeeded"
    #: A permanent failure: the job failed with it.
    FAILED = "failed"
    #: A transient failure: the job waits out a backoff as ``retrying``.
    RETRY = "retry"
    #: The job was cancelled, deleted or taken over, or its worker died (the lease sweep).
    ABANDONED = "abandoned"
    #: Its worker shut down and queued the job again without spending the attempt.
    HANDED_BACK = "handed_back"


class DeliveryStatus(StrEnum):
    """Where a webhook delivery stands; a job's ``callback_status`` is its latest one's."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliverySubject(StrEnum):
    """What a webhook delivery reports on: a job's end, a subscription's checks, or
    (for the circuit breaker) a site. The outbox, its sweep and its delivery are the
    same for every kind; only a job's body is built at the first attempt."""

    JOB = "job"
    SUBSCRIPTION = "subscription"
    SITE = "site"


TERMINAL: frozenset[Status] = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
ACTIVE: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING, Status.RETRYING})
#: Waiting for a worker: what a claim takes, a gate holds and a release lets go.
WAITING: frozenset[Status] = frozenset({Status.QUEUED, Status.RETRYING})

#: Every allowed move. Terminal states are stable except for an explicit retry.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    # claimed by a worker; cancelled by a user; failed when it can never run
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
    # queued again: probe handed over to download, or the sweep took an expired lease
    Status.RUNNING: frozenset(
        {
            Status.QUEUED,
            Status.RETRYING,
            Status.SUCCEEDED,
            Status.FAILED,
            Status.CANCELLED,
        }
    ),
    # claimed again after the backoff; cancelled; failed when dead-lettered
    Status.RETRYING: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
    Status.SUCCEEDED: frozenset(),
    # explicit retry by a user: a job goes back to the queue; a playlist parent goes
    # straight back to running (awaiting its entries, which the retry queued again),
    # because probing the playlist again would make a second set of entries
    Status.FAILED: frozenset({Status.QUEUED, Status.RUNNING}),
    Status.CANCELLED: frozenset({Status.QUEUED, Status.RUNNING}),
}


def can_move(current: Status, target: Status) -> bool:
    """Whether a job in ``current`` may move to ``target``."""
    return target in TRANSITIONS[current]


def sources(target: Status) -> tuple[Status, ...]:
    """The states a job may move to ``target`` from, in a stable order."""
    return tuple(s for s in Status if target in TRANSITIONS[s])


def is_terminal(status: Status) -> bool:
    """A terminal job stays where it is unless a user retries it."""
    return status in TERMINAL
