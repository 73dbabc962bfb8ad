"""Each state change of ``db/transitions.py`` on a real database: the row it leaves, and
the rows it must leave alone.

The worker-level tests (``tests/integration/work/test_guarantees.py``) pin the three
guards of "one effect per job" through the use cases; these pin what each statement
writes (the lease and its expiry, the attempt counted, ``started_at`` kept across a
takeover, the ending's stamps), so that a changed statement fails here in seconds
(mutation testing, docs/testing.md). Times are read from the database's clock, the one
the statements use.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import transitions
from service.db.extractions import JobExtraction
from service.db.models import Job, JobAttempt
from service.domain.control import Hold
from service.domain.errors import ErrorClass
from service.domain.states import Phase, Status, Step
from tests.support.jobs import attempts_of, must

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from service.runtime import Runtime

pytestmark = pytest.mark.integration

OWNER = "worker-1/abcd"
OTHER = "worker-2/efgh"
LEASE = timedelta(minutes=5)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def clock(runtime: Runtime) -> datetime:
    with runtime.db.session() as session:
        now: datetime = session.execute(sa.select(sa.func.now())).scalar_one()
        return now


class Between:
    """The database's clock before and after a statement: what ``now()`` was in it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def __enter__(self) -> Between:
        self.start = clock(self.runtime)
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = clock(self.runtime)

    def holds(self, value: datetime | None, plus: timedelta = timedelta(0)) -> bool:
        return value is not None and self.start + plus <= value <= self.end + plus


def running(owner: str = OWNER, expires: timedelta = LEASE, **fields: Any) -> dict[str, Any]:
    """Fields of a job that ``owner`` runs, its lease ending ``expires`` after the row is
    made (not from now: a parametrized case is built when the tests are collected,
    which can be many minutes before it runs)."""
    return {
        "status": Status.RUNNING.value,
        "phase": Phase.DOWNLOADING.value,
        "lease_owner": owner,
        "lease_expires_in": expires,
        "attempts": 1,
        "started_at": LONG_AGO,
        **fields,
    }


# -- claim ----------------------------------------------------------------------------


def test_a_claim_takes_a_waiting_job_and_counts_the_attempt(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(
        status=Status.RETRYING.value,
        held=Hold.SITE_FULL.value,
        attempts=1,
        next_attempt_at=LONG_AGO,
    )
    with Between(runtime) as when, runtime.db.session() as session:
        taken = transitions.claim(session, job_id, Step.DOWNLOAD, OWNER, LEASE, Phase.DOWNLOADING)
    assert taken is not None
    after = must(runtime, job_id)
    for seen in (taken, after):
        assert seen.id == job_id
        assert seen.status == Status.RUNNING.value
        assert seen.phase == Phase.DOWNLOADING.value
        assert seen.held is None
        assert seen.lease_owner == OWNER
        assert when.holds(seen.lease_expires_at, plus=LEASE)
        assert seen.attempts == 2
        assert when.holds(seen.started_at)
        assert seen.next_attempt_at is None
        assert when.holds(seen.updated_at)


def test_a_takeover_keeps_when_the_job_first_started(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(OTHER, expires=-timedelta(seconds=1)))
    with runtime.db.session() as session:
        taken = transitions.claim(session, job_id, Step.DOWNLOAD, OWNER, LEASE, Phase.PROBING)
    assert taken is not None
    after = must(runtime, job_id)
    assert after.lease_owner == OWNER
    assert after.phase == Phase.PROBING.value
    assert after.attempts == 2
    assert after.started_at == LONG_AGO


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"step": Step.PROBE.value}, id="the job waits for another step"),
        pytest.param(running(OTHER), id="another worker holds a live lease"),
        pytest.param({"attempts": 4, "max_attempts": 4}, id="no attempt left"),
        pytest.param(
            {"status": Status.SUCCEEDED.value, "finished_at": LONG_AGO}, id="the job ended"
        ),
        # The state machine lets a failed or cancelled job run again (a user's retry),
        # but through the retry's own move, never through a worker's claim.
        pytest.param({"status": Status.FAILED.value, "finished_at": LONG_AGO}, id="it failed"),
        pytest.param(
            {"status": Status.CANCELLED.value, "finished_at": LONG_AGO}, id="it was cancelled"
        ),
    ],
)
def test_a_claim_the_row_does_not_allow_takes_nothing(
    runtime: Runtime, job: Callable[..., uuid.UUID], fields: dict[str, Any]
) -> None:
    job_id = job(**fields)
    before = must(runtime, job_id).model_dump()
    with runtime.db.session() as session:
        taken = transitions.claim(session, job_id, Step.DOWNLOAD, OWNER, LEASE, Phase.DOWNLOADING)
        attempt = transitions.claim_attempt(
            session, job_id, Step.DOWNLOAD, OWNER, LEASE, Phase.DOWNLOADING, "2026.01.01"
        )
    assert taken is None
    assert attempt is None
    assert must(runtime, job_id).model_dump() == before
    assert attempts_of(runtime, job_id) == []


def test_a_lease_that_ends_this_instant_is_still_held(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(OTHER))
    with runtime.db.session() as session:
        # now() is the transaction's start: the lease ends exactly at the claim's now()
        ends_now = sa.update(Job).where(Job.id == job_id).values(lease_expires_at=sa.func.now())
        session.execute(ends_now)
        taken = transitions.claim(session, job_id, Step.DOWNLOAD, OWNER, LEASE, Phase.DOWNLOADING)
    assert taken is None
    after = must(runtime, job_id)
    assert (after.lease_owner, after.attempts) == (OTHER, 1)


def test_a_claim_takes_only_its_own_job(runtime: Runtime, job: Callable[..., uuid.UUID]) -> None:
    mine, other = job(), job()
    with runtime.db.session() as session:
        taken = transitions.claim(session, mine, Step.DOWNLOAD, OWNER, LEASE, Phase.DOWNLOADING)
        attempt = transitions.claim_attempt(
            session, mine, Step.DOWNLOAD, OTHER, LEASE, Phase.DOWNLOADING, "2026.01.01"
        )
    assert taken is not None
    assert taken.id == mine
    assert attempt is None, "a live lease is not taken over"
    left = must(runtime, other)
    assert (left.status, left.lease_owner, left.attempts) == (Status.QUEUED.value, None, 0)
    assert attempts_of(runtime, other) == []


def test_the_last_attempt_is_claimed(runtime: Runtime, job: Callable[..., uuid.UUID]) -> None:
    job_id = job(attempts=3, max_attempts=4)
    with runtime.db.session() as session:
        taken = transitions.claim(session, job_id, Step.DOWNLOAD, OWNER, LEASE, Phase.DOWNLOADING)
    assert taken is not None
    assert must(runtime, job_id).attempts == 4


def test_a_claimed_attempt_has_its_row_and_takes_the_probes_info(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job()
    info = {"id": "v1", "title": "kept by the probe"}
    with runtime.db.session() as session:
        session.add(JobExtraction(job_id=job_id, info=info))
    with Between(runtime) as when, runtime.db.session() as session:
        attempt = transitions.claim_attempt(
            session, job_id, Step.DOWNLOAD, OWNER, LEASE, Phase.DOWNLOADING, "2026.01.01"
        )
    assert attempt is not None
    for seen in (attempt.job, must(runtime, job_id)):
        assert seen.id == job_id
        assert seen.status == Status.RUNNING.value
        assert seen.phase == Phase.DOWNLOADING.value
        assert seen.lease_owner == OWNER
        assert when.holds(seen.lease_expires_at, plus=LEASE)
        assert seen.attempts == 1
    assert attempt.probed == info
    [row] = attempts_of(runtime, job_id)
    assert (row.number, row.step, row.worker, row.ytdlp_version) == (
        1,
        Step.DOWNLOAD.value,
        OWNER,
        "2026.01.01",
    )
    with runtime.db.session() as session:
        left = session.execute(sa.select(JobExtraction).where(JobExtraction.job_id == job_id))
        assert left.first() is None, "the info is read once: the claim takes it"


def test_a_probes_claim_leaves_the_info_and_returns_none(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(step=Step.PROBE.value)
    with runtime.db.session() as session:
        session.add(JobExtraction(job_id=job_id, info={"id": "old"}))
    with runtime.db.session() as session:
        attempt = transitions.claim_attempt(
            session, job_id, Step.PROBE, OWNER, LEASE, Phase.PROBING, "2026.01.01"
        )
    assert attempt is not None
    assert attempt.probed is None
    with runtime.db.session() as session:
        count = session.execute(
            sa.select(sa.func.count()).select_from(JobAttempt).where(JobAttempt.job_id == job_id)
        ).scalar_one()
        kept = session.execute(sa.select(JobExtraction).where(JobExtraction.job_id == job_id))
        assert kept.first() is not None
    assert count == 1


# -- heartbeat, await_children ------------------------------------------------------


def test_a_heartbeat_extends_the_lease_and_writes_progress(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(expires=timedelta(seconds=30)))
    with Between(runtime) as when, runtime.db.session() as session:
        kept = transitions.heartbeat(session, job_id, OWNER, LEASE, progress=0.5, bytes_done=10)
    assert kept is True
    after = must(runtime, job_id)
    assert when.holds(after.lease_expires_at, plus=LEASE)
    assert when.holds(after.updated_at)
    assert (after.progress, after.bytes_done) == (0.5, 10)
    assert after.lease_owner == OWNER


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(running(OTHER), id="another worker holds the lease"),
        pytest.param(
            {"status": Status.QUEUED.value, "lease_owner": OWNER}, id="the job is not running"
        ),
    ],
)
def test_a_heartbeat_of_a_job_not_held_changes_nothing(
    runtime: Runtime, job: Callable[..., uuid.UUID], fields: dict[str, Any]
) -> None:
    job_id = job(**fields)
    before = must(runtime, job_id).model_dump()
    with runtime.db.session() as session:
        kept = transitions.heartbeat(session, job_id, OWNER, LEASE, progress=0.5)
    assert kept is False
    assert must(runtime, job_id).model_dump() == before


def test_a_heartbeat_touches_only_its_own_job(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    mine = job(**running())
    other = job(**running())
    before = must(runtime, other).model_dump()
    with runtime.db.session() as session:
        assert transitions.heartbeat(session, mine, OWNER, LEASE, progress=0.5)
    assert must(runtime, other).model_dump() == before


def test_a_job_not_running_does_not_wait_for_children(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(status=Status.QUEUED.value, lease_owner=OWNER)
    before = must(runtime, job_id).model_dump()
    with runtime.db.session() as session:
        assert transitions.await_children(session, job_id, OWNER, info={"entries": 2}) is None
    assert must(runtime, job_id).model_dump() == before


def test_a_probed_playlist_waits_for_its_children_without_a_lease(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(phase=Phase.PROBING.value, last_error="x", last_error_class="y"))
    other = job(**running(phase=Phase.PROBING.value))
    with Between(runtime) as when, runtime.db.session() as session:
        waiting = transitions.await_children(session, job_id, OWNER, info={"entries": 2})
        stranger = transitions.await_children(session, other, OTHER, info={"entries": 9})
    assert waiting is not None
    assert stranger is None
    after = must(runtime, job_id)
    assert after.status == Status.RUNNING.value
    assert after.phase == Phase.AWAITING_CHILDREN.value
    assert (after.lease_owner, after.lease_expires_at) == (None, None)
    assert after.info == {"entries": 2}
    assert (after.last_error, after.last_error_class) == (None, None)
    assert when.holds(after.updated_at)
    assert must(runtime, other).phase == Phase.PROBING.value


# -- move, requeue, end ---------------------------------------------------------------


def test_a_move_out_of_running_clears_the_lease_and_the_hold(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(held=Hold.SITE_FULL.value))
    with Between(runtime) as when, runtime.db.session() as session:
        moved = transitions.move(
            session, job_id, Status.RETRYING, owner=OWNER, last_error="timed out"
        )
    assert moved is not None
    after = must(runtime, job_id)
    assert after.status == Status.RETRYING.value
    assert (after.lease_owner, after.lease_expires_at, after.held) == (None, None, None)
    assert after.last_error == "timed out"
    assert after.finished_at is None
    assert when.holds(after.updated_at)


def test_a_move_is_refused_to_a_former_owner_and_from_a_state_not_named(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running())
    before = must(runtime, job_id).model_dump()
    with runtime.db.session() as session:
        assert transitions.move(session, job_id, Status.RETRYING, owner=OTHER) is None
        assert transitions.move(session, job_id, Status.QUEUED, only_from=(Status.FAILED,)) is None
    assert must(runtime, job_id).model_dump() == before


def test_a_move_touches_only_its_own_job(runtime: Runtime, job: Callable[..., uuid.UUID]) -> None:
    mine = job(**running())
    other = job(**running())
    with runtime.db.session() as session:
        assert transitions.move(session, mine, Status.RETRYING, owner=OWNER) is not None
    assert must(runtime, other).status == Status.RUNNING.value


def test_moves_and_ends_the_state_machine_does_not_have_are_refused(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job()
    with runtime.db.session() as session:
        with pytest.raises(ValueError, match="through end"):
            transitions.move(session, job_id, Status.SUCCEEDED)
        with pytest.raises(ValueError, match="not an end"):
            transitions.end(session, Status.RETRYING, Job.id == job_id)
        with pytest.raises(ValueError, match=r"no move from \['succeeded'\] to queued"):
            transitions.move(session, job_id, Status.QUEUED, only_from=(Status.SUCCEEDED,))
    assert must(runtime, job_id).status == Status.QUEUED.value


def test_a_requeued_job_waits_as_if_just_submitted(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(queued_at=LONG_AGO, published_at=LONG_AGO))
    with Between(runtime) as when, runtime.db.session() as session:
        requeued = transitions.requeue(session, job_id, owner=OWNER, step=Step.PROBE.value)
    assert requeued is not None
    after = must(runtime, job_id)
    assert after.status == Status.QUEUED.value
    assert after.step == Step.PROBE.value
    assert after.phase is None
    assert when.holds(after.queued_at)
    assert after.published_at is None
    assert (after.lease_owner, after.lease_expires_at) == (None, None)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"status": Status.RETRYING.value}, id="it waits for a retry"),
        # failed -> queued is a move the state machine has (a user's retry), not a requeue
        pytest.param({"status": Status.FAILED.value, "finished_at": LONG_AGO}, id="it failed"),
    ],
)
def test_only_a_running_job_is_requeued(
    runtime: Runtime, job: Callable[..., uuid.UUID], fields: dict[str, Any]
) -> None:
    job_id = job(**fields)
    before = must(runtime, job_id).model_dump()
    with runtime.db.session() as session:
        assert transitions.requeue(session, job_id) is None
    assert must(runtime, job_id).model_dump() == before


def test_a_former_owner_does_not_requeue_the_job(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(OTHER))
    before = must(runtime, job_id).model_dump()
    with runtime.db.session() as session:
        assert transitions.requeue(session, job_id, owner=OWNER) is None
    assert must(runtime, job_id).model_dump() == before


def test_an_ending_stamps_the_finish_and_clears_the_lease_and_phase(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running())
    other = job(**running())
    with Between(runtime) as when, runtime.db.session() as session:
        assert transitions.end_job(session, job_id, Status.SUCCEEDED, owner=OTHER) is None
        ended = transitions.end_job(session, job_id, Status.SUCCEEDED, owner=OWNER, progress=1.0)
    assert ended is not None
    after = must(runtime, job_id)
    assert after.status == Status.SUCCEEDED.value
    assert when.holds(after.finished_at)
    assert after.phase is None
    assert (after.lease_owner, after.lease_expires_at) == (None, None)
    assert after.progress == 1.0
    assert must(runtime, other).status == Status.RUNNING.value


def test_an_ending_only_from_the_states_named(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running())
    with runtime.db.session() as session:
        ended = transitions.end_job(
            session, job_id, Status.CANCELLED, only_from=(Status.QUEUED, Status.RETRYING)
        )
    assert ended is None
    assert must(runtime, job_id).status == Status.RUNNING.value


# -- attempts exhausted, retries, dead letters ---------------------------------------


def test_a_job_out_of_attempts_fails_saying_how_many(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running(expires=-timedelta(seconds=1), attempts=3, max_attempts=3))
    other = job(**running(expires=-timedelta(seconds=1), attempts=3, max_attempts=3))
    with Between(runtime) as when, runtime.db.session() as session:
        failed = transitions.fail_exhausted(session, job_id)
    assert failed is not None
    assert failed.id == job_id
    assert must(runtime, other).status == Status.RUNNING.value, "only the job named"
    after = must(runtime, job_id)
    assert after.status == Status.FAILED.value
    assert after.error_class == ErrorClass.ATTEMPTS_EXHAUSTED.value
    assert after.error_message == "gave up after 3 attempts without an outcome"
    assert when.holds(after.finished_at)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(running(attempts=3, max_attempts=3), id="its lease is live"),
        pytest.param({"attempts": 2, "max_attempts": 3}, id="attempts are left"),
    ],
)
def test_a_job_that_may_still_run_is_not_failed_as_exhausted(
    runtime: Runtime, job: Callable[..., uuid.UUID], fields: dict[str, Any]
) -> None:
    job_id = job(**fields)
    with runtime.db.session() as session:
        assert transitions.fail_exhausted(session, job_id) is None
    assert must(runtime, job_id).status == fields.get("status", Status.QUEUED.value)


def test_a_retry_is_scheduled_only_for_a_retrying_job(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    retrying = job(status=Status.RETRYING.value)
    queued = job()
    bystander = job(status=Status.RETRYING.value, next_attempt_at=LONG_AGO)
    delay = timedelta(seconds=90)
    with Between(runtime) as when, runtime.db.session() as session:
        transitions.schedule_retry(session, retrying, delay)
        transitions.schedule_retry(session, queued, delay)
    after = must(runtime, retrying)
    assert when.holds(after.next_attempt_at, plus=delay)
    assert when.holds(after.updated_at)
    assert must(runtime, queued).next_attempt_at is None
    assert must(runtime, bystander).next_attempt_at == LONG_AGO, "only the job named"


def test_a_dead_letter_fails_a_waiting_job_with_its_last_error(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    seen = job(
        status=Status.RETRYING.value,
        last_error="HTTP 503",
        last_error_class="server_error",
        next_attempt_at=LONG_AGO,
    )
    unseen = job()
    bystander = job()
    with Between(runtime) as when, runtime.db.session() as session:
        ended = transitions.dead_letter(session, seen, "redelivered too often")
        assert ended is not None and ended.id == seen
        ended = transitions.dead_letter(session, unseen, "redelivered too often")
        assert ended is not None and ended.id == unseen
    assert must(runtime, bystander).status == Status.QUEUED.value
    first, second = must(runtime, seen), must(runtime, unseen)
    assert (first.status, first.error_class, first.error_message) == (
        Status.FAILED.value,
        "server_error",
        "HTTP 503",
    )
    assert first.next_attempt_at is None
    assert when.holds(first.dead_lettered_at)
    assert when.holds(first.finished_at)
    assert (second.error_class, second.error_message) == (
        ErrorClass.DEAD_LETTER.value,
        "redelivered too often",
    )


def test_a_dead_letter_of_a_running_job_changes_nothing(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    job_id = job(**running())
    with runtime.db.session() as session:
        assert transitions.dead_letter(session, job_id, "x") is None
    assert must(runtime, job_id).status == Status.RUNNING.value


def test_a_failed_jobs_dead_letter_is_stamped_once(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    failed = job(status=Status.FAILED.value, finished_at=LONG_AGO, error_class="permanent")
    queued = job()
    bystander = job(status=Status.FAILED.value, finished_at=LONG_AGO, error_class="permanent")
    with Between(runtime) as when, runtime.db.session() as session:
        stamped = transitions.stamp_dead_letter(session, failed)
        assert transitions.stamp_dead_letter(session, queued) is None
    assert stamped is not None and stamped.id == failed
    assert must(runtime, bystander).dead_lettered_at is None, "only the job named"
    first = must(runtime, failed).dead_lettered_at
    assert when.holds(first)
    assert when.holds(must(runtime, failed).updated_at)
    assert must(runtime, queued).dead_lettered_at is None
    with runtime.db.session() as session:
        assert transitions.stamp_dead_letter(session, failed) is None
    assert must(runtime, failed).dead_lettered_at == first
