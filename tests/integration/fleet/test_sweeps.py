"""The recovery sweeps (service/fleet/sweeps.py) called directly on a real database and RabbitMQ:
expired leases, messages never sent or lost, parents whose last child's finish was missed.

The orphan and retention sweeps have modules of their own (test_sweeps_orphans.py,
test_sweeps_retention.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db import attempts as attempt_rows
from service.db import transitions
from service.db.models import Job
from service.domain.states import Phase, Step
from service.errors import Transient
from service.fleet import sweeps
from service.intake.jobs import submit
from service.runtime import build_runtime
from service.work.probe import run_probe
from tests.support.jobs import attempts_of, must
from tests.support.network import free_port
from tests.support.rabbitmq import queue_depth, take_messages
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


# --- sweeps -------------------------------------------------------------------------------------


def test_an_expired_lease_is_requeued_until_the_attempts_run_out(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job whose worker dies every time it claims it (a one-second lease, never renewed)
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    probe_queue = f"{settings.queue_prefix}.probe"
    assert queue_depth(probe_queue) == 1
    max_attempts = must(runtime, job.id).max_attempts
    assert max_attempts == settings.max_retries + 1

    def sweep() -> tuple[int, int] | None:
        outcome = sweeps.expired_leases(runtime)
        return outcome if outcome != (0, 0) else None

    for attempt in range(1, max_attempts + 1):
        owner = f"doomed/{attempt}"
        with runtime.db.session() as session:
            claimed = transitions.claim(
                session, job.id, Step.PROBE, owner, timedelta(seconds=1), Phase.PROBING
            )
            assert claimed is not None, f"claim {attempt} refused"
            attempt_rows.start(session, job.id, claimed.attempts, "probe", owner, "test")
        # When the lease runs out and the sweep runs
        outcome = wait_for(sweep, timeout=10, what=f"the sweep to find lease {attempt} expired")
        current = must(runtime, job.id)
        if attempt < max_attempts:
            # Then the job is queued again, announced again, and the dead attempt closed
            assert outcome == (1, 0)
            assert current.status == "queued"
            assert current.lease_owner is None
            assert current.published_at is not None
            assert queue_depth(probe_queue) == 1 + attempt
        else:
            # Then, past its attempts, it fails for good and is not announced again
            assert outcome == (0, 1)
            assert current.status == "failed"
            assert current.error_class == "attempts_exhausted"
            assert current.error_message
            assert current.finished_at is not None
            assert queue_depth(probe_queue) == max_attempts
    # and every attempt is closed as abandoned, and the failed job cannot be claimed again
    attempts = attempts_of(runtime, job.id)
    assert [(a.outcome, a.error_class) for a in attempts] == [
        ("abandoned", "lease_expired")
    ] * max_attempts
    assert all(a.finished_at for a in attempts)
    with runtime.db.session() as session:
        again = transitions.claim(
            session, job.id, Step.PROBE, "late", timedelta(seconds=60), Phase.PROBING
        )
    assert again is None


def test_a_requeued_job_says_its_worker_stopped_answering(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a job claimed by a worker that died (its one-second lease is never renewed)
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    with runtime.db.session() as session:
        claimed = transitions.claim(
            session, job.id, Step.PROBE, "doomed/1", timedelta(seconds=1), Phase.PROBING
        )
    assert claimed is not None
    # When the sweep finds the lease expired and queues the job again
    wait_for(
        lambda: sweeps.expired_leases(runtime) == (1, 0),
        timeout=10,
        what="the sweep to requeue the job",
    )
    # Then the job, queued again, tells its owner why its attempt was lost
    requeued = must(runtime, job.id)
    assert requeued.status == "queued"
    assert requeued.published_at is not None
    assert requeued.last_error is not None
    assert "lease expired" in requeued.last_error


def test_a_job_whose_publish_failed_is_published_by_the_sweep(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job submitted while the broker was unreachable
    offline = build_runtime(
        settings.model_copy(
            update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"}
        )
    )
    try:
        job = submit(offline, client, url=media.url("/media/clip.mp4"))
    finally:
        offline.broker.close()
        offline.db.dispose()
    stranded = must(runtime, job.id)
    assert stranded.status == "queued"
    assert stranded.published_at is None
    assert stranded.last_error is not None
    assert stranded.last_error.startswith("publish failed")
    probe_queue = f"{settings.queue_prefix}.probe"
    # When the sweep runs at once, then again once the row is a few seconds old
    too_soon = sweeps.unpublished(runtime)
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(queued_at=sa.func.now() - timedelta(seconds=30))
        )
    republished = sweeps.unpublished(runtime)
    again = sweeps.unpublished(runtime)
    # Then a fresh row is left to its own publish, the old one is published exactly once,
    # and the row no longer reports the publish error
    assert too_soon == 0
    assert republished == 1
    assert again == 0
    assert queue_depth(probe_queue) == 1
    published = must(runtime, job.id)
    assert published.status == "queued"
    assert published.published_at is not None
    assert published.last_error is None


def test_a_job_published_long_ago_and_never_claimed_is_published_again(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a queued job whose message was sent an hour ago and never reached a worker
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    probe_queue = f"{settings.queue_prefix}.probe"
    assert queue_depth(probe_queue) == 1
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(
                queued_at=sa.func.now() - timedelta(hours=1),
                published_at=sa.func.now() - timedelta(hours=1),
            )
        )
    # When the sweep runs
    republished = sweeps.unpublished(runtime)
    # Then the doorbell rings again (a duplicate is harmless; a lost message is not)
    assert republished == 1
    assert queue_depth(probe_queue) == 2
    assert must(runtime, job.id).published_at is not None


def test_a_retry_whose_delayed_message_was_lost_is_published_again_once(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job that failed transiently while the broker was down, so no retry was sent
    job = submit(runtime, client, url=media.url("/status/503"))
    with pytest.raises(Transient):
        run_probe(runtime, job.id)
    probe_queue = f"{settings.queue_prefix}.probe"
    take_messages(probe_queue)  # only the submit's message; the retry was never sent
    # When the sweep runs before the retry is due, then after it is long overdue
    too_soon = sweeps.unpublished(runtime)
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(
                updated_at=sa.func.now() - timedelta(hours=1),
                next_attempt_at=sa.func.now() - timedelta(hours=1),
                published_at=sa.func.now() - timedelta(hours=1),
            )
        )
    republished = sweeps.unpublished(runtime)
    again = sweeps.unpublished(runtime)
    # Then the retry is announced exactly once, and the claim that follows runs it
    assert (too_soon, republished, again) == (0, 1, 0)
    assert queue_depth(probe_queue) == 1
    assert must(runtime, job.id).status == "retrying"
    with pytest.raises(Transient):
        run_probe(runtime, job.id)
    assert must(runtime, job.id).attempts == 2


def test_a_parent_whose_last_child_finish_was_missed_is_closed_by_the_sweep(
    runtime: Runtime, client: Client
) -> None:
    # Given a playlist parent still waiting although its children all ended, one failed
    parent = Job(
        client_id=client.id,
        url="https://media.example/feed.rss",
        status="running",
        phase=Phase.AWAITING_CHILDREN.value,
        info={"playlist": {"entries_queued": 2, "capped": False}},
    )
    with runtime.db.session() as session:
        session.add(parent)
        session.flush()
        session.add_all(
            [
                Job(
                    client_id=client.id,
                    parent_id=parent.id,
                    url=f"https://media.example/{n}.mp4",
                    step=Step.DOWNLOAD.value,
                    status=status,
                )
                for n, status in enumerate(("succeeded", "failed"))
            ]
        )
    # When the sweep runs (twice: a second scheduler would do no harm)
    closed = sweeps.stranded_parents(runtime)
    closed_again = sweeps.stranded_parents(runtime)
    # Then the parent is failed, saying how many of its entries failed
    assert (closed, closed_again) == (1, 0)
    done = must(runtime, parent.id)
    assert done.status == "failed"
    assert done.error_class == "children_failed"
    assert done.error_message == "1 of 2 entries failed"
    assert done.finished_at is not None
