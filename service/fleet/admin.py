"""Admin control of the fleet: pause and resume queues and clients, limits per queue and site.

A paused queue or client, a full queue or a full site *holds* waiting jobs in
their rows (``held`` says why) instead of bouncing their messages: nothing is in
the broker for a held job, so a pause costs nothing however long it lasts and
survives any restart. Held jobs are released, best priority first, when the
reason goes away: by a resume or limit change here, by every worker after each
attempt (a slot may have freed), and by the sweep as a backstop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from service.db import control as control_rows
from service.db import sites as site_rows
from service.domain.breaker import BreakerState
from service.domain.control import LIMITED_QUEUES, PAUSABLE_QUEUES, Queue
from service.domain.pacing import pacing_of
from service.domain.sites import NotASite, family_of_host
from service.errors import Forbidden, InvalidInput, NotFound
from service.fleet.breaker_events import BreakerEvent, BreakerMove, breaker_moved
from service.fleet.gate import release_held, site_defaults
from service.intake.clients import is_admin
from service.webhooks.outbox import announce_deliveries, publish_unsent

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from service.db.models import Client, QueueControl, SiteLimit
    from service.runtime import Runtime


log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class QueueView:
    name: Queue
    paused_at: datetime | None
    max_running: int | None
    #: Waiting work by state (``queued``, ``retrying``) and by hold reason, and ``running``.
    depth: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BreakerView:
    """A site's breaker for one identity (``guest``, or ``client:<id>`` for its cookies)."""

    identity: str
    state: str
    failures: int
    opens: int
    opened_at: datetime | None
    retry_at: datetime | None
    reason: str | None
    #: Jobs held ``site_cooling`` behind it now.
    cooling: int


@dataclass(frozen=True)
class SiteView:
    site: str
    #: The site's own limit of running jobs (None: ``HAUL_SITE_MAX_RUNNING``).
    max_running: int | None
    running: int
    #: The pacing in force (own setting, built-in default or the deployment's), and the
    #: site's own settings (None: the default).
    min_interval_s: float = 0.0
    jitter: float = 0.0
    own_min_interval_s: float | None = None
    own_jitter: float | None = None
    next_start_at: datetime | None = None
    breakers: list[BreakerView] = field(default_factory=list)


def require_admin(client: Client, what: str = "queue control") -> None:
    if not is_admin(client):
        raise Forbidden(f"{what} needs an admin key")


def _known(name: str) -> Queue:
    if name not in PAUSABLE_QUEUES:
        raise NotFound(f"no such queue: {name!r}; queues are {', '.join(PAUSABLE_QUEUES)}")
    return Queue(name)


def queues(rt: Runtime, client: Client) -> list[QueueView]:
    require_admin(client)
    with rt.db.session() as session:
        switches = {c.queue: c for c in control_rows.controls(session)}
        depths = control_rows.job_depths(session)
        depths[Queue.CALLBACKS] = control_rows.delivery_depths(session)
    return [_view(name, switches.get(name), depths.get(name, {})) for name in PAUSABLE_QUEUES]


def _view(name: Queue, switches: QueueControl | None, depth: dict[str, int]) -> QueueView:
    return QueueView(
        name=name,
        paused_at=switches.paused_at if switches else None,
        max_running=switches.max_running if switches else None,
        depth=depth,
    )


def queue(rt: Runtime, client: Client, name: str) -> QueueView:
    wanted = _known(name)
    return next(v for v in queues(rt, client) if v.name == wanted)


def pause(rt: Runtime, client: Client, name: str) -> QueueView:
    """Nothing new starts on the queue; running work finishes; submissions wait as ``queued``."""
    require_admin(client)
    with rt.db.session() as session:
        control_rows.set_paused(session, _known(name), True)
    log.info("queue paused", queue=name, by=str(client.id))
    return queue(rt, client, name)


def resume(rt: Runtime, client: Client, name: str) -> QueueView:
    """Start the queue's waiting work again, best priority first."""
    require_admin(client)
    known = _known(name)
    with rt.db.session() as session:
        control_rows.set_paused(session, known, False)
    log.info("queue resumed", queue=name, by=str(client.id))
    if known is Queue.CALLBACKS:
        publish_unsent(rt)
    else:
        release_held(rt)
    return queue(rt, client, name)


def set_max_running(rt: Runtime, client: Client, name: str, max_running: int | None) -> QueueView:
    """Change a job queue's fleet-wide limit now; a higher limit starts waiting jobs at once."""
    require_admin(client)
    if _known(name) not in LIMITED_QUEUES:
        raise InvalidInput(f"max_running applies to {' and '.join(LIMITED_QUEUES)} only")
    with rt.db.session() as session:
        control_rows.set_max_running(session, name, max_running)
    log.info("queue limit set", queue=name, max_running=max_running, by=str(client.id))
    release_held(rt)
    return queue(rt, client, name)


def sites(rt: Runtime, client: Client) -> list[SiteView]:
    """Every site with settings, a pacing clock or a breaker that is not closed and clean."""
    require_admin(client)
    with rt.db.session() as session:
        rows = {row.site: row for row in site_rows.site_rows(session)}
        breakers = site_rows.breakers(session)
        cooling = site_rows.cooling_counts(session, site_defaults(rt).keyed)
        names = sorted({*rows, *(b.site for b in breakers)})
        running = {name: control_rows.running_on_site(session, name) for name in names}
    views = []
    for name in names:
        row = rows.get(name)
        views.append(
            _site_view(
                rt,
                name,
                row,
                running[name],
                [
                    BreakerView(
                        identity=b.identity,
                        state=b.state,
                        failures=b.failures,
                        opens=b.opens,
                        opened_at=b.opened_at,
                        retry_at=b.retry_at,
                        reason=b.reason,
                        cooling=cooling.get((b.site, b.identity), 0),
                    )
                    for b in breakers
                    if b.site == name
                ],
            )
        )
    return views


def _site_view(
    rt: Runtime, name: str, row: SiteLimit | None, running: int, breakers: list[BreakerView]
) -> SiteView:
    defaults = site_defaults(rt)
    own_interval = row.min_interval_s if row else None
    own_jitter = row.jitter if row else None
    pacing = pacing_of(name, own_interval, own_jitter, defaults.min_interval_s, defaults.jitter)
    return SiteView(
        site=name,
        max_running=row.max_running if row else None,
        running=running,
        min_interval_s=pacing.interval_s,
        jitter=pacing.jitter,
        own_min_interval_s=own_interval,
        own_jitter=own_jitter,
        next_start_at=row.next_start_at if row else None,
        breakers=breakers,
    )


def site(rt: Runtime, client: Client, name: str) -> SiteView:
    """One site as ``sites`` lists it (a site nobody configured: its defaults)."""
    clean = _site_name(name)
    found = next((v for v in sites(rt, client) if v.site == clean), None)
    return found or _site_view(rt, clean, None, 0, [])


def set_site_limit(rt: Runtime, client: Client, site: str, max_running: int) -> SiteView:
    return set_site(rt, client, site, {"max_running": max_running})


def set_site(rt: Runtime, client: Client, name: str, values: dict[str, Any]) -> SiteView:
    """Set a site's own ``max_running``, ``min_interval_s`` and ``jitter`` (those given; None
    goes back to the default); takes effect at the next claim."""
    require_admin(client)
    clean = _site_name(name)
    with rt.db.session() as session:
        site_rows.put_site(session, clean, values)
    log.info("site settings set", site=clean, by=str(client.id), **values)
    release_held(rt)
    return site(rt, client, clean)


def remove_site_limit(rt: Runtime, client: Client, site: str) -> None:
    require_admin(client)
    with rt.db.session() as session:
        if not control_rows.delete_site_limit(session, _site_name(site)):
            raise NotFound(f"no limit is set for site {site!r}")
    release_held(rt)


def reset_site(rt: Runtime, client: Client, name: str) -> SiteView:
    """Close every breaker of the site now; its cooling jobs are released."""
    require_admin(client)
    clean = _site_name(name)
    told: list[uuid.UUID] = []
    with rt.db.session() as session:
        closed = site_rows.reset(session, clean)
        for row, was in closed:
            if was is not BreakerState.CLOSED:
                told += breaker_moved(session, BreakerEvent.CLOSED, BreakerMove.of(row))
    announce_deliveries(rt, told)
    log.info("site breakers reset", site=clean, breakers=len(closed), by=str(client.id))
    release_held(rt)
    return site(rt, client, clean)


def _site_name(site: str) -> str:
    """A site as jobs record it: the site family of a host name (``youtu.be``: ``youtube.com``)."""
    if "/" in site or "@" in site:
        raise InvalidInput(f"not a site (a host name such as example.com): {site!r}")
    try:
        return family_of_host(site.strip())
    except NotASite:
        raise InvalidInput(f"not a site (a host name such as example.com): {site!r}") from None


def pause_client(rt: Runtime, client: Client, client_id: uuid.UUID, paused: bool) -> Client:
    """Hold (or release) every waiting job of one client; its running jobs finish."""
    require_admin(client)
    with rt.db.session() as session:
        changed = control_rows.set_client_paused(session, client_id, paused)
    if changed is None:
        raise NotFound("no such client")
    log.info("client paused" if paused else "client resumed", client=str(client_id))
    if not paused:
        release_held(rt)
    return changed
