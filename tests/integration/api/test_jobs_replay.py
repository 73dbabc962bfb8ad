"""Replaying ended jobs from their rows: one job, or every job matching a filter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from service.db.models import Job
from service.intake.clients import create_client
from tests.support.api import client_of, problem
from tests.support.jobs import insert, row
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

URL = "https://media.example/watch/clip.mp4"


def ended(client_id: uuid.UUID, status: str, **fields: object) -> Job:
    """A job as the workers leave it when they give up."""
    values: dict[str, object] = {
        "error_class": "http_5xx",
        "error_message": "HTTP Error 503",
        "attempts": 4,
        "finished_at": datetime.now(UTC),
        "dead_lettered_at": datetime.now(UTC),
        "step": "download",
        **fields,
    }
    return Job(client_id=client_id, url=URL, status=status, **values)  # type: ignore[arg-type]


def test_retrying_a_failed_job_queues_it_with_a_fresh_budget_and_publishes_it(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    # Given a download that failed after its retries ran out
    (job_id,) = insert(runtime, ended(client_of(runtime, auth).id, "failed"))
    # When its owner retries it
    response = api.post(f"/v1/jobs/{job_id}/retry", headers=auth)
    # Then it is queued again, clean, for the step it failed in, and the doorbell rang
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/jobs/{job_id}"
    body = response.json()
    assert (body["status"], body["step"], body["attempts"]) == ("queued", "download", 0)
    assert (
        body["error"] is None and body["dead_lettered_at"] is None and body["finished_at"] is None
    )
    assert body["published_at"] is not None
    messages = take_messages(f"{settings.queue_prefix}.download")
    assert [(m["actor_name"], m["args"]) for m, _ in messages] == [("download", [str(job_id)])]


@pytest.mark.parametrize("status", ["queued", "running", "succeeded"])
def test_only_failed_or_cancelled_jobs_can_be_retried(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, status: str
) -> None:
    (job_id,) = insert(runtime, Job(client_id=client_of(runtime, auth).id, url=URL, status=status))
    body = problem(api.post(f"/v1/jobs/{job_id}/retry", headers=auth), 409)
    assert status in body["detail"]
    assert row(runtime, job_id).status == status  # type: ignore[union-attr]


def test_another_clients_job_cannot_be_retried(
    api: TestClient[Litestar], auth: dict[str, str], other_auth: dict[str, str], runtime: Runtime
) -> None:
    (job_id,) = insert(runtime, ended(client_of(runtime, auth).id, "failed"))
    problem(api.post(f"/v1/jobs/{job_id}/retry", headers=other_auth), 404)
    assert row(runtime, job_id).status == "failed"  # type: ignore[union-attr]


def test_bulk_retry_takes_only_the_callers_jobs_matching_the_filter(
    api: TestClient[Litestar], auth: dict[str, str], other_auth: dict[str, str], runtime: Runtime
) -> None:
    # Given failed jobs of two classes, an old one, a cancelled one, and another client's
    mine = client_of(runtime, auth).id
    theirs = client_of(runtime, other_auth).id
    long_ago = datetime.now(UTC) - timedelta(days=3)
    wanted = insert(runtime, ended(mine, "failed"), ended(mine, "failed"))
    kept = insert(
        runtime,
        ended(mine, "failed", error_class="http_404"),
        ended(mine, "failed", finished_at=long_ago),
        ended(mine, "cancelled"),
        ended(theirs, "failed"),
    )
    # When the client replays its recent 5xx failures
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    response = api.post(
        "/v1/jobs/retry", json={"error_class": "http_5xx", "since": since}, headers=auth
    )
    # Then exactly those are queued again
    assert response.status_code == 200, response.text
    assert response.json() == {"requeued": 2}
    assert {row(runtime, j).status for j in wanted} == {"queued"}  # type: ignore[union-attr]
    assert [row(runtime, j).status for j in kept] == ["failed", "failed", "cancelled", "failed"]  # type: ignore[union-attr]


def test_bulk_retry_of_another_client_needs_an_admin_key(
    api: TestClient[Litestar], auth: dict[str, str], other_auth: dict[str, str], runtime: Runtime
) -> None:
    theirs = client_of(runtime, other_auth).id
    (job_id,) = insert(runtime, ended(theirs, "failed"))
    body = {"client_id": str(theirs)}
    problem(api.post("/v1/jobs/retry", json=body, headers=auth), 403)
    _, admin_key = create_client(runtime, "ops", admin=True)
    response = api.post(
        "/v1/jobs/retry", json=body, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert response.json() == {"requeued": 1}
    assert row(runtime, job_id).status == "queued"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body", [{"status": "succeeded"}, {"bogus": 1}, {"since": "yesterday"}, {"client_id": "x"}]
)
def test_bulk_retry_rejects_a_bad_filter(
    api: TestClient[Litestar], auth: dict[str, str], body: dict[str, object]
) -> None:
    problem(api.post("/v1/jobs/retry", json=body, headers=auth), 422)
