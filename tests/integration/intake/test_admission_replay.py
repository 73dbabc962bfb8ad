"""A retry's admission on a real database, called directly (service/intake/admission.py:
``check_replayed``, ``lock_clients``): the jobs a retry moved back are refused whole when
they put a client past ``max_active_jobs`` or its storage quota, in words that name the
limit, the count and (for an admin's retry) the client; clients' rows are locked in one
order. The API's view is in tests/integration/api/test_jobs_replay_admission.py.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Artifact, Job
from service.errors import QuotaExceeded
from service.intake import admission
from service.intake.clients import create_client, set_limits
from tests.support.jobs import blocked_on_a_lock, client_row_locked, insert
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

URL = "https://media.example/watch/clip.mp4"


def new_client(runtime: Runtime, name: str = "c", **limits: int | None) -> Client:
    made = create_client(runtime, name)[0]
    return set_limits(runtime, str(made.id), **limits) if limits else made


def jobs(runtime: Runtime, client: Client, n: int, status: str = "queued") -> list[uuid.UUID]:
    """``n`` jobs of the client; queued, as a retry leaves the jobs it moved."""
    made = [Job(client_id=client.id, url=URL, status=status, step="download") for _ in range(n)]
    return insert(runtime, *made)


def check(runtime: Runtime, moved: list[uuid.UUID], *extra: Job) -> None:
    """``check_replayed`` on the moved jobs (read in its transaction, in this order)."""
    with runtime.db.session() as session:
        rows = [session.get(Job, job_id) for job_id in moved]
        admission.check_replayed(runtime, session, [*extra, *[r for r in rows if r is not None]])


def test_a_retry_past_max_active_jobs_is_refused_naming_the_count_and_the_limit(
    runtime: Runtime,
) -> None:
    # Given a client allowed 3 active jobs, with 1 queued, whose retry moved 3 back
    owner = new_client(runtime, max_active_jobs=3)
    jobs(runtime, owner, 1)
    moved = jobs(runtime, owner, 3)
    # Then the retry is refused, naming what it would queue, what is there, and the limit
    with pytest.raises(QuotaExceeded) as refused:
        check(runtime, moved)
    quota = refused.value
    assert (quota.limit, quota.value, quota.current) == ("max_active_jobs", 3, 1)
    assert str(quota) == (
        "this retry would queue 3 jobs with 1 already queued, retrying or running; the limit "
        "is 3 (max_active_jobs): wait for some to end, or retry fewer (filter by error_class "
        "or since)"
    )


def test_a_retry_that_reaches_the_limit_exactly_or_has_no_limit_passes(runtime: Runtime) -> None:
    capped, free = new_client(runtime, "capped", max_active_jobs=3), new_client(runtime, "free")
    jobs(runtime, free, 5)

    check(runtime, [*jobs(runtime, capped, 3), *jobs(runtime, free, 2)])


@pytest.mark.parametrize("first", [True, False], ids=["its-job-first", "another-first"])
def test_an_admins_retry_is_refused_whole_naming_the_client_past_its_limit(
    runtime: Runtime, first: bool
) -> None:
    # Given a client at its limit of 1 with one job moved back, and another client with 2
    past = new_client(runtime, "past", max_active_jobs=1)
    jobs(runtime, past, 1)
    theirs, others = jobs(runtime, past, 1), jobs(runtime, new_client(runtime, "other"), 2)
    # When an admin's retry moved them all: the refusal counts that client's one job, and
    # names the client unless it is the retry's own (its first job's)
    moved = [*theirs, *others] if first else [*others, *theirs]
    with pytest.raises(QuotaExceeded) as refused:
        check(runtime, moved)
    whose = "" if first else f" (client {past.id})"
    assert str(refused.value).startswith(
        f"this retry would queue 1 jobs{whose} with 1 already queued, retrying or running; "
    )
    assert (refused.value.value, refused.value.current) == (1, 1)


def test_a_job_whose_client_is_gone_does_not_excuse_the_others(runtime: Runtime) -> None:
    """A client deleted meanwhile is skipped, not the rest of the check: one sorting first
    (the lowest id) still leaves the client past its limit refused."""
    owner = new_client(runtime, max_active_jobs=1)
    jobs(runtime, owner, 1)
    ghost = Job(client_id=uuid.UUID(int=0), url=URL, status="queued")

    with pytest.raises(QuotaExceeded, match="max_active_jobs"):
        check(runtime, jobs(runtime, owner, 1), ghost)


def test_a_retry_with_the_storage_quota_full_is_refused_naming_it(runtime: Runtime) -> None:
    # Given a client with a 1000-byte quota (and no active-jobs limit), 999 bytes stored
    owner = new_client(runtime, storage_quota_bytes=1000)
    (done,) = jobs(runtime, owner, 1, status="succeeded")
    with runtime.db.session() as session:
        session.add(
            Artifact(
                job_id=done, client_id=owner.id, path="x/y.mp4", filename="y.mp4",
                size=999, sha256="0" * 64, mime="video/mp4",
            )
        )  # fmt: skip
    # Then a retry passes; once the files take 1000 bytes it is refused, naming the quota
    moved = jobs(runtime, owner, 2)
    check(runtime, moved)
    with runtime.db.session() as session:
        session.execute(sa.update(Artifact).values(size=1000))
    with pytest.raises(QuotaExceeded) as refused:
        check(runtime, moved)
    quota = refused.value
    assert (quota.limit, quota.value, quota.current) == ("storage_quota_bytes", 1000, 1000)
    assert str(quota) == (
        "your files take 1000 bytes; the limit is 1000 (storage_quota_bytes): "
        "delete some jobs to make room"
    )


def test_lock_clients_holds_each_clients_row_until_the_transaction_ends(
    runtime: Runtime,
) -> None:
    a, b = new_client(runtime, "a"), new_client(runtime, "b")

    with runtime.db.session() as session:
        admission.lock_clients(session, [b.id, a.id])
        held = [client_row_locked(runtime, a.id), client_row_locked(runtime, b.id)]

    assert held == [True, True]
    assert not client_row_locked(runtime, a.id)
    assert not client_row_locked(runtime, b.id)


def test_clients_rows_are_locked_in_id_order_whatever_order_they_come_in(
    runtime: Runtime,
) -> None:
    """The order a submission locks its own row in, so two retries (or a retry and a
    submission) of the same clients queue up instead of deadlocking."""
    low, high = sorted([new_client(runtime, "a").id, new_client(runtime, "b").id])
    # Given another transaction holding the higher id's row
    with runtime.db.engine.connect() as holder:
        holder.execute(
            sa.text("SELECT id FROM clients WHERE id = :id FOR NO KEY UPDATE"), {"id": high}
        )

        def retry() -> None:
            with runtime.db.session() as session:
                admission.lock_clients(session, [high, low])

        waiting = threading.Thread(target=retry)
        waiting.start()
        # When a retry locks [high, low] it waits at the higher id, holding the lower already
        wait_for(lambda: blocked_on_a_lock(runtime), timeout=10, what="the retry to wait")
        assert client_row_locked(runtime, low)
        holder.rollback()
    waiting.join(timeout=10)
    assert not waiting.is_alive()
