"""Releasing held jobs gives each free slot to a held job of that queue and that site,
and to no more than the room there is: each test here fails when one condition of
the release statement (``db/control.py: _RELEASABLE``) is dropped (docs/testing.md).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db import control as control_rows
from service.db import jobs as job_rows
from service.db import transitions
from service.db.models import Job
from service.domain.states import Phase, Status, Step
from service.fleet.gate import release_held
from service.intake.clients import create_client, set_limits
from service.work.claim import claim
from tests.integration.fleet.test_gate import waiting_jobs
from tests.support.jobs import must
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def queued(runtime: Runtime, url: str, *, step: str = "download", priority: int = 0) -> uuid.UUID:
    """A queued row, as if submitted and published."""
    client, _ = create_client(runtime, f"c-{uuid.uuid4().hex[:6]}")
    job = Job(client_id=client.id, url=url, step=step, priority=priority)
    with runtime.db.session() as session:
        job_rows.insert(session, job)
    return job.id


def claimed(runtime: Runtime, job_id: uuid.UUID, step: Step = Step.DOWNLOAD) -> bool:
    """A worker's claim through the gate: True when it runs, False when it is held."""
    phase = Phase.DOWNLOADING if step is Step.DOWNLOAD else Phase.PROBING
    return claim(runtime, job_id, step, phase) is not None


def held(runtime: Runtime, job_id: uuid.UUID) -> str | None:
    with runtime.db.session() as session:
        job = job_rows.get(session, job_id)
        assert job is not None
        return job.held


def dead_worker(runtime: Runtime, job_id: uuid.UUID) -> None:
    """The row of a job whose worker died: running, its lease expired."""
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(
                status=Status.RUNNING.value,
                phase=Phase.DOWNLOADING.value,
                lease_owner="dead/1",
                lease_expires_at=sa.func.now() - timedelta(seconds=1),
            )
        )


def end(runtime: Runtime, job_id: uuid.UUID) -> None:
    with runtime.db.session() as session:
        assert transitions.end_job(session, job_id, Status.SUCCEEDED) is not None


def test_a_free_slot_goes_to_a_held_job_not_to_one_waiting_for_a_worker(runtime: Runtime) -> None:
    # Given a download queue limited to one running job, that job running, one job held,
    # and a better-priority job queued but not held (its message is on its way to a worker)
    with runtime.db.session() as session:
        control_rows.set_max_running(session, "download", 1)
    running = queued(runtime, "https://a.example/1.mp4")
    assert claimed(runtime, running)
    waiting = queued(runtime, "https://a.example/2.mp4")
    assert not claimed(runtime, waiting)
    queued(runtime, "https://a.example/3.mp4", priority=9)
    # When the running job ends and held jobs are released
    end(runtime, running)
    # Then the held job gets the slot
    assert release_held(runtime) == 1
    assert held(runtime, waiting) is None


def test_a_full_queue_keeps_its_held_jobs_while_another_queue_releases(runtime: Runtime) -> None:
    # Given a probe queue limited to one running job, full, with a probe job held
    with runtime.db.session() as session:
        control_rows.set_max_running(session, "probe", 1)
    running = queued(runtime, "https://a.example/1", step="probe")
    assert claimed(runtime, running, Step.PROBE)
    waiting = queued(runtime, "https://a.example/2", step="probe")
    assert not claimed(runtime, waiting, Step.PROBE)
    # When held jobs are released (the download queue has no limit: room for any)
    released = release_held(runtime)
    # Then the probe job stays held: its own queue is still full
    assert released == 0
    assert held(runtime, waiting) == "queue_full"


def test_a_site_gets_back_exactly_the_room_it_has(runtime: Runtime) -> None:
    # Given a.example limited to one running job: one running, two held behind it,
    # a running job on another site, and a dead worker's job on a.example (lease expired)
    with runtime.db.session() as session:
        control_rows.put_site_limit(session, "a.example", 1)
    running = queued(runtime, "https://a.example/1.mp4")
    assert claimed(runtime, running)
    first, second = (queued(runtime, f"https://a.example/{n}.mp4") for n in (2, 3))
    assert not claimed(runtime, first)
    assert not claimed(runtime, second)
    elsewhere = queued(runtime, "https://b.example/1.mp4")
    assert claimed(runtime, elsewhere)
    dead = queued(runtime, "https://a.example/4.mp4")
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == dead)
            .values(
                status=Status.RUNNING.value,
                phase=Phase.DOWNLOADING.value,
                lease_owner="dead/1",
                lease_expires_at=sa.func.now() - timedelta(seconds=1),
            )
        )
    # When the running job on a.example ends and held jobs are released
    end(runtime, running)
    released = release_held(runtime)
    # Then exactly one held job of a.example starts (the dead lease and the other site
    # take no room there), the one that waited longest
    assert released == 1
    assert (held(runtime, first), held(runtime, second)) == (None, "site_full")


def test_a_paused_clients_job_does_not_take_the_slot_of_another_clients(
    runtime: Runtime, settings: Settings
) -> None:
    # Given a download queue limited to one running job, that job running; a paused
    # client's job held behind it with the better priority, and another client's held
    with runtime.db.session() as session:
        control_rows.set_max_running(session, "download", 1)
    running = queued(runtime, "https://a.example/1.mp4")
    assert claimed(runtime, running)
    paused = queued(runtime, "https://a.example/2.mp4", priority=9)
    with runtime.db.session() as session:
        job = job_rows.get(session, paused)
        assert job is not None
        assert control_rows.set_client_paused(session, job.client_id, True) is not None
    assert not claimed(runtime, paused)
    active = queued(runtime, "https://a.example/3.mp4")
    assert not claimed(runtime, active)
    # When the running job ends and held jobs are released, the queue having room for one
    end(runtime, running)
    released = release_held(runtime)
    # Then the slot goes to the active client's job: it alone is published, and the
    # paused client's job stays in its row, held for its pause
    assert released == 1
    assert (held(runtime, active), held(runtime, paused)) == (None, "client_paused")
    messages = take_messages(f"{settings.queue_prefix}.download")
    assert [m["args"][0] for m, _ in messages] == [str(active)]


def test_a_clients_room_counts_only_its_own_live_jobs(runtime: Runtime) -> None:
    # Given a client allowed one running job: its job running, two held behind it and a
    # dead worker's job (lease expired); and another client's job running
    ids = waiting_jobs(runtime, 4)
    set_limits(runtime, str(must(runtime, ids[0]).client_id), max_running=1)
    assert claimed(runtime, ids[0])
    assert not claimed(runtime, ids[1])
    assert not claimed(runtime, ids[2])
    dead_worker(runtime, ids[3])
    stranger = queued(runtime, "https://b.example/1.mp4")
    assert claimed(runtime, stranger)
    # When the client's running job ends and held jobs are released
    end(runtime, ids[0])
    released = release_held(runtime)
    # Then one of its held jobs starts: the other client's job and the dead lease take
    # none of its room
    assert released == 1
    assert (held(runtime, ids[1]), held(runtime, ids[2])) == (None, "client_busy")
