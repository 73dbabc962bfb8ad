"""A submission's admission on a real database, called directly (service/intake/admission.py:
``insert``): what an Idempotency-Key replays and refuses, what ``dedupe`` answers with,
the quotas a client is refused at and with which words, and what a refusal leaves
behind (nothing). The API's view of the same rules is in tests/integration/api/
test_jobs_admission.py; these are the fast, direct checks the mutation run uses.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import control as control_rows
from service.db import jobs as job_rows
from service.db.models import Artifact, IdempotencyKey, Job
from service.domain.idempotency import fingerprint
from service.domain.options import normalize
from service.domain.states import Step
from service.errors import BadRequest, KeyReused, QuotaExceeded
from service.intake import admission
from service.intake.admission import AlreadyAccepted
from service.intake.clients import create_client, set_limits
from service.runtime import build_runtime
from tests.support.jobs import client_row_locked

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.db import Session
    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

URL = "https://media.example/watch/clip.mp4"
OPTIONS = normalize(None, None).model_dump(mode="json")


def new_client(runtime: Runtime, name: str = "c", **limits: int | None) -> Client:
    made = create_client(runtime, name)[0]
    return set_limits(runtime, str(made.id), **limits) if limits else made


def new_job(client: Client, **fields: Any) -> Job:
    """A job as ``intake.jobs.submit`` hands it to admission (URL and options normalized)."""
    values: dict[str, Any] = {
        "client_id": client.id,
        "url": URL,
        "options": OPTIONS,
        "user_metadata": {},
        "priority": 0,
        "step": Step.PROBE.value,
        "max_attempts": 3,
        "callback_url": None,
        **fields,
    }
    return job_rows.new(**values)


def admit(
    runtime: Runtime,
    client: Client,
    key: str | None = None,
    *,
    dedupe: bool = False,
    then: Callable[[Any], None] | None = None,
    **fields: Any,
) -> Job:
    job = new_job(client, **fields)
    return admission.insert(runtime, client, job, idempotency_key=key, dedupe=dedupe, then=then)


def job_ids(runtime: Runtime, client: Client) -> list[uuid.UUID]:
    with runtime.db.session() as session:
        stmt = sa.select(Job.id).where(Job.client_id == client.id).order_by(Job.created_at)
        return list(session.execute(stmt).scalars())


def keys(runtime: Runtime) -> list[IdempotencyKey]:
    with runtime.db.session() as session:
        return list(session.execute(sa.select(IdempotencyKey)).scalars())


def succeed(runtime: Runtime, job_id: uuid.UUID) -> None:
    """What a worker's success leaves on the row (through ``running``, as the database asks)."""
    with runtime.db.session() as session:
        row = sa.update(Job).where(Job.id == job_id)
        session.execute(row.values(status="running"))
        session.execute(row.values(status="succeeded", finished_at=sa.func.now()))


def store_file(runtime: Runtime, client: Client, job_id: uuid.UUID, size: int) -> None:
    with runtime.db.session() as session:
        session.add(
            Artifact(
                job_id=job_id, client_id=client.id, path=f"{client.id}/{uuid.uuid4()}.mp4",
                filename="a.mp4", size=size, sha256="0" * 64, mime="video/mp4",
            )
        )  # fmt: skip


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_a_key_sent_again_with_the_same_request_is_answered_with_the_first_job(
    runtime: Runtime,
) -> None:
    owner = new_client(runtime)
    first = admit(runtime, owner, "k-1", user_metadata={"order": 17})
    # The same request again, and with the key in quotes (the same key): the first job
    for again in ["k-1", '"k-1"']:
        with pytest.raises(AlreadyAccepted) as replayed:
            admit(runtime, owner, again, user_metadata={"order": 17})
        assert replayed.value.job.id == first.id
        assert str(replayed.value) == f"job {first.id} was accepted before"
    assert job_ids(runtime, owner) == [first.id]


@pytest.mark.parametrize(
    "change",
    [{"options": {**OPTIONS, "height": 720}}, {"dedupe": True}],
    ids=["options", "dedupe"],
)
def test_a_key_sent_again_with_another_request_is_refused_and_still_names_its_job(
    runtime: Runtime, change: dict[str, Any]
) -> None:
    owner = new_client(runtime)
    first = admit(runtime, owner, "k-1", user_metadata={"order": 17})

    with pytest.raises(KeyReused) as refused:
        admit(runtime, owner, "k-1", **{"user_metadata": {"order": 17}, **change})

    assert str(refused.value) == (
        "this Idempotency-Key was used with a different request; use a new key for a new request"
    )
    assert job_ids(runtime, owner) == [first.id]
    assert [k.job_id for k in keys(runtime)] == [first.id]


def test_a_key_holds_the_hash_of_the_request_for_the_configured_time(
    runtime: Runtime, settings: Settings
) -> None:
    """The hash is of these six fields by these names: a key claimed before an upgrade
    must still match the same request after it, and still refuse another."""
    owner = new_client(runtime)
    job = admit(
        runtime,
        owner,
        "k-1",
        user_metadata={"a": 1},
        priority=2,
        callback_url="https://h.example/c",
    )

    (key,) = keys(runtime)
    assert (key.client_id, key.key, key.job_id) == (owner.id, "k-1", job.id)
    assert key.request_hash == fingerprint(
        {
            "url": URL,
            "options": OPTIONS,
            "metadata": {"a": 1},
            "priority": 2,
            "callback_url": "https://h.example/c",
            "dedupe": False,
        }
    )
    assert (key.expires_at - key.created_at).total_seconds() == settings.idempotency_ttl_s


def test_keys_belong_to_their_client(runtime: Runtime) -> None:
    mine, theirs = new_client(runtime, "mine"), new_client(runtime, "theirs")
    first = admit(runtime, mine, "shared")

    other = admit(runtime, theirs, "shared", priority=1)

    assert other.id != first.id
    assert job_ids(runtime, theirs) == [other.id]


@pytest.mark.parametrize("key", ["two words"])
def test_an_unusable_key_is_refused_saying_why_and_creates_nothing(
    runtime: Runtime, key: str
) -> None:
    owner = new_client(runtime)

    with pytest.raises(BadRequest, match="Idempotency-Key"):
        admit(runtime, owner, key)

    assert job_ids(runtime, owner) == []


# --- dedupe -------------------------------------------------------------------------------------


def test_dedupe_answers_with_the_succeeded_twin_and_creates_nothing(runtime: Runtime) -> None:
    owner = new_client(runtime)
    twin = admit(runtime, owner)
    succeed(runtime, twin.id)

    with pytest.raises(AlreadyAccepted) as answered:
        admit(runtime, owner, dedupe=True)

    assert answered.value.job.id == twin.id
    assert job_ids(runtime, owner) == [twin.id]


def test_without_dedupe_or_for_other_options_a_twin_is_not_an_answer(runtime: Runtime) -> None:
    owner = new_client(runtime)
    twin = admit(runtime, owner)
    succeed(runtime, twin.id)
    other = {**OPTIONS, "audio_only": True}

    again = admit(runtime, owner, "k-1")
    elsewhere = admit(runtime, owner, "k-2", dedupe=True, options=other)

    assert job_ids(runtime, owner) == [twin.id, again.id, elsewhere.id]


def test_a_key_sent_with_dedupe_names_the_twin(runtime: Runtime) -> None:
    owner = new_client(runtime)
    twin = admit(runtime, owner)
    succeed(runtime, twin.id)

    for _ in range(2):
        with pytest.raises(AlreadyAccepted) as answered:
            admit(runtime, owner, "k-1", dedupe=True)
        assert answered.value.job.id == twin.id
    assert [k.job_id for k in keys(runtime)] == [twin.id]
    assert job_ids(runtime, owner) == [twin.id]


# --- quotas -------------------------------------------------------------------------------------


def test_at_its_active_jobs_limit_a_client_is_refused_naming_the_limit(runtime: Runtime) -> None:
    # Given a client allowed 2 active jobs: its second is still accepted
    owner = new_client(runtime, max_active_jobs=2)
    made = [admit(runtime, owner).id, admit(runtime, owner).id]
    # When it submits a third
    with pytest.raises(QuotaExceeded) as refused:
        admit(runtime, owner, "third")
    # Then the refusal names the limit, its value and the count, and nothing was kept
    quota = refused.value
    assert (quota.limit, quota.value, quota.current) == ("max_active_jobs", 2, 2)
    assert str(quota) == (
        "you have 2 jobs queued, retrying or running; the limit is 2 (max_active_jobs): "
        "wait for some to end, or cancel some"
    )
    assert job_ids(runtime, owner) == made
    assert keys(runtime) == []


def test_the_deployment_default_limits_a_client_unless_it_has_its_own(
    settings: Settings,
) -> None:
    rt = build_runtime(settings.model_copy(update={"client_max_active_jobs": 1}))
    try:
        default, own = new_client(rt, "default"), new_client(rt, "own", max_active_jobs=2)
        admit(rt, default)
        admit(rt, own)
        admit(rt, own)
        with pytest.raises(QuotaExceeded) as at_default:
            admit(rt, default)
        with pytest.raises(QuotaExceeded) as at_own:
            admit(rt, own)
        assert (at_default.value.value, at_own.value.value) == (1, 2)
    finally:
        rt.broker.close()
        rt.db.dispose()


def test_a_client_whose_files_fill_its_storage_quota_is_refused_naming_it(
    runtime: Runtime,
) -> None:
    # Given a client with a 1000-byte quota (and no active-jobs limit): 999 bytes leave room
    owner = new_client(runtime, storage_quota_bytes=1000)
    done = admit(runtime, owner)
    succeed(runtime, done.id)
    store_file(runtime, owner, done.id, 999)
    room = admit(runtime, owner, url="https://media.example/watch/b.mp4")
    # When its file grows to 1000 bytes and it submits again
    with runtime.db.session() as session:
        session.execute(sa.update(Artifact).values(size=1000))
    with pytest.raises(QuotaExceeded) as refused:
        admit(runtime, owner, url="https://media.example/watch/c.mp4")
    # Then the refusal names the quota, and nothing was created
    quota = refused.value
    assert (quota.limit, quota.value, quota.current) == ("storage_quota_bytes", 1000, 1000)
    assert str(quota) == (
        "your files take 1000 bytes; the limit is 1000 (storage_quota_bytes): "
        "delete some jobs to make room"
    )
    assert job_ids(runtime, owner) == [done.id, room.id]


def test_a_replay_or_a_twin_is_answered_even_at_a_full_quota(runtime: Runtime) -> None:
    """Neither creates anything, so neither counts against a quota."""
    # Given a client with one active job (its limit) and files that fill its quota
    owner = new_client(runtime, max_active_jobs=1)
    done = admit(runtime, owner, url="https://media.example/watch/done.mp4")
    succeed(runtime, done.id)
    store_file(runtime, owner, done.id, 10)
    keyed = admit(runtime, owner, "k-1")
    owner = set_limits(runtime, str(owner.id), storage_quota_bytes=10)
    # When it replays the keyed request, and asks for the succeeded one with dedupe

    with pytest.raises(AlreadyAccepted) as replayed:
        admit(runtime, owner, "k-1")
    with pytest.raises(AlreadyAccepted) as twin:
        admit(runtime, owner, dedupe=True, url="https://media.example/watch/done.mp4")

    # Then both are answered with their jobs
    assert (replayed.value.job.id, twin.value.job.id) == (keyed.id, done.id)


def test_under_an_active_jobs_limit_the_clients_row_is_held_until_the_job_commits(
    runtime: Runtime,
) -> None:
    """So that counting its jobs and inserting one cannot interleave with another
    submission's; without that limit there is nothing to count, and no lock."""
    capped = new_client(runtime, "capped", max_active_jobs=5)
    stored = new_client(runtime, "stored", storage_quota_bytes=10**9)
    seen: list[bool] = []

    admit(runtime, capped, then=lambda _: seen.append(client_row_locked(runtime, capped.id)))
    admit(runtime, stored, then=lambda _: seen.append(client_row_locked(runtime, stored.id)))

    assert seen == [True, False]
    assert not client_row_locked(runtime, capped.id)


# --- then, pauses, the plain path ---------------------------------------------------------------


def test_then_runs_in_the_submissions_transaction(runtime: Runtime) -> None:
    owner = new_client(runtime)
    seen: list[Job | None] = []

    def look(session: Session) -> None:
        seen.append(session.get(Job, job.id))

    job = new_job(owner)
    admission.insert(runtime, owner, job, idempotency_key=None, dedupe=False, then=look)

    assert [j.id for j in seen if j is not None] == [job.id]


def test_what_then_raises_rolls_back_the_job_and_its_key(runtime: Runtime) -> None:
    owner = new_client(runtime)

    def fail(_: Session) -> None:
        raise RuntimeError("the entry could not be linked")

    with pytest.raises(RuntimeError, match="could not be linked"):
        admit(runtime, owner, "k-1", then=fail)

    assert job_ids(runtime, owner) == []
    assert keys(runtime) == []


@pytest.mark.parametrize("what", ["queue_paused", "client_paused", None])
def test_a_job_submitted_while_its_queue_or_client_is_paused_is_held_from_the_start(
    runtime: Runtime, what: str | None
) -> None:
    """The longer way (here: with a key) decides it as the plain insert does."""
    owner = new_client(runtime)
    with runtime.db.session() as session:
        if what == "queue_paused":
            control_rows.set_paused(session, Step.PROBE.value, True)
        if what == "client_paused":
            control_rows.set_client_paused(session, owner.id, True)

    job = admit(runtime, owner, "k-1")

    assert job.held == what
    with runtime.db.session() as session:
        assert job_rows.get(session, job.id).held == what  # type: ignore[union-attr]


def test_a_plain_submission_is_one_statement_and_one_commit(runtime: Runtime) -> None:
    """No key, no dedupe, no quota, no ``then``: the insert with the pause check folded
    in. A client with a key or a quota takes the longer way (it must lock and count)."""
    owner = new_client(runtime)
    admit(runtime, owner)  # a first connection asks the server about itself
    before = (runtime.db.counts.statements, runtime.db.counts.commits)

    admit(runtime, owner)

    after = (runtime.db.counts.statements, runtime.db.counts.commits)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert len(job_ids(runtime, owner)) == 2
