"""Cookies lent to an attempt (service/work/cookies.py), with real yt-dlp against the media
server's sign-in wall (``/members/…``: 403 without the member cookie, the file with it,
and a rotated session cookie set on the way), on a real database."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from service.db import cookies as cookie_rows
from service.domain.options import JobOptions
from service.domain.sealing import Sealer
from service.errors import Permanent
from service.intake import cookies as intake_cookies
from service.intake.clients import create_client
from service.intake.jobs import submit
from service.runtime import Runtime
from service.work import cookies, storage
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.cookies import line, member_file, netscape, places_holding
from tests.support.jobs import artifacts_of, must
from tests.support.media_server import MEMBER_COOKIE, ROTATED_COOKIE

if TYPE_CHECKING:
    from service.db.models import Client
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration

SECRET = "a-test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with a HAUL_SECRET_KEY, which storing cookies needs."""
    return settings.model_copy(update={"secret_key": SecretStr(SECRET)})


def stored_text(runtime: Runtime, client: Client, site: str = "127.0.0.1") -> str:
    with runtime.db.session() as session:
        held = cookie_rows.held(session, client.id, site)
    assert held is not None
    return Sealer([SECRET]).open(held.sealed)


def test_the_wall_refuses_a_guest_and_lets_the_member_through(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    url = media.url("/members/clip.mp4")
    # Given no cookies: the probe meets the wall and the job fails for it
    guest = submit(runtime, client, url=url)
    with pytest.raises(Permanent):
        run_probe(runtime, guest.id)
    failed = must(runtime, guest.id)
    assert (failed.status, failed.error_class) == ("failed", "http_403"), failed

    # When the client keeps the member cookie for the site
    intake_cookies.put(runtime, client, "127.0.0.1", member_file())
    member = submit(runtime, client, url=url)
    run_probe(runtime, member.id)
    run_download(runtime, member.id)

    # Then the same URL downloads, and no attempt left its cookie file behind
    done = must(runtime, member.id)
    assert done.status == "succeeded", (done.error_class, done.error_message)
    assert artifacts_of(runtime, member.id)
    assert not list(settings.temp_dir.rglob(cookies.FILENAME))
    # And the value is nowhere in the database: not in a row, an info, an event, an attempt
    # (the search itself finds what is there: the URL)
    assert "jobs.url" in places_holding(settings.database_url, "/members/clip.mp4")
    assert places_holding(settings.database_url, MEMBER_COOKIE[1]) == []
    assert places_holding(settings.database_url, ROTATED_COOKIE[1]) == []


def test_cookies_the_site_rotated_are_written_back_sealed(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given the member cookie kept, and a job past the probe (which saw the rotation once)
    intake_cookies.put(runtime, client, "127.0.0.1", member_file())
    job = submit(runtime, client, url=media.url("/members/a.mp4"))
    run_probe(runtime, job.id)

    # When the download runs (the site sets a new session cookie again)
    run_download(runtime, job.id)

    # Then the stored cookies hold the site's new cookie beside the member cookie
    (listed,) = intake_cookies.listed(runtime, client)
    assert listed.count == 2
    text = stored_text(runtime, client)
    assert ROTATED_COOKIE[1] in text
    assert MEMBER_COOKIE[1] in text


def test_a_job_that_says_no_cookies_goes_as_a_guest(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given the member cookie kept for the site
    intake_cookies.put(runtime, client, "127.0.0.1", member_file())
    # When a job says "cookies": false
    job = submit(
        runtime, client, url=media.url("/members/clip.mp4"), options=JobOptions(cookies=False)
    )
    # Then it meets the wall as a guest would
    with pytest.raises(Permanent):
        run_probe(runtime, job.id)
    assert must(runtime, job.id).error_class == "http_403"


def test_cookies_of_another_client_or_site_are_not_lent(
    runtime: Runtime, client: Client, media: MediaServer, settings: Settings
) -> None:
    # Given the member cookie kept by another client, and by this one for another site
    other, _ = create_client(runtime, "other")
    intake_cookies.put(runtime, other, "127.0.0.1", member_file())
    intake_cookies.put(
        runtime, client, "example.com", netscape(line(".example.com", *MEMBER_COOKIE))
    )
    job = submit(runtime, client, url=media.url("/members/clip.mp4"))
    # When its attempt borrows cookies, then there are none to lend
    with (
        storage.workdir(settings.temp_dir, job.id) as workdir,
        cookies.lent(runtime, job, workdir) as path,
    ):
        assert path is None


def test_the_lent_file_is_private_to_the_worker_and_gone_afterwards(
    runtime: Runtime, client: Client, media: MediaServer, settings: Settings
) -> None:
    # Given the member cookie kept, and a job of that site
    intake_cookies.put(runtime, client, "127.0.0.1", member_file())
    job = submit(runtime, client, url=media.url("/members/clip.mp4"))
    with storage.workdir(settings.temp_dir, job.id) as workdir:
        # When an attempt borrows them
        with cookies.lent(runtime, job, workdir) as path:
            # Then they are in a file only the worker's user may read, in the attempt's dir
            assert path is not None and path.parent == workdir
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert MEMBER_COOKIE[1] in path.read_text()
        # And the file is deleted when the attempt ends
        assert not path.exists()


def test_an_upload_during_the_attempt_wins_over_the_write_back(
    runtime: Runtime, client: Client, media: MediaServer, settings: Settings
) -> None:
    # Given an attempt that borrowed the member cookie
    intake_cookies.put(runtime, client, "127.0.0.1", member_file())
    job = submit(runtime, client, url=media.url("/members/clip.mp4"))
    with (
        storage.workdir(settings.temp_dir, job.id) as workdir,
        cookies.lent(runtime, job, workdir) as path,
    ):
        assert path is not None
        # When the site rotates a cookie in the file, while the client uploads new ones
        with path.open("a") as f:
            f.write(line("127.0.0.1", "late", "rotated-late") + "\n")
        fresh = netscape(line("127.0.0.1", "fresh", "fresh-upload"))
        intake_cookies.put(runtime, client, "127.0.0.1", fresh)
    # Then the client's upload is what is kept
    text = stored_text(runtime, client)
    assert "fresh-upload" in text
    assert "rotated-late" not in text


def test_a_worker_with_another_key_goes_without_cookies(
    runtime: Runtime, client: Client, media: MediaServer, settings: Settings
) -> None:
    # Given cookies sealed under this deployment's key
    intake_cookies.put(runtime, client, "127.0.0.1", member_file())
    job = submit(runtime, client, url=media.url("/members/clip.mp4"))
    # When a worker with another key borrows them, then it lends none (and does not fail)
    other_key = settings.model_copy(update={"secret_key": SecretStr("x" * 40)})
    worker = Runtime(other_key, runtime.db, runtime.broker)
    with (
        storage.workdir(settings.temp_dir, job.id) as workdir,
        cookies.lent(worker, job, workdir) as path,
    ):
        assert path is None
