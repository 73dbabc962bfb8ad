"""The three guards that make "one effect per job" true, each pinned by tests that fail
when the guard is dropped (docs/testing.md lists which test catches which change).

- A worker whose lease was taken over writes nothing: no ending, no progress, no
  file, no artifact; it stops (the lease-owner condition of ``transitions.move``).
- A heartbeat from a former owner changes nothing and tells the worker to stop
  (the lease-owner condition of ``transitions.heartbeat``, read by ``LeaseKeeper``).
- A claim at ``max_attempts`` is refused and the row ends ``attempts_exhausted``
  (``attempts < max_attempts`` in ``transitions.claim``).

Each test plays the worker that received the message, on real PostgreSQL, yt-dlp and
the local media server; "another worker takes over" is a lease that ran out (the
clock moved on) followed by that worker's claim.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import attempts as attempt_rows
from service.db import jobs as job_rows
from service.db import transitions
from service.db.models import Artifact, Job
from service.domain.options import normalize
from service.domain.states import TERMINAL, Phase, Status, Step
from service.errors import JobFailure
from service.intake.clients import create_client
from service.media.download import Progress
from service.runtime import build_runtime
from service.work import storage
from service.work.download import run_download
from service.work.lease import LeaseKeeper
from service.work.probe import run_probe
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration

FORMER = "former/1"
SUCCESSOR = "successor/1"
LEASE = timedelta(minutes=5)


@pytest.fixture
def client(runtime: Runtime) -> Client:
    made, _ = create_client(runtime, "guarantees")
    return made


def waiting_job(
    runtime: Runtime,
    client: Client,
    url: str,
    *,
    step: Step = Step.DOWNLOAD,
    attempts: int = 0,
    max_attempts: int = 5,
) -> uuid.UUID:
    """A job queued for ``step``, as a probe (or the API) would leave it."""
    job = Job(
        client_id=client.id,
        url=url,
        options=normalize(None, None).model_dump(mode="json"),
        step=step.value,
        attempts=attempts,
        max_attempts=max_attempts,
    )
    with runtime.db.session() as session:
        job_rows.insert(session, job)
    return job.id


def snapshot(runtime: Runtime, job_id: uuid.UUID) -> dict[str, Any]:
    """Every column of the row, to compare before and after."""
    with runtime.db.session() as session:
        job = job_rows.get(session, job_id)
        assert job is not None, f"job {job_id} is gone"
        return job.model_dump()


def take_over(runtime: Runtime, job_id: uuid.UUID, step: Step = Step.DOWNLOAD) -> dict[str, Any]:
    """The job's lease runs out and another worker claims it; the row as it then is."""
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=sa.func.now() - timedelta(seconds=1))
        )
        phase = Phase.DOWNLOADING if step is Step.DOWNLOAD else Phase.PROBING
        taken = transitions.claim(session, job_id, step, SUCCESSOR, LEASE, phase)
    assert taken is not None, "the successor could not claim the expired lease"
    return snapshot(runtime, job_id)


def claimed_by_former(runtime: Runtime, client: Client) -> uuid.UUID:
    """A running job whose lease belongs to FORMER."""
    job_id = waiting_job(runtime, client, "http://127.0.0.1:9/never-fetched.mp4")
    with runtime.db.session() as session:
        claimed = transitions.claim(
            session, job_id, Step.DOWNLOAD, FORMER, LEASE, Phase.DOWNLOADING
        )
    assert claimed is not None
    return job_id


def artifacts_of(runtime: Runtime, job_id: uuid.UUID) -> list[Artifact]:
    with runtime.db.session() as session:
        return list(session.execute(sa.select(Artifact).where(Artifact.job_id == job_id)).scalars())


def stored_files(settings: Settings, client: Client, job_id: uuid.UUID) -> list[str]:
    found = storage.job_dir(settings.storage_dir, client.id, job_id)
    return sorted(p.name for p in found.rglob("*")) if found.exists() else []


class Background:
    """Run a worker's use case in a thread, keeping what it raised."""

    def __init__(self, target: Callable[[], None]) -> None:
        self.errors: list[BaseException] = []

        def run() -> None:
            try:
                target()
            except BaseException as exc:
                self.errors.append(exc)

        self.thread = threading.Thread(target=run, name="former-worker", daemon=True)
        self.thread.start()

    def finished_within(self, seconds: float) -> bool:
        self.thread.join(seconds)
        return not self.thread.is_alive()


class TakeoverServer:
    """An origin that, on the first request, lets another worker take the job over and
    then answers ``status``: the former owner meets its error after losing its lease."""

    def __init__(self, on_first_request: Callable[[], None], status: int) -> None:
        fired = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                if not fired.is_set():
                    fired.set()
                    on_first_request()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.fired = fired
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> TakeoverServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a worker whose lease was taken over writes nothing ----------------------------------------


@pytest.mark.parametrize(
    "to", [Status.SUCCEEDED, Status.FAILED, Status.RETRYING, Status.QUEUED, Status.CANCELLED]
)
def test_a_former_owner_cannot_move_the_job(runtime: Runtime, client: Client, to: Status) -> None:
    # Given a job whose lease ran out and that another worker claimed
    job_id = claimed_by_former(runtime, client)
    taken = take_over(runtime, job_id)
    # When the former owner tries to write an ending (or hand the job back)
    with runtime.db.session() as session:
        write = transitions.end_job if to in TERMINAL else transitions.move
        moved = write(
            session, job_id, to, owner=FORMER, only_from=(Status.RUNNING,), error_class="x"
        )
    # Then nothing matched and the row is exactly the successor's
    assert moved is None
    assert snapshot(runtime, job_id) == taken


def test_a_download_whose_lease_was_taken_over_before_its_final_write_stores_nothing(
    runtime: Runtime,
    settings: Settings,
    client: Client,
    media: MediaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a download that finishes, then stalls after its last heartbeat, long enough
    # for its lease to run out and another worker to claim the job
    job_id = waiting_job(runtime, client, media.url("/media/clip.mp4"))
    taken: dict[str, Any] = {}
    real_store = storage.store

    def store_after_takeover(*args: Any, **kwargs: Any) -> Any:
        taken.update(take_over(runtime, job_id))
        return real_store(*args, **kwargs)

    monkeypatch.setattr(storage, "store", store_after_takeover)
    # When the former owner goes on to store the file and end the job
    run_download(runtime, job_id)
    # Then it stopped without an ending: the row is exactly as the successor left it,
    assert taken, "the download never reached its final write"
    assert snapshot(runtime, job_id) == taken
    # with no artifact, no stored file and no scratch space left behind
    assert artifacts_of(runtime, job_id) == []
    assert stored_files(settings, client, job_id) == []
    assert not any(settings.temp_dir.iterdir())
    # and its own attempt is recorded as abandoned, not succeeded
    with runtime.db.session() as session:
        outcomes = [(a.worker, a.outcome) for a in attempt_rows.for_job(session, job_id)]
    assert all(outcome == "abandoned" for _, outcome in outcomes), outcomes


@pytest.mark.parametrize(
    ("status", "meets"),
    [pytest.param(404, "a permanent error", id="404"), pytest.param(503, "a retry", id="503")],
)
def test_a_former_owner_that_meets_an_error_leaves_the_successors_row_alone(
    settings: Settings, client: Client, status: int, meets: str
) -> None:
    # Given a worker without a heartbeat in the window (so only the final write's guard can
    # stop it) whose origin answers an error after another worker took its job over
    rt = build_runtime(settings.model_copy(update={"heartbeat_seconds": 60}))
    try:
        taken: dict[str, Any] = {}
        holder: list[uuid.UUID] = []
        with TakeoverServer(lambda: taken.update(take_over(rt, holder[0])), status) as origin:
            holder.append(waiting_job(rt, client, origin.url("/clip.mp4")))
            # When the former owner records that error (as failed, or released for a retry)
            with pytest.raises(JobFailure):
                run_download(rt, holder[0])
            assert origin.fired.is_set()
        # Then the row is exactly as the successor left it: still running, under its lease
        after = snapshot(rt, holder[0])
        assert after == taken, f"the former owner wrote {meets} over its successor"
        assert (after["status"], after["lease_owner"]) == ("running", SUCCESSOR)
    finally:
        rt.broker.close()
        rt.db.dispose()


# --- a heartbeat from a former owner changes nothing and stops it ------------------------------


def test_a_heartbeat_from_a_former_owner_changes_nothing(runtime: Runtime, client: Client) -> None:
    # Given a job whose lease ran out and that another worker claimed
    job_id = claimed_by_former(runtime, client)
    taken = take_over(runtime, job_id)
    # When the former owner's heartbeat writes its progress
    with runtime.db.session() as session:
        renewed = transitions.heartbeat(
            session, job_id, FORMER, LEASE, progress=0.5, bytes_done=1234
        )
    # Then it is told it no longer holds the job, and the row is untouched
    assert renewed is False
    assert snapshot(runtime, job_id) == taken


def test_a_lease_keeper_that_lost_its_job_says_so_and_writes_nothing(
    runtime: Runtime, client: Client
) -> None:
    # Given a former owner's lease keeper with progress to write
    job_id = claimed_by_former(runtime, client)
    taken = take_over(runtime, job_id)
    keeper = LeaseKeeper(runtime.db, job_id, FORMER, LEASE, interval=60)
    keeper.progress(Progress(bytes_done=1000, bytes_total=2000, speed=10.0, eta=100))
    # When it beats
    keeper.beat()
    # Then it flags the job as lost (what the download's hooks check) and wrote nothing
    assert keeper.lost.is_set()
    assert snapshot(runtime, job_id) == taken


def test_a_download_taken_over_midway_stops_and_writes_nothing_more(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a slow download (about a minute) that has written progress to the row
    job_id = waiting_job(runtime, client, media.url("/slow/long.mp4?bps=20000"))
    worker = Background(lambda: run_download(runtime, job_id))

    def reported() -> int | None:
        return snapshot(runtime, job_id)["bytes_done"]

    wait_for(reported, timeout=20, what="the download to report bytes")
    # When its lease runs out and another worker claims the job
    taken = take_over(runtime, job_id)
    started = time.monotonic()
    # Then the former worker stops within a few heartbeats, without an error
    assert worker.finished_within(10), "the former owner kept downloading after losing its job"
    assert worker.errors == []
    assert time.monotonic() - started < 10
    # and wrote nothing after the takeover: no progress, no lease renewal, no ending, no file
    assert snapshot(runtime, job_id) == taken
    assert artifacts_of(runtime, job_id) == []
    assert stored_files(settings, client, job_id) == []


# --- a claim at max_attempts is refused and the job ends attempts_exhausted --------------------


def _expired_running(runtime: Runtime, job_id: uuid.UUID) -> None:
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(
                status=Status.RUNNING.value,
                phase=Phase.DOWNLOADING.value,
                lease_owner="dead/1",
                lease_expires_at=sa.func.now() - timedelta(seconds=1),
            )
        )


def _retrying(runtime: Runtime, job_id: uuid.UUID) -> None:
    # through running, as a failed attempt gets there: the state machine has no queued -> retrying
    with runtime.db.session() as session:
        for status in (Status.RUNNING, Status.RETRYING):
            session.execute(sa.update(Job).where(Job.id == job_id).values(status=status.value))


@pytest.fixture(
    params=[
        pytest.param(None, id="queued"),
        pytest.param(_retrying, id="retrying"),
        pytest.param(_expired_running, id="running-lease-expired"),
    ]
)
def left_as(request: pytest.FixtureRequest) -> Callable[[Runtime, uuid.UUID], None] | None:
    """How the last attempt left the row: requeued, released for a retry, or dead."""
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("step", [Step.DOWNLOAD, Step.PROBE])
def test_a_job_out_of_attempts_is_not_run_again_but_fails(
    runtime: Runtime,
    client: Client,
    media: MediaServer,
    left_as: Callable[[Runtime, uuid.UUID], None] | None,
    step: Step,
) -> None:
    # Given a claimable job that has already been claimed max_attempts times
    path = f"/flaky/{uuid.uuid4().hex}/a.mp4"  # a path of its own: its hits are this test's
    job_id = waiting_job(runtime, client, media.url(path), step=step, attempts=3, max_attempts=3)
    if left_as is not None:
        left_as(runtime, job_id)
    # When its message is delivered once more
    (run_download if step is Step.DOWNLOAD else run_probe)(runtime, job_id)
    # Then no attempt ran: the origin was never asked, no attempt row, no artifact
    assert media.hits(path) == 0
    with runtime.db.session() as session:
        assert attempt_rows.for_job(session, job_id) == []
    assert artifacts_of(runtime, job_id) == []
    # and the job ended failed, saying it gave up, with its attempt count unchanged
    after = snapshot(runtime, job_id)
    assert after["status"] == "failed"
    assert after["error_class"] == "attempts_exhausted"
    assert "3 attempts" in after["error_message"]
    assert after["attempts"] == 3
    assert after["finished_at"] is not None
    assert (after["lease_owner"], after["lease_expires_at"], after["phase"]) == (None, None, None)


def test_the_last_attempt_is_still_claimed(runtime: Runtime, client: Client) -> None:
    # Given a job with one attempt left
    job_id = waiting_job(runtime, client, "http://127.0.0.1:9/x.mp4", attempts=2, max_attempts=3)
    # When a worker claims it
    with runtime.db.session() as session:
        claimed = transitions.claim(
            session, job_id, Step.DOWNLOAD, FORMER, LEASE, Phase.DOWNLOADING
        )
        exhausted = transitions.fail_exhausted(session, job_id)
    # Then the claim succeeds and counts the last attempt, and nothing gives up on it
    assert claimed is not None
    assert (claimed.attempts, claimed.lease_owner) == (3, FORMER)
    assert exhausted is None
