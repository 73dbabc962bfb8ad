"""The retention sweep: old ended jobs go, rows and files, and old ended deliveries of
subscriptions; it is off by default."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Job, WebhookDelivery
from service.domain.states import DeliverySubject
from service.fleet import sweeps
from service.intake.clients import create_client
from service.runtime import build_runtime
from service.work import storage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

URL = "https://media.example/clip.mp4"


@pytest.fixture
def keeping_a_week(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings.model_copy(update={"retention_days": 7}))
    yield rt
    rt.broker.close()
    rt.db.dispose()


def _job_with_file(rt: Runtime, *, ended_days_ago: float | None, **fields: object) -> Job:
    client, _ = create_client(rt, "x")
    finished = (
        datetime.now(UTC) - timedelta(days=ended_days_ago) if ended_days_ago is not None else None
    )
    status = "succeeded" if finished else "queued"
    job = Job(client_id=client.id, url=URL, status=status, finished_at=finished, **fields)  # type: ignore[arg-type]
    with rt.db.session() as session:
        session.add(job)
    folder = storage.job_dir(rt.settings.storage_dir, client.id, job.id)
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(b"media")
    return job


def _exists(rt: Runtime, job: Job) -> tuple[bool, bool]:
    with rt.db.session() as session:
        in_db = session.get(Job, job.id) is not None
    return in_db, storage.job_dir(rt.settings.storage_dir, job.client_id, job.id).exists()


def test_jobs_ended_before_the_retention_period_are_deleted_with_their_files(
    keeping_a_week: Runtime,
) -> None:
    # Given an old finished job, a recent one, and one still waiting
    old = _job_with_file(keeping_a_week, ended_days_ago=8)
    recent = _job_with_file(keeping_a_week, ended_days_ago=6)
    waiting = _job_with_file(keeping_a_week, ended_days_ago=None)
    # When the sweep runs (twice: it is idempotent)
    first = sweeps.run_all(keeping_a_week)
    second = sweeps.run_all(keeping_a_week)
    # Then only the old one is gone, row and file
    assert (first.pruned, second.pruned) == (1, 0)
    assert _exists(keeping_a_week, old) == (False, False)
    assert _exists(keeping_a_week, recent) == (True, True)
    assert _exists(keeping_a_week, waiting) == (True, True)


def test_a_pruned_playlist_takes_its_children_and_their_files(keeping_a_week: Runtime) -> None:
    parent = _job_with_file(keeping_a_week, ended_days_ago=30)
    child = _job_with_file(keeping_a_week, ended_days_ago=30, parent_id=parent.id)
    assert sweeps.run_all(keeping_a_week).pruned == 2
    assert _exists(keeping_a_week, parent) == (False, False)
    assert _exists(keeping_a_week, child) == (False, False)


def test_without_a_retention_setting_nothing_is_pruned(runtime: Runtime) -> None:
    ancient = _job_with_file(runtime, ended_days_ago=3650)
    assert sweeps.run_all(runtime).pruned == 0
    assert _exists(runtime, ancient) == (True, True)


def _subscription_delivery(rt: Runtime, *, days_ago: float, status: str) -> WebhookDelivery:
    client, _ = create_client(rt, "s")
    made = WebhookDelivery(
        client_id=client.id,
        subject_kind=DeliverySubject.SUBSCRIPTION.value,
        subject_id=uuid.uuid4(),
        event="subscription.check_failed",
        url="https://hooks.example/s",
        body="{}",
        status=status,
        created_at=datetime.now(UTC) - timedelta(days=days_ago),
    )
    with rt.db.session() as session:
        session.add(made)
    return made


def test_ended_subscription_deliveries_past_the_retention_period_are_deleted(
    keeping_a_week: Runtime,
) -> None:
    # Given an old delivered event, an old one still pending, and a recent failed one
    old = _subscription_delivery(keeping_a_week, days_ago=8, status="delivered")
    pending = _subscription_delivery(keeping_a_week, days_ago=8, status="pending")
    recent = _subscription_delivery(keeping_a_week, days_ago=6, status="failed")
    # When the sweep runs
    assert sweeps.run_all(keeping_a_week).pruned == 1
    # Then only the old ended one is gone
    with keeping_a_week.db.session() as session:
        left = {d.id for d in session.execute(sa.select(WebhookDelivery)).scalars()}
    assert left == {pending.id, recent.id}
    assert old.id not in left
