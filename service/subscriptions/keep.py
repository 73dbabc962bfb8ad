"""Files a subscription no longer keeps: beyond its ``keep_last``, or all of them when it
is deleted with ``delete_files``.

The artifact rows go and each job's ``info`` says why its file was removed, in one
transaction; the files are removed after the commit (a crash in between leaves an
orphan file, which the orphans sweep removes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from service.db import subscriptions as rows
from service.work import storage

if TYPE_CHECKING:
    import uuid

    from service.db.feeds import Subscription
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


def enforce_keep_last(rt: Runtime, sub: Subscription) -> int:
    """Remove the files of this subscription beyond its newest ``keep_last``; how many."""
    if sub.keep_last is None:
        return 0
    with rt.db.session() as session:
        surplus = rows.surplus_files(session, sub.id, sub.keep_last)
    reason = f"keep_last={sub.keep_last} of subscription {sub.id}"
    return remove_files(rt, sub.client_id, [job_id for job_id, _ in surplus], reason=reason)


def remove_files(
    rt: Runtime, client_id: uuid.UUID, job_ids: list[uuid.UUID], *, reason: str
) -> int:
    """Delete these jobs' files and artifact rows, saying why on each job; how many."""
    if not job_ids:
        return 0
    with rt.db.session() as session:
        gone = rows.forget_files(session, job_ids, reason)
    for job_id in gone:
        storage.remove_job_files(rt.settings.storage_dir, client_id, job_id)
    if gone:
        log.info("subscription files removed", count=len(gone), reason=reason)
    return len(gone)
