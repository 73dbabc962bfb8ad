"""Queue control on the worker's side (service/fleet/gate.py) on a real database and RabbitMQ:
fleet-wide limits at claim time, pausing, and the release of held jobs.

No worker process runs here: claims are made by calling the worker's use case in
threads of this process, each with its own database connection, which is what
ten workers on five machines look like to PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import control as control_rows
from service.db import jobs as job_rows
from service.db import transitions
from service.db.models import Job
from service.domain.states import Phase, Status, Step
from service.fleet.gate import release_held
from service.intake.clients import create_client
from service.work.claim import claim
from service.work.probe import run_probe
from tests.support.api import client_of, submit
from tests.support.jobs import row
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def waiting_jobs(
    runtime: Runtime, count: int, *, step: str = "download", **values: Any
) -> list[uuid.UUID]:
    """Queued rows of a fresh client, as if submitted and published."""
    client, _ = create_client(runtime, f"bulk-{uuid.uuid4().hex[:6]}")
    jobs = [
        Job(client_id=client.id, url=f"https://media.example/{n}.mp4", step=step, **values)
        for n in range(count)
    ]
    with runtime.db.session() as session:
        job_rows.insert_many(session, jobs)
    return [j.id for j in jobs]


def claim_in_threads(runtime: Runtime, job_ids: list[uuid.UUID], step: Step) -> list[Job | None]:
    """Every job claimed at once from its own thread; None where the claim held the job."""
    start = threading.Barrier(len(job_ids))

    def attempt(job_id: uuid.UUID) -> Job | None:
        start.wait(timeout=10)
        claimed = claim(runtime, job_id, step, Phase.DOWNLOADING)
        return claimed.job if claimed else None

    with ThreadPoolExecutor(len(job_ids)) as pool:
        return list(pool.map(attempt, job_ids))


def held_of(runtime: Runtime, ids: list[uuid.UUID]) -> dict[str | None, int]:
    with runtime.db.session() as session:
        rows = session.execute(
            sa.select(Job.held, sa.func.count()).where(Job.id.in_(ids)).group_by(Job.held)
        )
        return {held: int(n) for held, n in rows}


# --- fleet-wide limits at claim time ------------------------------------------------------------


def test_max_running_holds_across_concurrent_claims_and_spends_no_attempt(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        control_rows.set_max_running(session, "download", 2)
    ids = waiting_jobs(runtime, 12)

    claimed = [j for j in claim_in_threads(runtime, ids, Step.DOWNLOAD) if j is not None]

    assert len(claimed) == 2
    assert held_of(runtime, ids) == {None: 2, "queue_full": 10}
    held = [row(runtime, i) for i in ids if i not in {j.id for j in claimed}]
    assert all(j is not None and j.status == "queued" and j.attempts == 0 for j in held)
    assert all(j is not None and j.published_at is None for j in held)


def test_a_site_limit_holds_per_host_and_leaves_other_hosts_alone(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        control_rows.put_site_limit(session, "a.example", 1)
    client, _ = create_client(runtime, "sites")
    jobs = [
        Job(client_id=client.id, url=f"https://{host}/{n}.mp4", step="download")
        for host in ("a.example", "www.a.example", "b.example")
        for n in range(3)
    ]
    with runtime.db.session() as session:
        job_rows.insert_many(session, jobs)

    claimed = [j for j in claim_in_threads(runtime, [j.id for j in jobs], Step.DOWNLOAD) if j]

    by_site: dict[str | None, int] = {}
    for job in claimed:
        by_site[job.site] = by_site.get(job.site, 0) + 1
    assert by_site == {"a.example": 1, "b.example": 3}


def test_a_freed_slot_releases_the_best_waiting_job_and_publishes_it(
    runtime: Runtime, settings: Settings
) -> None:
    with runtime.db.session() as session:
        control_rows.set_max_running(session, "download", 1)
    low = waiting_jobs(runtime, 3, priority=1)
    high = waiting_jobs(runtime, 1, priority=7)
    first = claim_in_threads(runtime, low[:1], Step.DOWNLOAD)[0]
    assert first is not None
    claim_in_threads(runtime, [*low[1:], *high], Step.DOWNLOAD)
    assert held_of(runtime, [*low[1:], *high]) == {"queue_full": 3}

    assert release_held(runtime) == 0  # the slot is still taken
    with runtime.db.session() as session:  # the first job ends
        transitions.end_job(session, first.id, Status.SUCCEEDED)
    assert release_held(runtime) == 1

    messages = take_messages(f"{settings.queue_prefix}.download")
    assert [(m["args"][0], priority) for m, priority in messages] == [(str(high[0]), 7)]
    released = row(runtime, high[0])
    assert released is not None and released.held is None and released.published_at is not None


def test_an_expired_lease_does_not_take_a_slot(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        control_rows.set_max_running(session, "download", 1)
    dead, waiting = waiting_jobs(runtime, 2)
    assert claim_in_threads(runtime, [dead], Step.DOWNLOAD)[0] is not None
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == dead)
            .values(lease_expires_at=sa.func.now() - sa.text("interval '1 second'"))
        )
    assert claim_in_threads(runtime, [waiting], Step.DOWNLOAD)[0] is not None


# --- pausing ------------------------------------------------------------------------------------


def test_a_submission_to_a_paused_queue_waits_in_its_row_without_a_message(
    api: TestClient[Litestar], auth: dict[str, str], admin: dict[str, str], settings: Settings
) -> None:
    paused = api.post("/v1/queues/probe/pause", headers=admin)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True

    job = submit(api, auth)

    assert job["status"] == "queued"
    assert job["held"] == "queue_paused"
    assert job["published_at"] is None
    assert take_messages(f"{settings.queue_prefix}.probe") == []
    depth = api.get("/v1/queues/probe", headers=admin).json()
    assert depth["depth"] == {"queue_paused": 1}
    assert depth["waiting"] == 1

    resumed = api.post("/v1/queues/probe/resume", headers=admin)
    assert resumed.status_code == 200
    assert resumed.json()["paused"] is False
    messages = take_messages(f"{settings.queue_prefix}.probe")
    assert [m["args"][0] for m, _ in messages] == [job["id"]]
    after = api.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert after["held"] is None
    assert after["published_at"] is not None


def test_a_message_delivered_during_a_pause_is_held_not_run(runtime: Runtime) -> None:
    (job_id,) = waiting_jobs(runtime, 1, step="probe")
    with runtime.db.session() as session:
        control_rows.set_paused(session, "probe", True)

    run_probe(runtime, job_id)  # what the worker does with the message

    job = row(runtime, job_id)
    assert job is not None
    assert (job.status, job.held, job.attempts, job.started_at) == (
        "queued",
        "queue_paused",
        0,
        None,
    )


def test_a_paused_client_waits_while_others_run(
    api: TestClient[Litestar],
    runtime: Runtime,
    auth: dict[str, str],
    other_auth: dict[str, str],
    admin: dict[str, str],
    settings: Settings,
) -> None:
    alice = client_of(runtime, auth)
    paused = api.post(f"/v1/clients/{alice.id}/pause", headers=admin)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused_at"] is not None

    held = submit(api, auth)
    free = submit(api, other_auth)

    assert held["held"] == "client_paused"
    assert free["held"] is None
    assert [m["args"][0] for m, _ in take_messages(f"{settings.queue_prefix}.probe")] == [
        free["id"]
    ]
    api.post(f"/v1/clients/{alice.id}/resume", headers=admin)
    assert [m["args"][0] for m, _ in take_messages(f"{settings.queue_prefix}.probe")] == [
        held["id"]
    ]


def test_a_cancelled_held_job_is_not_released(
    api: TestClient[Litestar], auth: dict[str, str], admin: dict[str, str], settings: Settings
) -> None:
    api.post("/v1/queues/probe/pause", headers=admin)
    job = submit(api, auth)
    cancelled = api.post(f"/v1/jobs/{job['id']}/cancel", headers=auth).json()
    assert (cancelled["status"], cancelled["held"]) == ("cancelled", None)
    api.post("/v1/queues/probe/resume", headers=admin)
    assert take_messages(f"{settings.queue_prefix}.probe") == []
