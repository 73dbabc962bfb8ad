"""A user's cancel or delete makes room under ``max_active_jobs`` at once (service/intake/jobs.py,
work/room.py): the client's playlist entries held ``client_full`` are given it then, as after
an attempt, not at the next attempt's end or the sweep."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Job
from service.intake import jobs
from service.intake.clients import create_client, set_limits
from service.work.probe import run_probe
from tests.support.jobs import must
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


def entries(runtime: Runtime, parent_id: uuid.UUID) -> list[Job]:
    """The playlist's entries in the order the release gives them room."""
    with runtime.db.session() as session:
        stmt = (
            sa.select(Job)
            .where(Job.parent_id == parent_id)
            .order_by(Job.priority.desc(), Job.queued_at, Job.id)
        )
        return list(session.execute(stmt).scalars())


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_cancelling_a_job_gives_a_held_entry_room_at_once(
    runtime: Runtime, settings: Settings, media: MediaServer, how: str
) -> None:
    # Given a client limited to 2 active jobs whose 4-entry playlist was expanded:
    # 2 entries queued, 2 held client_full without a message
    owner = create_client(runtime, "bounded")[0]
    set_limits(runtime, str(owner.id), max_active_jobs=2)
    parent = jobs.submit(runtime, owner, url=media.url("/feed-big.rss?n=4"))
    take_messages(f"{settings.queue_prefix}.probe")
    run_probe(runtime, parent.id)
    queue = f"{settings.queue_prefix}.download"
    started = {uuid.UUID(m["args"][0]) for m, _ in take_messages(queue)}
    held = [e.id for e in entries(runtime, parent.id) if e.held == "client_full"]
    assert len(started) == 2
    assert len(held) == 2
    # When the client cancels (deletes) one of its queued entries
    getattr(jobs, how)(runtime, owner, next(iter(sorted(started))))
    # Then the first held entry is queued and published at once; the other still waits
    published = [uuid.UUID(m["args"][0]) for m, _ in take_messages(queue)]
    assert published == [held[0]]
    assert must(runtime, held[0]).held is None
    assert must(runtime, held[0]).status == "queued"
    assert must(runtime, held[1]).held == "client_full"
