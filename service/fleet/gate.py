"""The worker side of fleet control: release held jobs when a slot frees.

A paused queue or client, a full queue or a full site *holds* waiting jobs in their
rows; the gate itself runs inside the claim (``db/control.py: gate``). Held jobs
are released, best priority first, after every attempt that ran under a limit, by
a resume or limit change, and by the sweep as a backstop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from service.db import control as control_rows
from service.dispatch import publish_or_record
from service.domain.control import LIMITED_QUEUES

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
    released = 0
    for queue in LIMITED_QUEUES:
        with rt.db.session() as session:
            jobs = control_rows.release(session, queue, rt.settings.site_max_running)
        for job in jobs:
            publish_or_record(rt, job)
        released += len(jobs)
    if released:
        log.info("held jobs released", count=released)
    return released


def release_quietly(rt: Runtime) -> None:
    """After an attempt: release what a freed slot allows, never failing the caller."""
    try:
        release_held(rt)
    except Exception:
        log.warning("could not release held jobs; the sweep will", exc_info=True)
