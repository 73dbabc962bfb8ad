"""Keep a running job's lease alive and its progress on the row, from a side thread.

The download thread only records progress in memory; this thread writes it at
most once per heartbeat, renewing the lease in the same guarded update. When the
update matches no row (cancelled, deleted, taken over) it sets ``lost``, which
the download's hooks check on every chunk, so a cancel stops the download
within a heartbeat or two.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from service.db import transitions, trees
from service.domain.states import Phase

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta
    from types import TracebackType

    from service.db.engine import Database
    from service.media.download import Progress

log = structlog.get_logger(__name__)


class LeaseKeeper:
    """Heartbeat thread for one claimed job; use as a context manager."""

    def __init__(
        self,
        db: Database,
        job_id: uuid.UUID,
        owner: str,
        lease: timedelta,
        interval: float,
        *,
        parent_id: uuid.UUID | None = None,
        parent_every: timedelta | None = None,
    ) -> None:
        """``parent_id`` and ``parent_every``: a playlist entry also moves its
        parent's own progress, at most once per ``parent_every``."""
        self.db = db
        self.job_id = job_id
        self.owner = owner
        self.lease = lease
        self.interval = interval
        self.parent = (parent_id, parent_every) if parent_id and parent_every else None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        #: When the lease was last taken or renewed (monotonic): the claim just took it.
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def progress(self, p: Progress) -> None:
        """Called by the download thread on every chunk; cheap, no I/O."""
        with self._lock:
            self._pending.update(
                bytes_done=p.bytes_done,
                bytes_total=p.bytes_total,
                speed=p.speed,
                eta=p.eta,
                progress=p.fraction,
            )

    def postprocessing(self) -> None:
        with self._lock:
            self._pending["phase"] = Phase.POSTPROCESSING.value

    def beat(self) -> None:
        """Renew the lease and flush progress now; sets ``lost`` if the job is gone."""
        with self._lock:
            fields, self._pending = self._pending, {}
        try:
            with self.db.session() as session:
                held = transitions.heartbeat(session, self.job_id, self.owner, self.lease, **fields)
                if held and self.parent is not None and "progress" in fields:
                    trees.spread_progress(session, *self.parent)
        except Exception:
            # The database may be back before the lease runs out; the next beat tries again.
            log.warning("heartbeat failed", job_id=str(self.job_id), exc_info=True)
            with self._lock:
                self._pending = fields | self._pending
            return
        if not held:
            self.lost.set()
        else:
            self._renewed = time.monotonic()

    def renew_if_due(self) -> None:
        """Before the final steps: renew the lease only when less than half of it is left.

        A short download ends well inside the lease its claim took, and the final write is
        guarded by the lease anyway (a job cancelled meanwhile is not overwritten, and
        its file is removed), so a write here would only cost a statement and a commit.
        """
        if time.monotonic() - self._renewed > self.lease.total_seconds() / 2:
            self.beat()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()
            if self.lost.is_set():
                return

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
