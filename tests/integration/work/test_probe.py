"""The probe use case (service/work/probe.py) called directly, with real yt-dlp against the local
media server, on a real database and RabbitMQ: what one probe delivery does to the row, its
children and the download queue.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from service.domain.states import Phase
from service.errors import JobFailure, Permanent
from service.intake.jobs import cancel, submit
from service.media.limits import Limits
from service.runtime import build_runtime
from service.work import probe as work_probe
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.jobs import artifacts_of, attempts_of, children_of, must
from tests.support.rabbitmq import queue_depth, take_messages

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


def test_a_feed_becomes_a_parent_that_succeeds_when_its_children_do(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a submitted RSS feed with three enclosures
    parent = submit(runtime, client, url=media.url("/feed.rss"))
    # When it is probed
    run_probe(runtime, parent.id)
    # Then it waits on three download children, each announced
    waiting = must(runtime, parent.id)
    assert waiting.status == "running"
    assert waiting.phase == Phase.AWAITING_CHILDREN.value
    assert waiting.lease_owner is None
    children = children_of(runtime, parent.id)
    assert len(children) == 3
    assert [c.url.rsplit("/", 1)[-1] for c in children] == ["a.mp4", "b.mp4", "c.mp4"]
    assert all(c.step == "download" and c.status == "queued" for c in children)
    assert all(c.client_id == client.id and c.published_at for c in children)
    announced = take_messages(f"{settings.queue_prefix}.download")
    assert sorted(m["args"][0] for m, _ in announced) == sorted(str(c.id) for c in children)

    # When each child is downloaded
    for child in children:
        assert must(runtime, parent.id).status == "running"
        run_download(runtime, child.id)
    # Then every child has its file and the parent succeeded, saying how many it queued
    assert all(must(runtime, c.id).status == "succeeded" for c in children)
    assert all(len(artifacts_of(runtime, c.id)) == 1 for c in children)
    done = must(runtime, parent.id)
    assert done.status == "succeeded"
    assert done.finished_at is not None
    assert done.info["playlist"]["entries_queued"] == 3
    assert done.info["playlist"]["capped"] is False


@pytest.fixture
def capped_runtime(settings: Settings) -> Iterator[Runtime]:
    """The same database and queues, with playlists capped at four entries."""
    rt = build_runtime(settings.model_copy(update={"playlist_max_entries": 4}))
    yield rt
    rt.broker.close()
    rt.db.dispose()


def test_a_feed_longer_than_the_cap_is_cut_and_says_so(
    capped_runtime: Runtime, client: Client, media: MediaServer, settings: Settings
) -> None:
    # Given playlists capped at four entries and a feed of ten
    parent = submit(capped_runtime, client, url=media.url("/feed-big.rss?n=10"))
    # When it is probed
    run_probe(capped_runtime, parent.id)
    # Then only four children exist, and the parent records that the feed was capped
    children = children_of(capped_runtime, parent.id)
    assert len(children) == 4
    assert len({c.url for c in children}) == 4
    info = must(capped_runtime, parent.id).info["playlist"]
    assert info["capped"] is True
    assert info["entries_queued"] == 4
    assert queue_depth(f"{settings.queue_prefix}.download") == 4


# --- failures -----------------------------------------------------------------------------------


def test_a_missing_file_fails_once_for_good_with_a_readable_reason(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job for a URL that answers 404
    job = submit(runtime, client, url=media.url("/missing.mp4"))
    # When the probe runs, it raises Permanent (Dramatiq then dead-letters it, no retry)
    with pytest.raises(Permanent):
        run_probe(runtime, job.id)
    # Then the job failed with a stable class and a message a person can read
    failed = must(runtime, job.id)
    assert failed.status == "failed"
    assert failed.error_class == "http_404"
    assert failed.error_message is not None
    assert "404" in failed.error_message
    assert "Traceback" not in failed.error_message
    assert "\x1b[" not in failed.error_message
    assert not failed.error_message.startswith("ERROR")
    assert failed.finished_at is not None
    assert failed.lease_owner is None
    assert failed.next_attempt_at is None
    # and it is not retried: no download is announced, and the attempt says failed
    assert queue_depth(f"{settings.queue_prefix}.download") == 0
    (attempt,) = attempts_of(runtime, job.id)
    assert (attempt.outcome, attempt.error_class) == ("failed", "http_404")


def test_a_transient_failure_raises_for_a_retry_and_the_row_says_retrying(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a job for a URL that answers 503
    job = submit(runtime, client, url=media.url("/status/503"))
    # When the probe runs
    # Then it raises, so Dramatiq's Retries middleware schedules another attempt
    with pytest.raises(JobFailure):
        run_probe(runtime, job.id)
    # and the row says it is waiting to retry, why, and that nobody holds it
    retrying = must(runtime, job.id)
    assert retrying.status == "retrying"
    assert retrying.last_error is not None
    assert "503" in retrying.last_error
    assert retrying.lease_owner is None
    assert retrying.lease_expires_at is None
    assert retrying.finished_at is None
    (attempt,) = attempts_of(runtime, job.id)
    assert attempt.outcome == "retry"


def test_a_retried_probe_succeeds_once_the_site_recovers(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a site that answers 503 once, then works
    key = uuid.uuid4().hex
    job = submit(runtime, client, url=media.url(f"/flaky/{key}/clip.mp4?fail=1"))
    with pytest.raises(JobFailure):
        run_probe(runtime, job.id)
    # When the retry is delivered
    run_probe(runtime, job.id)
    # Then the job moves on to its download, and the history shows both attempts
    ready = must(runtime, job.id)
    assert (ready.status, ready.step, ready.last_error) == ("queued", "download", None)
    assert [a.outcome for a in attempts_of(runtime, job.id)] == ["retry", "succeeded"]


def test_the_message_of_a_job_cancelled_while_queued_is_dropped(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job cancelled before any worker reached it
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    cancel(runtime, client, job.id)
    # When its probe message is delivered
    run_probe(runtime, job.id)
    # Then nothing runs: the job stays cancelled, untried, and no download is announced
    after = must(runtime, job.id)
    assert (after.status, after.attempts, after.started_at) == ("cancelled", 0, None)
    assert attempts_of(runtime, job.id) == []
    assert queue_depth(f"{settings.queue_prefix}.download") == 0


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            "/media/clip.mp4",
            id="single",
        ),
        pytest.param(
            "/feed.rss",
            id="playlist",
        ),
    ],
)
def test_a_job_cancelled_while_probing_stays_cancelled_and_its_attempt_is_closed(
    runtime: Runtime,
    settings: Settings,
    client: Client,
    media: MediaServer,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    # Given a job whose owner cancels it while yt-dlp is probing the URL
    job = submit(runtime, client, url=media.url(path))
    real_probe = work_probe.probe

    def probe_then_cancel(url: str, *, max_entries: int, limits: Limits, **more: Any) -> object:
        found = real_probe(url, max_entries=max_entries, limits=limits, **more)
        cancel(runtime, client, job.id)
        return found

    monkeypatch.setattr(work_probe, "probe", probe_then_cancel)
    # When the probe finishes
    run_probe(runtime, job.id)
    # Then the job stays cancelled with no children and no download announced
    after = must(runtime, job.id)
    assert after.status == "cancelled"
    assert children_of(runtime, job.id) == []
    assert queue_depth(f"{settings.queue_prefix}.download") == 0
    # and its attempt is closed as abandoned, like a download that lost its job
    (attempt,) = attempts_of(runtime, job.id)
    assert attempt.finished_at is not None
    assert attempt.outcome == "abandoned"
