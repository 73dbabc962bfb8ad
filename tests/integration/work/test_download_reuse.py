"""The download reuses what the probe extracted (service/media/download.py, ``probed``):
one extraction per single-item job, with the egress guard still on every request and a
fresh extraction when the kept info is stale or no longer works. Real yt-dlp, real
PostgreSQL and RabbitMQ, the local media server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.extractions import JobExtraction
from service.errors import Permanent
from service.intake.jobs import submit
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.jobs import artifacts_of, must
from tests.support.media_server import MediaServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import Any

    from service.db.models import Client
    from service.runtime import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def canary(media_dir: Path) -> Iterator[MediaServer]:
    """A server on 127.0.0.2: loopback, and not on the test allow-list."""
    with MediaServer(media_dir, host="127.0.0.2") as server:
        yield server


def kept_info(runtime: Runtime, job_id: Any) -> dict[str, Any] | None:
    with runtime.db.session() as session:
        found = session.execute(
            sa.select(JobExtraction.info).where(JobExtraction.job_id == job_id)
        ).scalar()
    return found if isinstance(found, dict) else None


def rewrite_info(runtime: Runtime, job_id: Any, change: Callable[[dict[str, Any]], None]) -> None:
    info = kept_info(runtime, job_id)
    assert info is not None
    change(info)
    with runtime.db.session() as session:
        session.execute(
            sa.update(JobExtraction).where(JobExtraction.job_id == job_id).values(info=info)
        )


def point_formats_at(url: str) -> Callable[[dict[str, Any]], None]:
    def change(info: dict[str, Any]) -> None:
        info["url"] = url
        for fmt in info.get("formats") or []:
            fmt["url"] = url

    return change


def test_a_page_is_extracted_once_per_job(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a page with a <video> tag, submitted and probed
    before = media.hits("/page.html")
    job = submit(runtime, client, url=media.url("/page.html"))
    run_probe(runtime, job.id)
    assert media.hits("/page.html") == before + 1
    # and the probe kept what it extracted for the download, without its cookies
    kept = kept_info(runtime, job.id)
    assert kept is not None and kept["title"] == "Test Page Title (1)"
    assert "cookies" not in kept
    # When it is downloaded
    run_download(runtime, job.id)
    # Then it succeeded without fetching the page again, and the kept info is used up
    assert must(runtime, job.id).status == "succeeded"
    assert media.hits("/page.html") == before + 1
    (artifact,) = artifacts_of(runtime, job.id)
    assert artifact.title == "Test Page Title (1)"
    assert kept_info(runtime, job.id) is None


def test_info_whose_format_url_no_longer_works_is_extracted_again(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a probed page whose kept format URL has since expired (it answers 404 now)
    job = submit(runtime, client, url=media.url("/page.html"))
    run_probe(runtime, job.id)
    rewrite_info(runtime, job.id, point_formats_at(media.url("/missing.mp4")))
    before = media.hits("/page.html")
    # When it is downloaded
    run_download(runtime, job.id)
    # Then the download extracted the page afresh and succeeded with its real video
    assert media.hits("/page.html") == before + 1
    assert must(runtime, job.id).status == "succeeded"
    (artifact,) = artifacts_of(runtime, job.id)
    assert artifact.duration == pytest.approx(3.0, abs=0.3)


def test_info_older_than_the_bound_is_not_reused(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a probed page whose kept info dates from long before the bound
    job = submit(runtime, client, url=media.url("/page.html"))
    run_probe(runtime, job.id)
    max_age = runtime.settings.probed_info_max_age_s
    rewrite_info(runtime, job.id, lambda info: info.update(epoch=info["epoch"] - max_age - 60))
    before = media.hits("/page.html")
    # When it is downloaded
    run_download(runtime, job.id)
    # Then it was extracted again, and succeeded
    assert media.hits("/page.html") == before + 1
    assert must(runtime, job.id).status == "succeeded"


def test_kept_info_is_still_held_to_the_egress_policy(
    runtime: Runtime, client: Client, media: MediaServer, canary: MediaServer
) -> None:
    # Given a probed page whose kept format URL points at an address the policy refuses
    job = submit(runtime, client, url=media.url("/page.html"))
    run_probe(runtime, job.id)
    rewrite_info(runtime, job.id, point_formats_at(canary.url("/media/clip.mp4")))
    # When it is downloaded
    with pytest.raises(Permanent):
        run_download(runtime, job.id)
    # Then the job failed as egress_denied, the canary was never reached, and nothing was
    # extracted again to get round the refusal
    failed = must(runtime, job.id)
    assert (failed.status, failed.error_class) == ("failed", "egress_denied"), failed
    assert canary.total_hits() == 0
    assert artifacts_of(runtime, job.id) == []
