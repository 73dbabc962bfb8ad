"""What a plain ``POST /v1/jobs`` costs the database, counted rather than timed: the SQL
statements and commits the engine sends (``Database.counts``), so a change that adds a
query or a transaction to the hot path turns this red. Timings live in bench/."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from service.dispatch import PublishMarks
from tests.support.api import submit
from tests.support.jobs import must
from tests.support.rabbitmq import queue_depth

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def _counted(runtime: Runtime) -> tuple[int, int]:
    return runtime.db.counts.statements, runtime.db.counts.commits


def test_a_plain_submit_is_two_statements_and_one_commit_and_a_share_of_one_mark(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    # Given an API that served a request already (a first connection asks the server
    # about itself), whose publish marks wait until told to write
    submit(api, auth)
    runtime.marks.close()
    runtime.marks = PublishMarks(runtime.db, linger_s=60)
    statements, commits = _counted(runtime)
    # When a client without limits submits a job with no key, no dedupe and no callback
    body = submit(api, auth)
    # Then the request read the key and inserted the job: two statements, one commit
    after_request = _counted(runtime)
    assert (after_request[0] - statements, after_request[1] - commits) == (2, 1)
    # and the job's message is in the broker, the time it was confirmed in the answer
    assert queue_depth(f"{settings.queue_prefix}.probe") == 2
    assert body["published_at"] is not None
    assert must(runtime, body["id"]).published_at is None
    # When the pending marks are written
    before_mark = _counted(runtime)
    runtime.marks.close()
    # Then one statement and one commit put that time in the row
    after_mark = _counted(runtime)
    assert (after_mark[0] - before_mark[0], after_mark[1] - before_mark[1]) == (1, 1)
    assert must(runtime, body["id"]).published_at == datetime.fromisoformat(body["published_at"])


def test_many_submits_share_one_mark(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given marks that wait until told to write
    submit(api, auth)
    runtime.marks.close()
    runtime.marks = PublishMarks(runtime.db, linger_s=60)
    # When a client submits ten jobs
    ids = [submit(api, auth)["id"] for _ in range(10)]
    statements, commits = _counted(runtime)
    runtime.marks.close()
    # Then one UPDATE in one transaction marks them all published
    assert _counted(runtime) == (statements + 1, commits + 1)
    assert all(must(runtime, job_id).published_at is not None for job_id in ids)
