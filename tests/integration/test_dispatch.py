"""Publishing a new job's message and marking it published later (``service/dispatch.py``),
on real PostgreSQL and RabbitMQ: a mark that is never written loses no job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.engine import connect
from service.db.models import Job
from service.dispatch import PublishMarks
from service.fleet import sweeps
from service.intake.jobs import submit
from tests.support.jobs import must
from tests.support.network import free_port
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

URL = "http://127.0.0.1:9/media/clip.mp4"


def test_a_publish_whose_mark_is_lost_is_found_and_sent_again_by_the_sweep(
    runtime: Runtime, client: Client, settings: Settings
) -> None:
    # Given a job committed and published whose mark never reaches its row (the
    # database refuses it here; a process that dies before writing it is the same)
    unreachable = connect(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone")
    runtime.marks = PublishMarks(unreachable, linger_s=0)
    job = submit(runtime, client, url=URL)
    runtime.marks.close()
    unreachable.dispose()
    assert job.published_at is not None
    assert must(runtime, job.id).published_at is None
    # When the republish sweep runs once the job has waited past its grace period
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(queued_at=sa.func.now() - sa.text("interval '1 minute'"))
        )
    assert sweeps.unpublished(runtime) == 1
    # Then its message is sent again (the first one too: a duplicate is dropped at claim
    # time) and the row says it was published
    messages = take_messages(f"{settings.queue_prefix}.probe")
    assert [m["args"] for m, _ in messages] == [[str(job.id)], [str(job.id)]]
    assert must(runtime, job.id).published_at is not None


def test_marks_touch_only_rows_still_queued_and_never_marked(
    runtime: Runtime, client: Client
) -> None:
    # Given a queued job, one a worker took meanwhile, and one published again since
    marks = PublishMarks(runtime.db)
    queued, taken, again = (submit(runtime, client, url=URL) for _ in range(3))
    runtime.marks.close()
    earlier = datetime(2020, 1, 1, tzinfo=UTC)
    with runtime.db.session() as session:
        session.execute(sa.update(Job).values(published_at=None))
        session.execute(
            sa.update(Job)
            .where(Job.id == taken.id)
            .values(status="running", lease_owner="w/1", lease_expires_at=sa.func.now())
        )
        session.execute(sa.update(Job).where(Job.id == again.id).values(published_at=earlier))
    # When their marks are written, with one for a job that no longer exists
    at = datetime.now(UTC)
    for job_id in (queued.id, taken.id, again.id, uuid.uuid4()):
        marks.add(job_id, at)
    marks.close()
    # Then only the queued, unmarked job got the time
    assert must(runtime, queued.id).published_at == at
    assert must(runtime, taken.id).published_at is None
    assert must(runtime, again.id).published_at == earlier
