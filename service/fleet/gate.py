"""The worker side of fleet control: release held jobs when a slot frees.

A paused queue or client, a full queue, site or client (``client_busy``) *holds*
waiting jobs in their rows; the gate itself runs inside the claim (``db/control.py:
gate``). A playlist's entries past their client's ``max_active_jobs`` are held
``client_full`` when the worker expands it (``db/room.py``). Held jobs are released,
best priority first, after every attempt that ran under a limit (or while its
client's entries wait for room), by a resume or limit change, and by the sweep as a
backstop; ``client_full`` entries also by a cancel or delete of their client's jobs
(``work/room.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from service.db import control as control_rows
from service.db import room as room_rows
from service.db import sites as site_rows
from service.db.sites import SiteDefaults
from service.dispatch import publish_or_record
from service.domain.control import LIMITED_QUEUES
from service.work.room import give_room

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


def release_held(rt: Runtime) -> int:
    """Publish the held jobs that may start now, in priority order; returns how many.

    One transaction per queue (each takes its queue's lock alone, so releases and
    claims always lock queue before site). Cheap when nothing is held.
    """
    with rt.db.session() as session:
        if not control_rows.any_held(session):
            return 0
    released = _release_entries(rt)
    for queue in LIMITED_QUEUES:
        with rt.db.session() as session:
            jobs = control_rows.release(
                session,
                queue,
                rt.settings.site_max_running,
                rt.settings.client_max_running,
                keyed=site_defaults(rt).keyed,
            )
        for job in jobs:
            publish_or_record(rt, job)
        released += len(jobs)
    if released:
        log.info("held jobs released", count=released)
    return released


def _release_entries(rt: Runtime) -> int:
    """Give room to entries held ``client_full``, one transaction per client (its row locked)."""
    with rt.db.session() as session:
        waiting = room_rows.clients_waiting(session)
    return sum(give_room(rt, client_id) for client_id in waiting)


def site_defaults(rt: Runtime) -> SiteDefaults:
    """Pacing for sites without their own, and whether workers can open cookies."""
    return SiteDefaults(
        min_interval_s=rt.settings.site_min_interval_s,
        jitter=rt.settings.site_pacing_jitter,
        keyed=bool(rt.settings.cookie_secrets),
    )


def release_paced(rt: Runtime, site: str) -> None:
    """An attempt on a paced site starts: the best job held ``site_paced`` there may come and
    reserve the next start. Never fails the caller (the sweep releases it otherwise)."""
    try:
        with rt.db.session() as session:
            jobs = site_rows.release_paced(session, site)
        for job in jobs:
            publish_or_record(rt, job)
    except Exception:
        log.warning("could not release a paced job; the sweep will", site=site, exc_info=True)


def release_quietly(rt: Runtime) -> None:
    """After an attempt: release what a freed slot allows, never failing the caller."""
    try:
        release_held(rt)
    except Exception:
        log.warning("could not release held jobs; the sweep will", exc_info=True)
