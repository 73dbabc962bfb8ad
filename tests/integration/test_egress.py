"""The egress policy and the download limits, attacked with real yt-dlp and real sockets.

Canary servers listen where a job must never reach (loopback addresses outside the
test allow-list, 127.0.0.1/32). Each attack must leave the canary with zero hits,
the job ``failed`` with the reason, and no file anywhere.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from structlog.contextvars import merge_contextvars

from service import egress
from service.db import artifacts as artifact_rows
from service.db import jobs as job_rows
from service.db.models import Job
from service.domain.options import normalize
from service.domain.states import Step
from service.errors import Permanent
from service.intake.clients import create_client, set_limits
from service.intake.jobs import submit
from service.runtime import build_runtime
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.jobs import attempts_of, leftovers, must
from tests.support.logs import captured
from tests.support.media_server import MediaServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from litestar import Litestar
    from litestar.testing import TestClient

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings


@pytest.fixture
def client(runtime: Runtime) -> Client:
    return create_client(runtime, "attacker")[0]


@pytest.fixture
def canary(media_dir: Path) -> Iterator[MediaServer]:
    """A server on 127.0.0.2: loopback, and not on the test allow-list."""
    with MediaServer(media_dir, host="127.0.0.2") as server:
        yield server


def _insert(runtime: Runtime, client: Client, url: str, step: Step = Step.PROBE) -> Job:
    """A job the API would have refused: the worker must refuse it on its own."""
    job = Job(
        client_id=client.id,
        url=url,
        options=normalize(None, None).model_dump(mode="json"),
        step=step.value,
        max_attempts=3,
    )
    with runtime.db.session() as session:
        job_rows.insert(session, job)
    return job


def _fails_with(
    runtime: Runtime, job: Job, reason: str | set[str], *, step: Step = Step.PROBE
) -> None:
    """The job fails as ``egress_denied`` without naming the address it was refused;
    the operator's log line names it (``reason``, or one of them)."""
    run = run_probe if step is Step.PROBE else run_download
    with captured(egress, processors=[merge_contextvars]) as logged, pytest.raises(Permanent):
        run(runtime, job.id)
    failed = must(runtime, job.id)
    assert (failed.status, failed.error_class) == ("failed", "egress_denied"), failed
    # What the tenant can read (the row, its attempts) says a non-public address, not which
    told = [
        failed.error_message,
        failed.last_error,
        *(a.error_message for a in attempts_of(runtime, job.id)),
    ]
    assert failed.error_message == "egress denied: a non-public address"
    assert not [text for text in told if text and IP.search(text)], told
    # and the operator's log keeps the address, on a line of this job
    reasons = {reason} if isinstance(reason, str) else reason
    denials = [e for e in logged if e["event"] == "egress denied"]
    assert denials, logged
    assert all(e["reason"] in reasons and e["job_id"] == str(job.id) for e in denials), denials


#: An IPv4 address, or a compressed IPv6 one (``::1``, ``::ffff:…``).
IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|::")


# --- the API refuses what it can see -------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.2", "2130706434", "0x7f.2", "0177.0.0.2", "127.2", "[::ffff:127.0.0.2]"],
)
def test_the_api_refuses_a_loopback_literal_in_any_spelling(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, host: str
) -> None:
    response = api.post("/v1/jobs", json={"url": f"http://{host}:8080/v.mp4"}, headers=auth)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "egress denied: 127.0.0.2 is loopback" in response.text
    with runtime.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Job)).scalar() == 0


def test_the_api_refuses_the_metadata_endpoint(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    url = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    response = api.post("/v1/jobs", json={"url": url}, headers=auth)

    assert response.status_code == 422
    assert "169.254.169.254 is link-local" in response.text


# --- the worker refuses at connect time ----------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.2", "2130706434", "0x7f.2", "[::ffff:127.0.0.2]"])
def test_the_worker_refuses_a_url_the_api_never_saw(
    runtime: Runtime, client: Client, canary: MediaServer, host: str
) -> None:
    # Given a job for the canary, inserted past the API (a row from an older version, say)
    job = _insert(runtime, client, f"http://{host}:{canary.port}/media/clip.mp4")
    # When the worker probes it, Then it fails naming the address, and the canary saw nothing
    _fails_with(runtime, job, "egress denied: 127.0.0.2 is loopback")
    assert canary.total_hits() == 0


def test_a_redirect_from_an_allowed_server_to_the_canary_is_refused(
    runtime: Runtime, client: Client, media: MediaServer, canary: MediaServer
) -> None:
    # Given an allowed server that redirects to the canary
    away = media.url(f"/away?to={canary.url('/media/clip.mp4')}")
    job = submit(runtime, client, url=away)
    # When the worker follows it, Then the redirect's connection is refused
    _fails_with(runtime, job, "egress denied: 127.0.0.2 is loopback")
    assert media.hits("/away") >= 1
    assert canary.total_hits() == 0


def test_hls_segments_on_the_canary_are_refused(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer, canary: MediaServer
) -> None:
    # Given an HLS playlist on an allowed server whose segments live on the canary
    job = submit(runtime, client, url=media.url(f"/hls.m3u8?base={canary.base_url}"))
    run_probe(runtime, job.id)
    assert must(runtime, job.id).step == Step.DOWNLOAD.value
    # When the download fetches the segments, Then the first one is refused
    _fails_with(runtime, job, "egress denied: 127.0.0.2 is loopback", step=Step.DOWNLOAD)
    assert canary.total_hits() == 0
    assert leftovers(settings.temp_dir) == []
    assert leftovers(settings.storage_dir) == []


def test_a_name_that_resolves_to_a_refused_address_is_refused(
    settings: Settings, media_dir: Path, media: MediaServer
) -> None:
    # Given an allow-list that admits only the media server's port on 127.0.0.1,
    # and a canary on another port of 127.0.0.1, reached by the name "localhost"
    strict = settings.model_copy(update={"egress_allow": f"127.0.0.1/32:{media.port}"})
    runtime = build_runtime(strict)
    try:
        owner = create_client(runtime, "attacker")[0]
        with MediaServer(media_dir, host="127.0.0.1") as canary:
            job = submit(runtime, owner, url=f"http://localhost:{canary.port}/media/a.mp4")
            # When the worker resolves and connects, Then the address it resolved is refused,
            # named in the operator's log and not to the tenant
            _fails_with(
                runtime,
                job,
                {"egress denied: 127.0.0.1 is loopback", "egress denied: ::1 is loopback"},
            )
            assert canary.total_hits() == 0
    finally:
        runtime.broker.close()
        runtime.db.dispose()


@pytest.fixture
def metadata_canary(media_dir: Path) -> Iterator[MediaServer]:
    """A server on 169.254.169.254, the cloud metadata address, where the test may add it."""
    added = subprocess.run(
        ["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"], capture_output=True, check=False
    )
    if added.returncode != 0 and b"File exists" not in added.stderr:
        pytest.skip(f"cannot add 169.254.169.254 to lo: {added.stderr.decode().strip()}")
    try:
        with MediaServer(media_dir, host="169.254.169.254") as server:
            yield server
    finally:
        if added.returncode == 0:
            subprocess.run(["ip", "addr", "del", "169.254.169.254/32", "dev", "lo"], check=False)


def test_the_metadata_endpoint_is_refused_at_connect_time(
    runtime: Runtime, client: Client, metadata_canary: MediaServer
) -> None:
    job = _insert(runtime, client, metadata_canary.url("/media/clip.mp4"))

    _fails_with(runtime, job, "egress denied: 169.254.169.254 is link-local")
    assert metadata_canary.total_hits() == 0


# --- limits ---------------------------------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings) -> Iterator[Runtime]:
    """Files up to 100 kB, media up to 2.5 s, 120 kB stored per client."""
    rt = build_runtime(
        settings.model_copy(
            update={
                "max_file_bytes": 100_000,
                "max_duration_s": 2.5,
                "client_storage_quota_bytes": 120_000,
            }
        )
    )
    yield rt
    rt.broker.close()
    rt.db.dispose()


def _download(runtime: Runtime, client: Client, url: str) -> Job:
    job = _insert(runtime, client, url, step=Step.DOWNLOAD)
    run_download(runtime, job.id)
    return must(runtime, job.id)


@pytest.mark.parametrize(
    "path",
    ["/endless.mp4", "/nolength/long.mp4", "/media/long.mp4"],
    ids=["endless-stream", "no-content-length", "content-length"],
)
def test_a_file_past_the_size_limit_stops_and_fails_cleanly(
    limited: Runtime, settings: Settings, media: MediaServer, path: str
) -> None:
    owner = create_client(limited, "big")[0]
    job = _insert(limited, owner, media.url(path), step=Step.DOWNLOAD)

    with pytest.raises(Permanent):
        run_download(limited, job.id)

    failed = must(limited, job.id)
    assert (failed.status, failed.error_class) == ("failed", "too_large")
    assert failed.error_message == "the file is larger than HAUL_MAX_FILE_BYTES (100000 bytes)"
    assert leftovers(settings.temp_dir) == []
    assert leftovers(settings.storage_dir) == []


def test_media_longer_than_the_duration_limit_fails_and_leaves_no_file(
    limited: Runtime, settings: Settings, media: MediaServer
) -> None:
    owner = create_client(limited, "long")[0]
    job = _insert(limited, owner, media.url("/media/clip.mp4"), step=Step.DOWNLOAD)  # 3 s

    with pytest.raises(Permanent):
        run_download(limited, job.id)

    failed = must(limited, job.id)
    assert failed.error_class == "too_long"
    assert "HAUL_MAX_DURATION_S" in (failed.error_message or "")
    assert leftovers(settings.storage_dir) == []


def test_a_client_past_its_storage_quota_is_refused_naming_the_quota(
    limited: Runtime, media: MediaServer
) -> None:
    owner = create_client(limited, "hoarder")[0]
    # Given a client whose first file (about 46 kB) fits
    assert _download(limited, owner, media.url("/media/a.mp4")).status == "succeeded"
    assert _download(limited, owner, media.url("/media/b.mp4")).status == "succeeded"
    # When a third would pass the 120 kB quota
    job = _insert(limited, owner, media.url("/media/c.mp4"), step=Step.DOWNLOAD)
    with pytest.raises(Permanent):
        run_download(limited, job.id)
    # Then it fails, naming the quota, and another client is not affected
    failed = must(limited, job.id)
    assert failed.error_class == "too_large"
    with limited.db.session() as session:
        room = 120_000 - artifact_rows.bytes_stored(session, owner.id)
    assert (
        failed.error_message == f"the file is larger than the client's storage quota ({room} bytes)"
    )
    other = create_client(limited, "modest")[0]
    assert _download(limited, other, media.url("/media/c.mp4")).status == "succeeded"


def test_a_clients_own_storage_quota_holds_in_the_worker_too(
    runtime: Runtime, media: MediaServer
) -> None:
    # Given a deployment without a storage quota, and a client given 10 kB of its own
    small = create_client(runtime, "small")[0]
    set_limits(runtime, str(small.id), storage_quota_bytes=10_000)
    # When it downloads a file of about 46 kB (submitted before its quota was set, say)
    job = _insert(runtime, small, media.url("/media/a.mp4"), step=Step.DOWNLOAD)
    with pytest.raises(Permanent):
        run_download(runtime, job.id)
    # Then the download fails naming the client's quota, and a client without one is not affected
    failed = must(runtime, job.id)
    assert failed.error_class == "too_large"
    assert "the client's storage quota (10000 bytes)" in (failed.error_message or "")
    other = create_client(runtime, "roomy")[0]
    assert _download(runtime, other, media.url("/media/a.mp4")).status == "succeeded"


def test_with_the_generic_extractor_off_a_plain_link_is_unsupported(
    settings: Settings, media: MediaServer
) -> None:
    rt = build_runtime(settings.model_copy(update={"generic_extractor": False}))
    try:
        owner = create_client(rt, "plain")[0]
        job = submit(rt, owner, url=media.url(f"/media/clip.mp4?{uuid.uuid4().hex}"))
        with pytest.raises(Permanent):
            run_probe(rt, job.id)
        assert must(rt, job.id).error_class == "unsupported_url"
    finally:
        rt.broker.close()
        rt.db.dispose()
