"""Retries go through admission (service/intake/replay.py, admission.py: check_replayed).

A retry puts ended jobs back among the active ones, so it passes the same quotas a
submission does: past ``max_active_jobs`` or a full storage quota it is a 403 problem
naming the limit, and nothing is queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Artifact, Job
from service.intake.clients import set_limits
from tests.integration.api.test_jobs_replay import ended
from tests.support.api import client_of, problem
from tests.support.jobs import insert, row
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    import uuid

    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def statuses(runtime: Runtime, client_id: uuid.UUID) -> dict[str, int]:
    with runtime.db.session() as session:
        stmt = (
            sa.select(Job.status, sa.func.count())
            .where(Job.client_id == client_id)
            .group_by(Job.status)
        )
        return {status: int(n) for status, n in session.execute(stmt)}


def test_a_bulk_retry_past_max_active_jobs_is_refused_naming_the_limit(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    # Given a client limited to 5 active jobs, with 50 cancelled ones
    owner = client_of(runtime, auth)
    set_limits(runtime, str(owner.id), max_active_jobs=5)
    insert(runtime, *(ended(owner.id, "cancelled") for _ in range(50)))
    # When it retries them all at once
    response = api.post("/v1/jobs/retry", headers=auth, json={"status": "cancelled"})
    # Then the answer is a 403 naming the limit, and not one job became active
    body = problem(response, 403)
    assert body["type"] == "/problems/quota-exceeded"
    assert (body["limit"], body["value"], body["current"]) == ("max_active_jobs", 5, 0)
    assert "50 jobs" in body["detail"]
    assert statuses(runtime, owner.id) == {"cancelled": 50}
    assert take_messages(f"{settings.queue_prefix}.download") == []


def test_a_bulk_retry_within_max_active_jobs_is_queued(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client limited to 5 active jobs, with 2 running and 3 cancelled
    owner = client_of(runtime, auth)
    set_limits(runtime, str(owner.id), max_active_jobs=5)
    insert(runtime, *(Job(client_id=owner.id, url="https://e.example/r", status="running")
                      for _ in range(2)))  # fmt: skip
    insert(runtime, *(ended(owner.id, "cancelled") for _ in range(3)))
    # When it retries the cancelled ones
    response = api.post("/v1/jobs/retry", headers=auth, json={"status": "cancelled"})
    # Then all three are queued: exactly at the limit
    assert response.status_code == 200, response.text
    assert response.json()["requeued"] == 3
    assert statuses(runtime, owner.id) == {"running": 2, "queued": 3}


def test_retrying_one_job_at_the_limit_is_refused_and_changes_nothing(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client at its limit of 1 active job, and a failed one
    owner = client_of(runtime, auth)
    set_limits(runtime, str(owner.id), max_active_jobs=1)
    insert(runtime, Job(client_id=owner.id, url="https://e.example/q", status="queued"))
    (failed,) = insert(runtime, ended(owner.id, "failed"))
    # When it retries the failed one
    body = problem(api.post(f"/v1/jobs/{failed}/retry", headers=auth), 403)
    # Then the answer names the limit and the job stays failed
    assert (body["limit"], body["value"], body["current"]) == ("max_active_jobs", 1, 1)
    assert row(runtime, failed).status == "failed"  # type: ignore[union-attr]


def test_retrying_a_playlist_counts_its_entries(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client limited to 3, and a failed playlist with 4 failed entries
    owner = client_of(runtime, auth)
    set_limits(runtime, str(owner.id), max_active_jobs=3)
    (parent,) = insert(runtime, ended(owner.id, "failed", error_class="children_failed"))
    insert(runtime, *(ended(owner.id, "failed", parent_id=parent) for _ in range(4)))
    # When the playlist is retried
    body = problem(api.post(f"/v1/jobs/{parent}/retry", headers=auth), 403)
    # Then it is refused: its 4 entries would pass the limit; nothing reopened
    assert body["limit"] == "max_active_jobs"
    assert statuses(runtime, owner.id) == {"failed": 5}


def test_a_retry_with_the_storage_quota_used_up_is_refused(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client whose files fill its quota, and a failed job
    owner = client_of(runtime, auth)
    set_limits(runtime, str(owner.id), storage_quota_bytes=1_000)
    (done,) = insert(
        runtime, Job(client_id=owner.id, url="https://e.example/d", status="succeeded")
    )
    with runtime.db.session() as session:
        session.add(
            Artifact(
                job_id=done, client_id=owner.id, path="x/y.mp4", filename="y.mp4",
                size=1_000, sha256="0" * 64, mime="video/mp4",
            )
        )  # fmt: skip
    (failed,) = insert(runtime, ended(owner.id, "failed"))
    # When it retries the failed job
    body = problem(api.post(f"/v1/jobs/{failed}/retry", headers=auth), 403)
    # Then the answer names the storage quota, and the job stays failed
    assert (body["limit"], body["value"], body["current"]) == ("storage_quota_bytes", 1_000, 1_000)
    assert row(runtime, failed).status == "failed"  # type: ignore[union-attr]
