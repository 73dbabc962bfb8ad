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
from typing import TYPE_CHECKING

import structlog

from service.db import control as control_rows
from service.domain.control import LIMITED_QUEUES, PAUSABLE_QUEUES, Queue, site_of
from service.errors import Forbidden, InvalidInput, NotFound
from service.fleet.gate import release_held
from service.intake.clients import is_admin
from service.webhooks.outbox import publish_unsent

if TYPE_CHECKING:
    import uuid
    from datetime import datetime

    from service.db.models import Client, QueueControl
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
class SiteView:
    site: str
    max_running: int
    running: int


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
    require_admin(client)
    with rt.db.session() as session:
        return [
            SiteView(site=limit.site, max_running=limit.max_running, running=running)
            for limit, running in control_rows.site_limits(session)
        ]


def set_site_limit(rt: Runtime, client: Client, site: str, max_running: int) -> SiteView:
    require_admin(client)
    clean = _site_name(site)
    with rt.db.session() as session:
        limit = control_rows.put_site_limit(session, clean, max_running)
        running = control_rows.running_on_site(session, clean)
    log.info("site limit set", site=clean, max_running=max_running, by=str(client.id))
    release_held(rt)
    return SiteView(site=limit.site, max_running=limit.max_running, running=running)


def remove_site_limit(rt: Runtime, client: Client, site: str) -> None:
    require_admin(client)
    with rt.db.session() as session:
        if not control_rows.delete_site_limit(session, _site_name(site)):
            raise NotFound(f"no limit is set for site {site!r}")
    release_held(rt)


def _site_name(site: str) -> str:
    """A site as jobs record it: a host name, lower-cased, without ``www.``."""
    clean = site_of(f"http://{site.strip()}/")
    if not clean or len(clean) > 253 or "/" in site or "@" in site:
        raise InvalidInput(f"not a site (a host name such as example.com): {site!r}")
    return clean


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
