"""The one way a job ends: ``succeeded``, ``failed`` or ``cancelled``.

Ending a job is always the same steps, written here once: the guarded UPDATE
(``db/transitions.py: end``); in the same transaction, whatever the caller adds
(an artifact, the attempt's row) and then the parents of the ended entries,
closed when none of their entries is active (entries first, then parents in id
order: the lock order of playlist trees); the commit; then the webhook doorbell
(``webhooks/outbox.py: announce``; the delivery row itself was written by the
database in the same transaction) and one log line per ended job.

Every ending uses :func:`ending`: a worker's outcome (success, permanent failure,
attempts exhausted at claim, dead letter), the lease sweep, a stranded playlist,
a user's cancel or delete. ``tests/unit/test_ending.py`` checks that nothing else
calls the functions of ``service.db`` that end a job, and that those all go
through ``transitions.end``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

from service.db import transitions, trees
from service.webhooks.outbox import announce, announce_deliveries

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterator

    from service.db.models import Job
    from service.domain.states import Status
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


class Ending:
    """The jobs ended in one transaction, and the parents whose entries did."""

    def __init__(self, session: Any) -> None:  # a db session; only service/db names its type
        self.session = session
        self.ended: list[Job] = []
        #: Other webhook deliveries written in this transaction (a site's breaker closed):
        #: announced after the commit with the jobs'.
        self.deliveries: list[uuid.UUID] = []
        self._parents: set[uuid.UUID] = set()
        #: Jobs known to have no webhook delivery (no callback URL, no default endpoint):
        #: nothing to announce for them, so no query after the commit.
        self.unheard: set[uuid.UUID] = set()

    def job(
        self,
        job_id: uuid.UUID,
        to: Status,
        *,
        owner: str | None = None,
        only_from: tuple[Status, ...] | None = None,
        **values: Any,
    ) -> Job | None:
        """End one job, guarded like every move (and by the lease, given its ``owner``);
        None when it had moved on."""
        ended = transitions.end_job(
            self.session, job_id, to, owner=owner, only_from=only_from, **values
        )
        return self._took(ended)

    def exhausted(self, job_id: uuid.UUID) -> Job | None:
        """Fail a job claimed ``max_attempts`` times without an outcome (``attempts_exhausted``)."""
        return self._took(transitions.fail_exhausted(self.session, job_id))

    def dead_lettered(self, job_id: uuid.UUID, reason: str) -> Job | None:
        """Fail a waiting job whose message ran out of retries, with the last error it saw."""
        return self._took(transitions.dead_letter(self.session, job_id, reason))

    def cancel(self, job_id: uuid.UUID) -> Job | None:
        """A user's cancel: the job and its unfinished entries; None when it cannot be."""
        ended = trees.cancel_tree(self.session, job_id)
        for job in ended:
            self._took(job)
        return ended[0] if ended else None

    def entry_left(self, parent_id: uuid.UUID) -> None:
        """An entry of ``parent_id`` ended or went away elsewhere: close the parent if done."""
        self._parents.add(parent_id)

    def _took(self, job: Job | None) -> Job | None:
        if job is not None:
            self.ended.append(job)
            if job.parent_id is not None:
                self._parents.add(job.parent_id)
        return job

    def close_parents(self) -> None:
        """Last in the transaction: each parent, in id order, closed if no entry is active."""
        for parent_id in sorted(self._parents):
            closed = trees.finish_parent_if_done(self.session, parent_id)
            if closed is not None:
                self.ended.append(closed)


@contextmanager
def ending(rt: Runtime) -> Iterator[Ending]:
    """A transaction in which jobs may end; on leaving it, parents close, it commits, and
    every job that ended is announced and logged. An error rolls it all back."""
    with rt.db.session() as session:
        ends = Ending(session)
        yield ends
        ends.close_parents()
    announce_deliveries(rt, ends.deliveries)
    if not ends.ended:
        return
    # Only top-level jobs have webhook deliveries; a playlist's entries report through it.
    told = [j.id for j in ends.ended if j.parent_id is None and j.id not in ends.unheard]
    announce(rt, *told)
    for job in ends.ended:
        log.info(
            "job ended",
            job_id=str(job.id),
            status=job.status,
            error_class=job.error_class,
            parent_id=str(job.parent_id) if job.parent_id is not None else None,
        )
