"""A playlist's expansion goes through its client's ``max_active_jobs`` (service/work/probe.py,
db/room.py, fleet/gate.py): entries past the limit wait held ``client_full`` and are given
room as the client's active jobs fall, never more active than the limit at any moment.

The workers are threads of this process that take the download queue's messages and run
the download use case, as ``dramatiq actors`` would, while a sampler reads the rows.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Job
from service.domain.states import Status
from service.errors import HaulError
from service.intake.clients import create_client, set_limits
from service.intake.jobs import submit
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.jobs import must
from tests.support.rabbitmq import take_messages
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration

_ACTIVE = [Status.QUEUED.value, Status.RETRYING.value, Status.RUNNING.value]


def active_entries(runtime: Runtime, parent_id: uuid.UUID) -> int:
    """Entries queued, retrying or running that are not waiting for room."""
    with runtime.db.session() as session:
        stmt = sa.select(sa.func.count()).where(
            Job.parent_id == parent_id,
            Job.status.in_(_ACTIVE),
            Job.held.is_distinct_from("client_full"),
        )
        return int(session.execute(stmt).scalar_one())


def held_entries(runtime: Runtime, parent_id: uuid.UUID) -> dict[str | None, int]:
    with runtime.db.session() as session:
        stmt = (
            sa.select(Job.held, sa.func.count())
            .where(Job.parent_id == parent_id)
            .group_by(Job.held)
        )
        return {held: int(n) for held, n in session.execute(stmt)}


def test_a_50_entry_playlist_never_has_more_active_than_its_clients_limit(
    runtime: Runtime, settings: Settings, media: MediaServer
) -> None:
    # Given a client limited to 5 active jobs, and a feed of 50 entries
    owner = create_client(runtime, "bounded")[0]
    set_limits(runtime, str(owner.id), max_active_jobs=5)
    parent = submit(runtime, owner, url=media.url("/feed-big.rss?n=50"))
    take_messages(f"{settings.queue_prefix}.probe")
    # When the probe expands it
    run_probe(runtime, parent.id)
    # Then 5 entries may start and 45 wait for room, without a message
    assert held_entries(runtime, parent.id) == {None: 5, "client_full": 45}
    queue = f"{settings.queue_prefix}.download"
    first = take_messages(queue)
    assert len(first) == 5

    # And when worker threads download whatever is published, while a sampler watches
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, active_entries(runtime, parent.id))
            time.sleep(0.01)

    failures: list[BaseException] = []

    def work(job_id: str) -> None:
        try:
            run_download(runtime, uuid.UUID(job_id))
        except HaulError as exc:
            failures.append(exc)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    pending = [m["args"][0] for m, _ in first]
    with ThreadPoolExecutor(4) as pool:

        def drained() -> bool:
            pending.extend(m["args"][0] for m, _ in take_messages(queue))
            while pending:
                pool.submit(work, pending.pop())
            return must(runtime, parent.id).status != Status.RUNNING.value

        wait_for(drained, timeout=180, interval=0.05, what="the playlist to end")
    done.set()
    sampler.join(timeout=5)

    # Then all 50 were downloaded, and never more than 5 were active at once
    assert failures == []
    assert must(runtime, parent.id).status == Status.SUCCEEDED.value
    assert held_entries(runtime, parent.id) == {None: 50}
    assert 0 < peak <= 5
