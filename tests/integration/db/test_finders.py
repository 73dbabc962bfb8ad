"""What each sweep's finder (``db/finders.py``) picks on a real database: only the rows
it is for, the most overdue first, never more than its batch, and never one another
transaction holds (a sweep must not queue behind a worker's write).

The sweeps' own tests (``tests/integration/fleet/test_sweeps.py``) show what a sweep
does with what it finds; these pin the finding, so that a changed query fails here
(mutation testing, docs/testing.md).
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import finders
from service.db.models import Job
from service.domain.states import Status, Step
from tests.support.jobs import blocked_on_a_lock
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.db.models import Client
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

OWNER = "worker-1/abcd"


def running(job: Callable[..., uuid.UUID], expired_ago: timedelta) -> uuid.UUID:
    return job(
        status=Status.RUNNING.value,
        attempts=1,
        lease_owner=OWNER,
        lease_expires_at_ago=expired_ago,
    )


def found(runtime: Runtime, finder: Callable[..., list[Any]], *args: Any) -> list[Any]:
    """What ``finder`` returns, read by a table scan: the order must come from the query,
    not from the index the planner happens to choose on a small table."""
    with runtime.db.session() as session:
        session.execute(sa.text("SET LOCAL enable_indexscan = off"))
        session.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
        return [getattr(j, "id", j) for j in finder(session, *args)]


def test_expired_leases_are_found_oldest_first_and_a_live_one_is_not(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    # Given, inserted newest first, leases that expired 1, 2 and 3 minutes ago, and one
    # that is still live
    one = running(job, timedelta(minutes=1))
    two = running(job, timedelta(minutes=2))
    three = running(job, timedelta(minutes=3))
    running(job, timedelta(minutes=-5))
    # When the sweep looks for expired leases
    # Then it finds the expired ones, the longest expired first
    assert found(runtime, finders.expired_leases, 10) == [three, two, one]
    # and a batch of two takes the two that expired first
    assert found(runtime, finders.expired_leases, 2) == [three, two]


def test_an_expired_lease_locked_by_another_transaction_is_skipped_not_waited_for(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    # Given two expired leases, one of them being written by another transaction
    busy = running(job, timedelta(minutes=2))
    free = running(job, timedelta(minutes=1))
    with runtime.db.session() as holder:
        holder.execute(sa.select(Job.id).where(Job.id == busy).with_for_update())
        # When the sweep looks (and would give up after a second of waiting)
        with runtime.db.session() as session:
            session.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            ids = [j.id for j in finders.expired_leases(session, 10)]
    # Then it takes the free one at once and leaves the busy one for its next pass
    assert ids == [free]


def test_an_expired_lease_locked_elsewhere_is_skipped_also_by_the_other_finders(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    # Given a queued job never published and a retry long overdue, each being written
    # by another transaction, and one free of each
    old = {"queued_at_ago": timedelta(minutes=1), "updated_at_ago": timedelta(hours=1)}
    busy_queued = job(status=Status.QUEUED.value, **old)
    free_queued = job(status=Status.QUEUED.value, **old)
    busy_retry = job(status=Status.RETRYING.value, attempts=1, **old)
    free_retry = job(status=Status.RETRYING.value, attempts=1, **old)
    with runtime.db.session() as holder:
        holder.execute(
            sa.select(Job.id).where(Job.id.in_([busy_queued, busy_retry])).with_for_update()
        )
        # When the republishing sweep looks (giving up after a second of waiting)
        with runtime.db.session() as session:
            session.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            queued = [j.id for j in finders.unpublished(session, TEN_MINUTES, 10)]
            retries = [j.id for j in finders.overdue_retries(session, TEN_MINUTES, 10)]
    # Then it takes the free ones at once
    assert (queued, retries) == ([free_queued], [free_retry])


TEN_MINUTES = timedelta(minutes=10)


def test_unpublished_finds_queued_jobs_whose_message_may_be_lost_oldest_first(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    queued = Status.QUEUED.value
    # Given, in this order: a job queued a minute ago and never published
    never = job(status=queued, queued_at_ago=timedelta(minutes=1))
    # one queued 5.5 s ago, never published (past the 5 s its own publish may take)
    just_past = job(status=queued, queued_at_ago=timedelta(seconds=5.5))
    # one queued 2 minutes ago whose publish was 20 minutes ago (never claimed since)
    stale = job(
        status=queued,
        queued_at_ago=timedelta(minutes=2),
        published_at_ago=timedelta(minutes=20),
    )
    # and jobs the sweep must leave alone: one queued 4.5 s ago (its publish may be in
    # flight), one published a minute ago, one held (it has no message on purpose), and
    # a retrying one (the overdue-retry finder's)
    job(status=queued, queued_at_ago=timedelta(seconds=4.5))
    job(status=queued, queued_at_ago=timedelta(minutes=3), published_at_ago=timedelta(minutes=1))
    job(status=queued, queued_at_ago=timedelta(minutes=3), held="queue_paused")
    job(status=Status.RETRYING.value, attempts=1, queued_at_ago=timedelta(minutes=3))
    # When the sweep looks for queued jobs to publish again
    # Then it finds the three, the longest queued first
    assert found(runtime, finders.unpublished, TEN_MINUTES, 10) == [stale, never, just_past]
    # and a batch of two takes the two queued first
    assert found(runtime, finders.unpublished, TEN_MINUTES, 2) == [stale, never]


def test_overdue_retries_are_found_when_their_next_attempt_is_long_past(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    def retry(**times: timedelta | None) -> uuid.UUID:
        fields = {f"{k}_ago" if v is not None else k: v for k, v in times.items()}
        return job(status=Status.RETRYING.value, attempts=1, **fields)

    hour, half, twenty = timedelta(hours=1), timedelta(minutes=30), timedelta(minutes=20)
    # Given, in this order: a retry due 20 minutes ago, last written and published 30
    # minutes ago
    due = retry(updated_at=half, next_attempt_at=twenty, published_at=half)
    # one last written an hour ago with no next attempt recorded and never published
    unrecorded = retry(updated_at=hour, next_attempt_at=None)
    # and retries the sweep must leave alone: one due only 5 minutes ago, one published
    # again a minute ago, one written 2 minutes ago, one held, and a queued job
    retry(updated_at=half, next_attempt_at=timedelta(minutes=5))
    retry(updated_at=half, next_attempt_at=twenty, published_at=timedelta(minutes=1))
    retry(updated_at=timedelta(minutes=2), next_attempt_at=twenty)
    job(
        status=Status.RETRYING.value,
        attempts=1,
        held="client_paused",
        updated_at_ago=hour,
        next_attempt_at_ago=hour,
    )
    job(status=Status.QUEUED.value, updated_at_ago=hour, queued_at_ago=hour)
    # When the sweep looks for retries whose delayed message was lost
    # Then it finds the two, the one written longest ago first
    assert found(runtime, finders.overdue_retries, TEN_MINUTES, 10) == [unrecorded, due]
    # and a batch of one takes that one
    assert found(runtime, finders.overdue_retries, TEN_MINUTES, 1) == [unrecorded]


def test_stranded_parents_are_running_playlists_without_an_active_entry(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    def parent(phase: str = "awaiting_children") -> uuid.UUID:
        return job(status=Status.RUNNING.value, phase=phase, attempts=1, step=Step.PROBE.value)

    def entry(of: uuid.UUID, status: Status) -> None:
        job(status=status.value, parent_id=of)

    # Given a playlist whose entries have all ended, and one with no entries left
    ended = parent()
    entry(ended, Status.SUCCEEDED)
    entry(ended, Status.FAILED)
    empty = parent()
    # and playlists still waiting on an entry that is queued, running or retrying
    for status in (Status.QUEUED, Status.RUNNING, Status.RETRYING):
        waiting = parent()
        entry(waiting, Status.SUCCEEDED)
        entry(waiting, status)
    # and a running job that is not waiting for entries
    parent(phase="downloading")
    # When the sweep looks for parents whose finish was missed
    # Then it finds exactly the two
    assert sorted(found(runtime, finders.stranded_parents, 10)) == sorted([ended, empty])
    # and no more than its batch
    assert len(found(runtime, finders.stranded_parents, 1)) == 1


def test_prune_deletes_top_level_jobs_ended_long_ago_with_their_entries(
    runtime: Runtime, job: Callable[..., uuid.UUID], client: Client
) -> None:
    month, day = timedelta(days=30), timedelta(days=1)
    ended_long_ago = {"finished_at_ago": 2 * month}
    # Given a download and a playlist (with its two entries) that ended two months ago
    single = job(status=Status.SUCCEEDED.value, **ended_long_ago)
    playlist = job(status=Status.FAILED.value, step=Step.PROBE.value, **ended_long_ago)
    entries = [
        job(status=Status.SUCCEEDED.value, parent_id=playlist, **ended_long_ago),
        job(status=Status.CANCELLED.value, parent_id=playlist, **ended_long_ago),
    ]
    # and jobs to keep: one that ended yesterday, one still running, and an old entry of
    # a playlist that is still running
    recent = job(status=Status.SUCCEEDED.value, finished_at_ago=day)
    live = job(status=Status.RUNNING.value, attempts=1, lease_owner=OWNER, **ended_long_ago)
    open_playlist = job(status=Status.RUNNING.value, phase="awaiting_children", attempts=1)
    old_entry = job(status=Status.SUCCEEDED.value, parent_id=open_playlist, **ended_long_ago)
    # When the retention sweep prunes what ended more than a month ago
    with runtime.db.session() as session:
        gone = finders.prune_ended(session, month, 10)
    # Then it deleted the download, the playlist and its entries, and said so
    deleted = {single, playlist, *entries}
    assert sorted(gone) == sorted((client.id, j) for j in deleted)
    with runtime.db.session() as session:
        left = set(session.execute(sa.select(Job.id)).scalars())
    assert left == {recent, live, open_playlist, old_entry}


def test_prune_takes_no_more_top_level_jobs_than_its_batch(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    # Given three downloads that ended two months ago
    for _ in range(3):
        job(status=Status.SUCCEEDED.value, finished_at_ago=timedelta(days=60))
    # When one pass prunes with a batch of two
    with runtime.db.session() as session:
        gone = finders.prune_ended(session, timedelta(days=30), 2)
    # Then two are gone and one is left for the next pass
    assert len(gone) == 2
    with runtime.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Job)).scalar_one() == 1


@pytest.mark.parametrize("rows", ["entries of one playlist", "two downloads"])
def test_prune_locks_in_id_order_so_it_cannot_deadlock_with_a_tree_change(
    runtime: Runtime, job: Callable[..., uuid.UUID], rows: str
) -> None:
    # Given two rows to prune, stored in the reverse of their id order (a table scan
    # meets the larger id first): the entries of a playlist, or two downloads
    low, high = sorted([uuid.uuid4(), uuid.uuid4()])
    old = {"status": Status.SUCCEEDED.value, "finished_at_ago": timedelta(days=60)}
    if rows == "entries of one playlist":
        parent = job(step=Step.PROBE.value, **old)
        job(id=high, parent_id=parent, **old)
        job(id=low, parent_id=parent, **old)
    else:
        job(id=high, **old)
        job(id=low, **old)
    # and another transaction that locks them in id order, as every change of a tree does:
    # it holds the lower one
    outcome: list[object] = []

    def prune() -> None:
        try:
            with runtime.db.session() as session:
                session.execute(sa.text("SET LOCAL enable_indexscan = off"))
                session.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
                outcome.append(finders.prune_ended(session, timedelta(days=30), 10))
        except Exception as exc:
            outcome.append(exc)

    with runtime.db.session() as other:
        other.execute(sa.select(Job.id).where(Job.id == low).with_for_update())
        # When the retention sweep prunes meanwhile, and waits
        thread = threading.Thread(target=prune, daemon=True)
        thread.start()
        wait_for(lambda: blocked_on_a_lock(runtime), timeout=10, what="the prune to wait")
        # Then the other transaction can still take the higher one (the prune holds
        # nothing it needs) and commit
        other.execute(sa.select(Job.id).where(Job.id == high).with_for_update())
    thread.join(timeout=10)
    # and the prune then deletes both
    assert len(outcome) == 1, "the prune did not end after the other transaction committed"
    gone = outcome[0]
    assert not isinstance(gone, Exception), gone
    assert {j for _, j in gone} >= {low, high}
