"""A download step against a site that answers with more than one media item, a proxy
it was never told to use, a protocol only an external program speaks, or a manifest
that never ends.

Each test runs the worker's own use cases (``run_probe``, ``run_download``, what the
actors call) with real yt-dlp against the local media server, and counts what reached
the network: a download step fetches one item, directly, over HTTP(S), or nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest

from service.db import jobs as job_rows
from service.db.models import Job
from service.domain.options import normalize
from service.domain.states import Step
from service.errors import JobFailure, Permanent
from service.intake.clients import create_client
from service.intake.jobs import submit
from service.media.limits import MAX_PAGE_BYTES
from service.runtime import build_runtime
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.jobs import artifacts_of, children_of, leftovers, must
from tests.support.network import Listener

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


def feed_of(*paths: str) -> str:
    """The media-server path of a feed with one entry per path given."""
    return "/feed-of.rss?" + urlencode([("entry", p) for p in paths])


def gets(media: MediaServer, paths: list[str]) -> int:
    """GET requests the media server has seen for these paths, so far."""
    return sum(media.hits(p, "GET") for p in paths)


# --- one item per download step -------------------------------------------------------------------

#: The enclosures of the two nested feeds: three in the first, two in the second.
FIRST = ["/media/a.mp4", "/media/b.mp4", "/media/c.mp4"]
SECOND = ["/media/clip.mp4", "/media/clip.webm"]


def test_an_entry_that_is_itself_a_feed_downloads_none_of_its_enclosures(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a feed whose two entries are feeds themselves (3 and 2 enclosures)
    before = gets(media, FIRST + SECOND)
    parent = submit(runtime, client, url=media.url(feed_of(feed_of(*FIRST), feed_of(*SECOND))))
    run_probe(runtime, parent.id)
    children = children_of(runtime, parent.id)
    assert len(children) == 2
    assert all(c.step == Step.DOWNLOAD.value for c in children)
    # When each entry's download step runs
    for child in children:
        with pytest.raises(Permanent):
            run_download(runtime, child.id)
    # Then no enclosure of a nested feed was fetched, and each entry failed saying why
    fetched = gets(media, FIRST + SECOND) - before
    print(f"enclosure GETs by the two nested entries: {fetched}")
    assert fetched == 0
    for child in children:
        failed = must(runtime, child.id)
        assert (failed.status, failed.error_class) == ("failed", "nested_playlist"), failed
        assert failed.error_message is not None
        assert "playlist" in failed.error_message
        assert artifacts_of(runtime, child.id) == []
    # and the playlist failed because its entries did, leaving no file anywhere
    assert must(runtime, parent.id).status == "failed"
    assert leftovers(settings.temp_dir) == []
    assert leftovers(settings.storage_dir) == []


def test_a_url_that_probes_as_one_file_and_downloads_as_a_feed_fetches_nothing_of_it(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a job queued for download (its probe saw one item) whose URL now serves a feed
    before = gets(media, FIRST)
    job = Job(
        client_id=client.id,
        url=media.url(feed_of(*FIRST)),
        options=normalize(None, None).model_dump(mode="json"),
        step=Step.DOWNLOAD.value,
        max_attempts=3,
    )
    with runtime.db.session() as session:
        job_rows.insert(session, job)
    # When the download step runs, Then it fails as a playlist and fetched no enclosure
    with pytest.raises(Permanent):
        run_download(runtime, job.id)
    assert must(runtime, job.id).error_class == "nested_playlist"
    assert gets(media, FIRST) - before == 0


# --- no proxy from the environment ----------------------------------------------------------------

PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]


@pytest.fixture
def proxy() -> Iterator[Listener]:
    """A "proxy" that records every connection (and serves none)."""
    with Listener() as listener:
        yield listener


def test_proxy_variables_in_the_environment_are_ignored(
    runtime: Runtime,
    client: Client,
    media: MediaServer,
    proxy: Listener,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given every proxy variable, in both cases, pointing at a recording proxy
    for name in PROXY_VARIABLES:
        for spelled in (name, name.lower()):
            monkeypatch.setenv(spelled, f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # When a plain-http job is probed and downloaded
    job = submit(runtime, client, url=media.url("/media/a.mp4"))
    run_probe(runtime, job.id)
    run_download(runtime, job.id)
    # Then it went to the site directly: the job succeeded and the proxy saw nobody
    assert must(runtime, job.id).status == "succeeded"
    assert proxy.connections == []


def test_the_operators_proxy_is_used_when_set(
    settings: Settings, media: MediaServer, proxy: Listener
) -> None:
    # Given HAUL_PROXY naming the (recording) proxy
    runtime = build_runtime(settings.model_copy(update={"proxy": f"http://127.0.0.1:{proxy.port}"}))
    try:
        owner = create_client(runtime, "behind a proxy")[0]
        job = submit(runtime, owner, url=media.url("/media/a.mp4"))
        # When the job is probed, Then yt-dlp dialled the proxy (which hung up on it)
        with pytest.raises(JobFailure):
            run_probe(runtime, job.id)
        assert proxy.connections
    finally:
        runtime.broker.close()
        runtime.db.dispose()


# --- native protocols only ------------------------------------------------------------------------


@pytest.fixture
def stream_server() -> Iterator[Listener]:
    """Where the page's only stream lives; nothing may connect to it."""
    with Listener() as listener:
        yield listener


@pytest.mark.parametrize(
    ("scheme", "protocol"), [("rtmp", "rtmp"), ("rtmpe", "rtmp"), ("rtsp", "rtsp"), ("mms", "mms")]
)
def test_media_offered_only_over_a_non_native_protocol_is_refused(
    runtime: Runtime,
    client: Client,
    media: MediaServer,
    stream_server: Listener,
    scheme: str,
    protocol: str,
) -> None:
    # Given a page whose only video is an RTMP (RTSP, MMS) stream
    stream = f"{scheme}://127.0.0.1:{stream_server.port}/live/stream"
    page = media.url("/page.html?" + urlencode({"src": stream}))
    # When it is probed, Then it fails as an unsupported protocol, before any download
    job = submit(runtime, client, url=page)
    with pytest.raises(Permanent):
        run_probe(runtime, job.id)
    failed = must(runtime, job.id)
    assert (failed.status, failed.error_class) == ("failed", "unsupported_protocol"), failed
    assert failed.error_message is not None
    assert f"only over {protocol}," in failed.error_message
    # And a download step that meets it (the probe saw something else) refuses it too
    queued = Job(
        client_id=client.id,
        url=page,
        options=normalize(None, None).model_dump(mode="json"),
        step=Step.DOWNLOAD.value,
        max_attempts=3,
    )
    with runtime.db.session() as session:
        job_rows.insert(session, queued)
    with pytest.raises(Permanent):
        run_download(runtime, queued.id)
    assert must(runtime, queued.id).error_class == "unsupported_protocol"
    # and no program ever connected to the stream
    assert stream_server.connections == []


# --- bounded pages and manifests ------------------------------------------------------------------

#: Smaller than every media file the server has (and larger than its pages and playlists).
TINY_CAP = 2048


@pytest.fixture
def tight(settings: Settings) -> Iterator[Runtime]:
    """A runtime whose ``HAUL_MAX_PAGE_BYTES`` is ``TINY_CAP``."""
    runtime = build_runtime(settings.model_copy(update={"max_page_bytes": TINY_CAP}))
    yield runtime
    runtime.broker.close()
    runtime.db.dispose()


@pytest.mark.parametrize(
    "path",
    [
        "/media/clip.mp4",  # a direct link: the HTTP downloader streams it
        "/page.html",  # a page, read whole, whose video is then streamed
        "/hls-aes/index.m3u8",  # a manifest, a key, and fragments streamed one by one
    ],
)
def test_media_is_not_counted_against_the_page_cap(
    tight: Runtime, settings: Settings, media: MediaServer, path: str
) -> None:
    # Given pages and playlists under a 2 KiB cap, and media files far larger
    owner = create_client(tight, "tight")[0]
    job = submit(tight, owner, url=media.url(path))
    # When the job is probed and downloaded
    run_probe(tight, job.id)
    run_download(tight, job.id)
    # Then it succeeded, its file many times the cap
    assert must(tight, job.id).status == "succeeded"
    (artifact,) = artifacts_of(tight, job.id)
    assert artifact.size > 10 * TINY_CAP


def test_an_endless_variant_playlist_fails_as_page_too_large(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a master playlist whose one variant never ends
    job = submit(runtime, client, url=media.url("/endless-master.m3u8"))
    # When the job is probed (yt-dlp reads the variant there already)
    with pytest.raises(Permanent):
        run_probe(runtime, job.id)
    # Then it failed as page_too_large, having read about the cap of it, and left nothing
    failed = must(runtime, job.id)
    assert (failed.status, failed.error_class) == ("failed", "page_too_large"), failed
    assert media.sent("/endless.m3u8") < MAX_PAGE_BYTES + 64 * 1024**2
    assert leftovers(settings.temp_dir) == []
