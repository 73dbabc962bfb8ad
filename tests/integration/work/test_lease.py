"""The lease keeper (``work/lease.py``) on a real database: what its heartbeat writes on
the row, what it keeps through a failed beat, when it renews, and that its thread beats
on its own and ends with the attempt.

The guard itself (a former owner's heartbeat changes nothing and sets ``lost``) is
pinned in ``test_guarantees.py``; these pin the keeper around it, so that a changed
keeper fails here in seconds (mutation testing, docs/testing.md).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db.models import Job
from service.domain.states import Phase, Status
from service.media.download import Progress
from service.work import lease as keeping
from service.work.lease import LeaseKeeper
from tests.support.jobs import must
from tests.support.logs import captured
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable, Iterator

    from service.db import Session
    from service.db.engine import Database
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

OWNER = "worker-1/abcd"
LEASE = timedelta(minutes=5)
#: How often an entry may move its parent: any age of the parent's row will do.
EVERY = timedelta(milliseconds=1)
HALF = Progress(bytes_done=1000, bytes_total=2000, speed=10.0, eta=100)


def held(job: Callable[..., uuid.UUID], lease: timedelta = LEASE, **fields: Any) -> uuid.UUID:
    """A job OWNER runs, its lease ending ``lease`` from now."""
    return job(
        status=Status.RUNNING.value,
        phase=Phase.DOWNLOADING.value,
        lease_owner=OWNER,
        lease_expires_in=lease,
        attempts=1,
        **fields,
    )


def database_now(runtime: Runtime) -> Any:
    with runtime.db.session() as session:
        return session.execute(sa.select(sa.func.now())).scalar_one()


def keeper_threads(job_id: uuid.UUID) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"lease-{job_id}"]


class FailsOnce:
    """The database as the keeper sees it through a short outage: its next session fails."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.down = True

    @contextmanager
    def session(self) -> Iterator[Session]:
        if self.down:
            self.down = False
            raise sa.exc.OperationalError(
                "UPDATE jobs", {}, Exception("server closed the connection")
            )
        with self.db.session() as session:
            yield session


class Stuck:
    """The database as the keeper sees it when a statement hangs: a session never opens
    until the test lets it (``free``)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.free = threading.Event()

    @contextmanager
    def session(self) -> Iterator[Session]:
        self.entered.set()
        self.free.wait(timeout=60)
        raise sa.exc.OperationalError("UPDATE jobs", {}, Exception("timed out"))
        yield  # a generator, never reached


def test_a_beat_writes_the_progress_and_renews_the_lease(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = held(job, lease=timedelta(seconds=30))
    keeper = LeaseKeeper(runtime.db, job_id, OWNER, LEASE, interval=60)
    keeper.progress(HALF)
    before = database_now(runtime)
    keeper.beat()
    after = must(runtime, job_id)
    assert not keeper.lost.is_set()
    assert (after.bytes_done, after.bytes_total, after.speed, after.eta, after.progress) == (
        1000,
        2000,
        10.0,
        100,
        0.5,
    )
    assert after.lease_expires_at is not None
    assert after.lease_expires_at >= before + LEASE, "the lease is renewed by the keeper's lease"
    assert after.phase == Phase.DOWNLOADING.value


def test_a_beat_with_nothing_new_renews_the_lease_and_keeps_the_progress(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = held(job, lease=timedelta(seconds=30))
    keeper = LeaseKeeper(runtime.db, job_id, OWNER, LEASE, interval=60)
    keeper.progress(HALF)
    keeper.beat()
    first = must(runtime, job_id).lease_expires_at
    keeper.beat()
    after = must(runtime, job_id)
    assert after.lease_expires_at is not None and first is not None
    assert after.lease_expires_at > first
    assert (after.bytes_done, after.progress) == (1000, 0.5)
    keeper.progress(Progress(bytes_done=1500, bytes_total=2000, speed=None, eta=None))
    keeper.beat()
    assert (must(runtime, job_id).bytes_done, must(runtime, job_id).speed) == (1500, None)


def test_postprocessing_is_written_with_the_next_beat(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = held(job)
    keeper = LeaseKeeper(runtime.db, job_id, OWNER, LEASE, interval=60)
    keeper.postprocessing()
    assert must(runtime, job_id).phase == Phase.DOWNLOADING.value, "nothing written until a beat"
    keeper.beat()
    assert must(runtime, job_id).phase == Phase.POSTPROCESSING.value


def test_a_failed_beat_keeps_what_it_had_to_write_and_the_next_writes_the_newest(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = held(job)
    keeper = LeaseKeeper(FailsOnce(runtime.db), job_id, OWNER, LEASE, interval=60)  # type: ignore[arg-type]
    keeper.progress(HALF)
    keeper.postprocessing()
    with captured(keeping) as logs:
        keeper.beat()  # the database is down: nothing written, nothing lost
    assert not keeper.lost.is_set(), "an outage is not a lost job"
    assert logs == [
        {
            "event": "heartbeat failed",
            "log_level": "warning",
            "job_id": str(job_id),
            "exc_info": True,
        }
    ], "an operator sees which job's heartbeat failed, and why"
    assert must(runtime, job_id).bytes_done is None
    keeper.progress(Progress(bytes_done=1800, bytes_total=2000, speed=20.0, eta=10))
    keeper.beat()
    after = must(runtime, job_id)
    assert (after.bytes_done, after.speed, after.eta) == (1800, 20.0, 10), "the newer progress"
    assert after.phase == Phase.POSTPROCESSING.value, "the older write not yet made"


def test_a_playlist_entry_moves_its_parents_progress(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    parent = job(status=Status.RUNNING.value, phase=Phase.AWAITING_CHILDREN.value, attempts=1)
    entry = held(job, parent_id=parent)
    keeper = LeaseKeeper(
        runtime.db, entry, OWNER, LEASE, interval=60, parent_id=parent, parent_every=EVERY
    )
    keeper.beat()
    assert must(runtime, parent).progress is None, "no progress of the entry, no write"
    keeper.progress(HALF)
    keeper.beat()
    assert must(runtime, parent).progress == 0.5


@pytest.mark.parametrize("given", ["parent_id", "parent_every"])
def test_an_entry_without_both_parent_settings_leaves_the_parent_alone(
    runtime: Runtime, job: Callable[..., uuid.UUID], given: str
) -> None:
    parent = job(status=Status.RUNNING.value, phase=Phase.AWAITING_CHILDREN.value, attempts=1)
    entry = held(job, parent_id=parent)
    settings: dict[str, Any] = {"parent_id": parent, "parent_every": EVERY}
    keeper = LeaseKeeper(runtime.db, entry, OWNER, LEASE, interval=60, **{given: settings[given]})
    keeper.progress(HALF)
    keeper.beat()
    assert must(runtime, entry).progress == 0.5
    assert must(runtime, parent).progress is None


def test_a_lease_is_renewed_before_the_final_steps_only_once_half_of_it_has_passed(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    lease = timedelta(seconds=6)
    job_id = held(job, lease=timedelta(minutes=5))
    keeper = LeaseKeeper(runtime.db, job_id, OWNER, lease, interval=60)
    keeper.renew_if_due()
    untouched = must(runtime, job_id).lease_expires_at
    assert untouched is not None and untouched > database_now(runtime) + timedelta(minutes=4)
    time.sleep(2.4)  # 40% of the keeper's lease since the claim: not yet due
    keeper.renew_if_due()
    assert must(runtime, job_id).lease_expires_at == untouched
    time.sleep(0.8)  # past half of it
    keeper.renew_if_due()
    renewed = must(runtime, job_id).lease_expires_at
    assert renewed is not None and renewed < database_now(runtime) + lease
    keeper.renew_if_due()  # just renewed: not due again
    assert must(runtime, job_id).lease_expires_at == renewed


def test_the_keepers_thread_beats_until_the_job_is_lost_then_ends(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = held(job)
    with LeaseKeeper(runtime.db, job_id, OWNER, LEASE, interval=0.05) as keeper:
        (thread,) = keeper_threads(job_id)
        assert thread.daemon, "a stuck heartbeat must not keep the worker from exiting"
        keeper.progress(HALF)
        wait_for(lambda: must(runtime, job_id).bytes_done == 1000, timeout=10, what="a beat")
        with runtime.db.session() as session:
            session.execute(
                sa.update(Job).where(Job.id == job_id).values(lease_owner="worker-2/efgh")
            )
        wait_for(keeper.lost.is_set, timeout=10, what="the keeper to notice")
        wait_for(lambda: not thread.is_alive(), timeout=10, what="the keeper's thread to end")


def test_the_attempts_end_stops_the_keepers_thread(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = held(job)
    with LeaseKeeper(runtime.db, job_id, OWNER, LEASE, interval=0.05) as keeper:
        (thread,) = keeper_threads(job_id)
        keeper.progress(HALF)
        wait_for(lambda: must(runtime, job_id).bytes_done == 1000, timeout=10, what="a beat")
    assert not thread.is_alive()
    assert not keeper.lost.is_set()


def test_a_hung_heartbeat_holds_up_the_attempts_end_for_a_bounded_time(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    # A heartbeat whose statement hangs must not keep the worker from ending the attempt
    # (and taking its next message): the keeper waits its interval plus 5 s, then lets go.
    stuck = Stuck()
    interval = 0.05
    keeper = LeaseKeeper(stuck, held(job), OWNER, LEASE, interval=interval)  # type: ignore[arg-type]
    try:
        with keeper:
            assert stuck.entered.wait(timeout=10), "the keeper's thread never beat"
            began = time.monotonic()
        waited = time.monotonic() - began
    finally:
        stuck.free.set()
    assert interval + 5 <= waited < interval + 5.9
