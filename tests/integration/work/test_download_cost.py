"""What one plain job costs the database, counted: a single direct file, no cookies, no
limits, probed and downloaded by the use cases in this process against real
PostgreSQL, RabbitMQ, yt-dlp and the local media server.

The figures are the issue's "count the work": a change that adds a query or a commit
to the plain path turns this red (and then says which statements ran).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from service.intake.jobs import submit
from service.runtime import build_runtime
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.jobs import must
from tests.support.statements import counting

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration

#: Statements and commits of one plain job from the probe's claim to the download's end.
PLAIN_JOB_STATEMENTS = 8
PLAIN_JOB_COMMITS = 4


@pytest.fixture
def worker(settings: Settings) -> Iterator[Runtime]:
    """A worker's runtime whose heartbeat cannot fall inside a small download, so the
    count is the same on every run."""
    rt = build_runtime(settings.model_copy(update={"lease_s": 120, "heartbeat_s": 60.0}))
    yield rt
    rt.broker.close()
    rt.db.dispose()


def test_a_plain_job_runs_a_fixed_number_of_statements_and_commits(
    worker: Runtime, runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a plain job: one direct file, submitted (the submit is not counted)
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    # When a worker probes it and then downloads it
    with counting(worker.db.engine) as counted:
        run_probe(worker, job.id)
        run_download(worker, job.id)
    # Then it succeeded
    assert must(runtime, job.id).status == "succeeded"
    # and it took exactly this many statements and commits
    assert counted.statements == PLAIN_JOB_STATEMENTS, counted.shown()
    assert counted.commits == PLAIN_JOB_COMMITS, counted.shown()
