"""Queries behind pausing and fleet-wide limits: ``queue_controls``, ``site_limits``, held jobs.

The gate runs in the claim's own transaction, so what it decides and the claim it
allows commit together:

* the queue's row and the client's row are read ``FOR SHARE``: a pause or resume
  (an ``UPDATE`` of that row) waits for claims in flight, and later claims see it;
* a queue with ``max_running``, a client with ``max_running`` and a site with a limit
  are counted under a transaction-scoped advisory lock (queue, then client, then
  site), so claims on many machines take the last slot one at a time;
* only live leases count: a running job whose lease expired is a dead worker's.

Releasing held jobs takes the same locks, so a job held while a slot frees is
either seen by the release or was never held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db import sites as site_rows
from service.db.models import Client, Job, QueueControl, SiteLimit, WebhookDelivery
from service.db.sites import SiteDefaults, identity_sql
from service.domain import BATCH
from service.domain.breaker import Admission, BreakerState
from service.domain.control import Hold, free_slots
from service.domain.pacing import pacing_of
from service.domain.states import ACTIVE, WAITING, Kind, Phase, Status

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from sqlmodel import Session

_NOW = sa.func.now
_WAITING = [s.value for s in Status if s in WAITING]
#: The same states as SQL literals, for the one query written as text (a literal, not a
#: parameter, so the planner can match the partial indexes on ``status``).
_WAITING_SQL = ", ".join(f"'{s}'" for s in _WAITING)


@dataclass(frozen=True)
class QueueState:
    """A queue's switches as a claim sees them."""

    paused_at: datetime | None
    max_running: int | None


def _lock(session: Session, key: str) -> None:
    """A transaction-scoped lock on a name, shared by every process on this database."""
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0))))


def queue_state(session: Session, queue: str) -> QueueState:
    """The queue's switches, read ``FOR SHARE`` (a missing row means neither set)."""
    stmt = (
        sa.select(QueueControl.paused_at, QueueControl.max_running)
        .where(QueueControl.queue == queue)
        .with_for_update(read=True)
    )
    row = session.execute(stmt).first()
    return QueueState(None, None) if row is None else QueueState(row[0], row[1])


def client_paused(session: Session, client_id: uuid.UUID) -> bool:
    stmt = sa.select(Client.paused_at).where(Client.id == client_id).with_for_update(read=True)
    return session.execute(stmt).scalar() is not None


def _live() -> Any:
    return sa.and_(Job.status == Status.RUNNING.value, Job.lease_expires_at > _NOW())


def running_in_queue(session: Session, queue: str) -> int:
    stmt = sa.select(sa.func.count()).where(_live(), Job.step == queue)
    return int(session.execute(stmt).scalar_one())


def running_on_site(session: Session, site: str) -> int:
    stmt = sa.select(sa.func.count()).where(_live(), Job.site == site)
    return int(session.execute(stmt).scalar_one())


def running_of_client(session: Session, client_id: uuid.UUID) -> int:
    stmt = sa.select(sa.func.count()).where(_live(), Job.client_id == client_id)
    return int(session.execute(stmt).scalar_one())


def pause_reason(session: Session, queue: str, client_id: uuid.UUID) -> Hold | None:
    """Why nothing of this client may start on this queue now, if paused; takes the share locks."""
    if queue_state(session, queue).paused_at is not None:
        return Hold.QUEUE_PAUSED
    if client_paused(session, client_id):
        return Hold.CLIENT_PAUSED
    return None


@dataclass(frozen=True)
class Verdict:
    """What the gate decided for one claim."""

    #: Why the job may not start now; None lets the claim go ahead.
    hold: Hold | None
    #: Whether a queue, client or site limit applied, or entries of the client wait for
    #: room (``client_full``), or the job is its site's breaker trial: then the attempt's
    #: end releases held jobs.
    limited: bool
    #: Seconds until a paced site lets this attempt start (it waits that long).
    wait_s: float = 0.0
    #: The job's site when it is paced: its start releases the next job held ``site_paced``.
    paced_site: str | None = None
    #: The client's own storage quota (None: the default applies), read with the switches
    #: so the attempt needs no other read of the client.
    storage_quota_bytes: int | None = None
    #: Whether the client keeps cookies for any site: without, the attempt never looks.
    has_cookies: bool = True
    #: Whether the job's site has a breaker row for its identity (else a success has none
    #: to close).
    breaker_seen: bool = True
    #: Whether the client has a default webhook endpoint (a job of its without its own
    #: ``callback_url`` then has a delivery when it ends).
    has_endpoint: bool = True


_SWITCHES = sa.text(
    f"""
    SELECT q.paused_at, q.max_running, c.paused_at, j.site, s.max_running,
           j.client_id, c.max_running,
           EXISTS (SELECT 1 FROM jobs h
                   WHERE h.client_id = j.client_id AND h.held = '{Hold.CLIENT_FULL.value}'
                     AND h.status IN ({_WAITING_SQL})),
           s.min_interval_s, s.jitter, i.identity, b.state, c.storage_quota_bytes,
           EXISTS (SELECT 1 FROM site_cookies k WHERE k.client_id = j.client_id),
           c.default_callback_url IS NOT NULL
    FROM jobs j
    JOIN clients c ON c.id = j.client_id
    JOIN queue_controls q ON q.queue = :queue
    LEFT JOIN site_limits s ON s.site = j.site
    CROSS JOIN LATERAL (SELECT {identity_sql("j")} AS identity) i
    LEFT JOIN site_breakers b ON b.site = j.site AND b.identity = i.identity
    WHERE j.id = :job_id
    FOR SHARE OF q, c
    """  # noqa: S608 (only names from the enums are formatted in)
)


def gate(
    session: Session,
    job_id: uuid.UUID,
    queue: str,
    default_site_limit: int | None,
    default_client_limit: int | None = None,
    sites: SiteDefaults | None = None,
) -> Verdict:
    """Whether the job may start now, decided in the claim's transaction.

    One statement reads every switch (the queue's and the client's rows ``FOR SHARE``,
    the client's own ``max_running``, whether its entries wait for room, its site's
    pacing and its breaker for the job's identity); only a limit costs more: a lock
    and a count; a breaker that is not closed, its row locked; a paced site, the
    upsert that reserves its next start (last, so a job held for another reason
    reserves nothing).
    """
    sites = sites or SiteDefaults()
    params = {"queue": queue, "job_id": job_id, "keyed": sites.keyed}
    row = session.execute(_SWITCHES, params).first()
    if row is None:
        return Verdict(None, limited=False)  # the job is gone (the claim finds nothing)
    queue_paused, max_running, client_paused_at, site, own_site_limit = row[:5]
    client_id, own_client_limit, entries_wait = row[5:8]
    own_interval, own_jitter, identity, breaker, quota, has_cookies, has_endpoint = row[8:]
    client = {
        "breaker_seen": breaker is not None,
        "storage_quota_bytes": quota,
        "has_cookies": bool(has_cookies),
        "has_endpoint": bool(has_endpoint),
    }
    site_max = own_site_limit if own_site_limit is not None else default_site_limit
    client_max = own_client_limit if own_client_limit is not None else default_client_limit
    limited = (
        max_running is not None
        or client_max is not None
        or (site is not None and site_max is not None)
        or bool(entries_wait)
    )
    if queue_paused is not None:
        return Verdict(Hold.QUEUE_PAUSED, limited, **client)
    if client_paused_at is not None:
        return Verdict(Hold.CLIENT_PAUSED, limited, **client)
    if site is not None and breaker is not None and breaker != BreakerState.CLOSED.value:
        admission = site_rows.admit(session, site, identity, job_id)
        if admission is Admission.COOL:
            return Verdict(Hold.SITE_COOLING, limited, **client)
        limited = limited or admission is Admission.TRIAL
    if max_running is not None:
        _lock(session, f"haul.queue:{queue}")
        if running_in_queue(session, queue) >= max_running:
            return Verdict(Hold.QUEUE_FULL, limited, **client)
    if client_max is not None:
        _lock(session, f"haul.client:{client_id}")
        if running_of_client(session, client_id) >= client_max:
            return Verdict(Hold.CLIENT_BUSY, limited, **client)
    if site is not None and site_max is not None:
        _lock(session, f"haul.site:{site}")
        if running_on_site(session, site) >= site_max:
            return Verdict(Hold.SITE_FULL, limited, **client)
    pacing = pacing_of(site, own_interval, own_jitter, sites.min_interval_s, sites.jitter)
    if site is None or not pacing.paced:
        return Verdict(None, limited, **client)
    wait = site_rows.reserve_start(session, site, pacing.gap(), pacing.longest_gap)
    if wait is None:
        return Verdict(Hold.SITE_PACED, limited, **client)
    return Verdict(None, limited, wait_s=wait, paced_site=site, **client)


def hold(session: Session, job_id: uuid.UUID, reason: Hold) -> Job | None:
    """Keep a waiting job in its row, saying why; its message is spent (no ``published_at``)."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status.in_(_WAITING))
        .values(held=reason.value, published_at=None, updated_at=_NOW())
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalars().first()


def hold_if_paused(session: Session, job: Job) -> Job:
    """The job held in its row when its queue or client is paused (its message is not to be
    sent); otherwise the job as given. A subscription's check is never held: its queue has
    no switches (pausing the subscription is what stops its checks), and no release
    would ever let a held check go."""
    if job.kind == Kind.CHECK.value:
        return job
    reason = pause_reason(session, job.step, job.client_id)
    if reason is None:
        return job
    return hold(session, job.id, reason) or job


def any_held(session: Session) -> bool:
    stmt = sa.select(sa.exists().where(Job.held.is_not(None), Job.status.in_(_WAITING)))
    return bool(session.execute(stmt).scalar())


_RUNNING_SQL = f"'{Status.RUNNING.value}'"

_COOLING_SQL = f"'{Hold.SITE_COOLING.value}'"
_PACED_SQL = f"'{Hold.SITE_PACED.value}'"

_RELEASABLE = sa.text(
    f"""
    WITH waiting AS (
        SELECT j.id, j.site, j.client_id, j.priority, j.queued_at, j.held,
               row_number() OVER (PARTITION BY j.site ORDER BY j.priority DESC, j.queued_at) AS n,
               row_number() OVER (PARTITION BY j.client_id ORDER BY j.priority DESC, j.queued_at)
                   AS m,
               row_number() OVER (PARTITION BY j.site, j.held, i.identity
                                  ORDER BY j.priority DESC, j.queued_at) AS k,
               COALESCE(c.max_running, CAST(:default_client_limit AS integer)) AS client_limit,
               b.state AS breaker, b.retry_at, b.trial_job_id
        FROM jobs j JOIN clients c ON c.id = j.client_id
        CROSS JOIN LATERAL (SELECT {identity_sql("j")} AS identity) i
        LEFT JOIN site_breakers b ON b.site = j.site AND b.identity = i.identity
                                  AND j.held = {_COOLING_SQL}
        WHERE j.held IS NOT NULL AND j.held <> '{Hold.CLIENT_FULL.value}'
          AND j.step = :queue AND j.status IN ({_WAITING_SQL})
          AND c.paused_at IS NULL
    ), busy AS (
        SELECT w.client_id,
               (SELECT count(*) FROM jobs r
                WHERE r.client_id = w.client_id AND r.status = {_RUNNING_SQL}
                  AND r.lease_expires_at > now()) AS running
        FROM (SELECT DISTINCT client_id FROM waiting WHERE client_limit IS NOT NULL) w
    ), room AS (
        SELECT s.site,
               COALESCE(l.max_running, CAST(:default_site_limit AS integer)) AS site_limit,
               l.next_start_at,
               (SELECT count(*) FROM jobs r
                WHERE r.site = s.site AND r.status = {_RUNNING_SQL} AND r.lease_expires_at > now())
                   AS running
        FROM (SELECT DISTINCT site FROM waiting WHERE site IS NOT NULL) s
        LEFT JOIN site_limits l ON l.site = s.site
    )
    SELECT w.id FROM waiting w LEFT JOIN room ON room.site = w.site
    LEFT JOIN busy ON busy.client_id = w.client_id
    WHERE (room.site_limit IS NULL OR w.n <= room.site_limit - room.running)
      AND (w.client_limit IS NULL OR w.m <= w.client_limit - busy.running)
      -- a cooling job goes when its breaker closed, or as the one trial of a due breaker
      AND (w.held <> {_COOLING_SQL} OR w.breaker IS NULL OR w.breaker = 'closed'
           OR (w.k = 1 AND w.breaker = 'open' AND w.retry_at <= now())
           OR (w.k = 1 AND w.breaker = 'half_open' AND NOT EXISTS (
                   SELECT 1 FROM jobs t WHERE t.id = w.trial_job_id
                     AND t.status = {_RUNNING_SQL} AND t.lease_expires_at > now())))
      -- a paced job is released by the start before it; here only when none is reserved
      AND (w.held <> {_PACED_SQL}
           OR (w.k = 1 AND (room.next_start_at IS NULL OR room.next_start_at <= now())))
    ORDER BY w.priority DESC, w.queued_at
    LIMIT :room
    """  # noqa: S608 (only state names from the enum are formatted in)
)


def release(
    session: Session,
    queue: str,
    default_site_limit: int | None,
    default_client_limit: int | None = None,
    keyed: bool = False,
) -> list[Job]:
    """Clear ``held`` on the waiting jobs of a queue that may start now, best priority first.

    At most as many as the queue has free slots, and per site and per client as many as
    they have (a client's running jobs count over both queues, so a release of each may
    let a few more go than start: the claim's gate holds those again). Entries held
    ``client_full`` wait for their client's active jobs to fall instead (``db/room.py``).
    The caller publishes them after the commit.
    """
    state = queue_state(session, queue)
    if state.paused_at is not None:
        return []
    room: int | None = BATCH
    if state.max_running is not None:
        _lock(session, f"haul.queue:{queue}")
        room = free_slots(state.max_running, running_in_queue(session, queue))
    if not room:
        return []
    params = {
        "queue": queue,
        "default_site_limit": default_site_limit,
        "default_client_limit": default_client_limit,
        "room": room,
        "keyed": keyed,
    }
    ids = list(session.execute(_RELEASABLE, params).scalars())
    if not ids:
        return []
    stmt = (
        sa.update(Job)
        .where(Job.id.in_(ids), Job.held.is_not(None), Job.status.in_(_WAITING))
        .values(held=None, updated_at=_NOW())
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    released = list(session.execute(stmt).scalars())
    return sorted(released, key=lambda j: (-j.priority, j.queued_at))


# --- the admin's switches -----------------------------------------------------------------------


def set_paused(session: Session, queue: str, paused: bool) -> QueueControl | None:
    """Pause or resume a queue; waits for claims in flight on it (they hold the row shared)."""
    stmt = (
        sa.update(QueueControl)
        .where(QueueControl.queue == queue)
        .values(
            paused_at=sa.func.coalesce(QueueControl.paused_at, _NOW()) if paused else None,
            updated_at=_NOW(),
        )
        .returning(QueueControl)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalars().first()


def set_max_running(session: Session, queue: str, max_running: int | None) -> QueueControl | None:
    stmt = (
        sa.update(QueueControl)
        .where(QueueControl.queue == queue)
        .values(max_running=max_running, updated_at=_NOW())
        .returning(QueueControl)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalars().first()


def controls(session: Session) -> list[QueueControl]:
    return list(session.execute(sa.select(QueueControl).order_by(QueueControl.queue)).scalars())


def set_client_paused(session: Session, client_id: uuid.UUID, paused: bool) -> Client | None:
    stmt = (
        sa.update(Client)
        .where(Client.id == client_id)
        .values(paused_at=sa.func.coalesce(Client.paused_at, _NOW()) if paused else None)
        .returning(Client)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalars().first()


def put_site_limit(session: Session, site: str, max_running: int) -> SiteLimit:
    return site_rows.put_site(session, site, {"max_running": max_running})


def delete_site_limit(session: Session, site: str) -> bool:
    return session.execute(sa.delete(SiteLimit).where(SiteLimit.site == site)).rowcount == 1


# --- what an operator sees ----------------------------------------------------------------------


def job_depths(session: Session) -> dict[str, dict[str, int]]:
    """Per queue: waiting jobs by status and by hold, and live claims (``running``)."""
    waiting = sa.func.coalesce(Job.held, Job.status)
    stmt = (
        sa.select(Job.step, waiting, sa.func.count())
        .where(
            Job.status.in_([s.value for s in ACTIVE]),
            Job.phase.is_distinct_from(Phase.AWAITING_CHILDREN.value),
        )
        .group_by(Job.step, waiting)
    )
    depths: dict[str, dict[str, int]] = {}
    for step, state, n in session.execute(stmt):
        depths.setdefault(step, {})[state] = int(n)
    return depths


def delivery_depths(session: Session) -> dict[str, int]:
    """Pending webhook deliveries: waiting for a worker, or in an attempt now."""
    in_attempt = sa.and_(
        WebhookDelivery.claimed_until.is_not(None), WebhookDelivery.claimed_until > _NOW()
    )
    state = sa.case((in_attempt, "running"), else_="queued")
    stmt = (
        sa.select(state, sa.func.count()).where(WebhookDelivery.status == "pending").group_by(state)
    )
    return {s: int(n) for s, n in session.execute(stmt)}
