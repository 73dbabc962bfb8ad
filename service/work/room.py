"""Room under ``max_active_jobs`` given back to a client's playlist entries held ``client_full``.

A probe holds a playlist's entries past its client's limit (``work/probe.py``); each job
of that client that stops being active makes room for one. After an attempt the gate
gives it (``fleet/gate.py``, for every waiting client); a user's cancel or delete gives
it at once (``intake/jobs.py``), so the held entries do not wait for another attempt of
the client's to end, or for the sweep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.db import room as room_rows
from service.dispatch import publish_or_record

if TYPE_CHECKING:
    import uuid

    from service.runtime import Runtime


def give_room(rt: Runtime, client_id: uuid.UUID) -> int:
    """Queue as many of the client's held entries as its limit allows now, best priority
    first, in one transaction under the client's lock; then publish them. How many."""
    with rt.db.session() as session:
        jobs = room_rows.release_entries(session, client_id, rt.settings.client_max_active_jobs)
    for job in jobs:
        publish_or_record(rt, job)
    return len(jobs)
