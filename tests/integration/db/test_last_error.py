"""A waiting job's last error: its text for users, its class in a column of its own.

The class is what a dead letter fails the job with, and how a successful publish
knows that the error it clears was a failed publish; neither reads it back out of
the text. No worker runs: each test plays the step that writes the row.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import structlog

from service.db import jobs as job_rows
from service.db import transitions
from service.db.models import Job
from service.domain.errors import ErrorClass
from service.domain.states import Phase, Status, Step
from service.errors import Transient
from service.intake.clients import create_client
from service.work.outcomes import dead_lettered, release_for_retry

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

OWNER = "worker-1/abcd"


@pytest.fixture
def client(runtime: Runtime) -> Client:
    made, _ = create_client(runtime, "errors")
    return made


def running(runtime: Runtime, client: Client) -> Job:
    """A job a worker has just claimed for its first attempt."""
    with runtime.db.session() as session:
        job = job_rows.insert(session, Job(client_id=client.id, url="https://media.example/v"))
        claimed = transitions.claim(
            session, job.id, Step.PROBE, OWNER, timedelta(seconds=30), Phase.PROBING
        )
        assert claimed is not None
        return claimed


def read(runtime: Runtime, job_id: uuid.UUID) -> Job:
    with runtime.db.session() as session:
        job = job_rows.get(session, job_id)
        assert job is not None
        return job


@pytest.mark.parametrize(
    ("failure", "error_class", "last_error"),
    [
        (
            Transient("HTTP Error 503: Service Unavailable", error_class=ErrorClass.HTTP_5XX),
            "http_5xx",
            "http_5xx: HTTP Error 503: Service Unavailable",
        ),
        (KeyError("formats"), "KeyError", "KeyError: 'formats'"),
    ],
    ids=["classified", "unexpected"],
)
def test_a_dead_letter_fails_the_job_with_the_class_of_its_last_error(
    runtime: Runtime, client: Client, failure: BaseException, error_class: str, last_error: str
) -> None:
    # Given a job whose attempt failed and was released for a retry
    job = running(runtime, client)
    release_for_retry(runtime, job, OWNER, failure, structlog.get_logger())
    waiting = read(runtime, job.id)
    assert waiting.status == Status.RETRYING
    assert (waiting.last_error, waiting.last_error_class) == (last_error, error_class)

    # When the broker runs out of retries and dead-letters its message
    dead_lettered(runtime, job.id, 3)

    # Then the job failed with that class and the text users saw while it waited
    failed = read(runtime, job.id)
    assert failed.status == Status.FAILED
    assert (failed.error_class, failed.error_message) == (error_class, last_error)
    assert failed.dead_lettered_at is not None


def test_a_dead_letter_without_a_last_error_says_dead_letter(
    runtime: Runtime, client: Client
) -> None:
    # Given a queued job that never got as far as an attempt
    with runtime.db.session() as session:
        job = job_rows.insert(session, Job(client_id=client.id, url="https://media.example/v"))

    # When its message is dead-lettered
    dead_lettered(runtime, job.id, 3)

    # Then it failed as a dead letter, with the broker's reason
    failed = read(runtime, job.id)
    assert (failed.status, failed.error_class) == (Status.FAILED, "dead_letter")
    assert failed.error_message == "retries exhausted after 3 retries"


def test_a_successful_publish_clears_a_failed_publish_and_nothing_else(
    runtime: Runtime, client: Client
) -> None:
    # Given a job whose publish failed, and one the lease sweep queued again after a crash
    with runtime.db.session() as session:
        unpublished = job_rows.insert(session, Job(client_id=client.id, url="https://a.example/"))
        recovered = job_rows.insert(
            session,
            Job(
                client_id=client.id,
                url="https://b.example/",
                last_error="lease expired: the worker stopped renewing it",
                last_error_class=ErrorClass.LEASE_EXPIRED,
            ),
        )
        job_rows.mark_publish_failed(session, unpublished.id, "AMQPConnectionError: refused")
    stranded = read(runtime, unpublished.id)
    assert stranded.last_error == "publish failed: AMQPConnectionError: refused"
    assert stranded.last_error_class == "publish_failed"

    # When both are published
    with runtime.db.session() as session:
        job_rows.mark_published(session, [unpublished.id, recovered.id])

    # Then the publish error is gone, and the crash is still told
    published = read(runtime, unpublished.id)
    assert (published.last_error, published.last_error_class) == (None, None)
    assert published.published_at is not None
    kept = read(runtime, recovered.id)
    assert kept.last_error == "lease expired: the worker stopped renewing it"
    assert kept.last_error_class == "lease_expired"
