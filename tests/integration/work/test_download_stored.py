"""The limits checked again on the file that is stored (service/work/download.py, limits.py).

Bytes are checked while they arrive against the file-size cap and the quota room read
when the attempt started; but concurrent attempts each saw the whole room, and
post-processing writes a new file. These tests prove the check at store time: under
the client's storage lock, on the final file.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from service.db import artifacts as artifact_rows
from service.db.models import Job
from service.domain.options import JobOptions, normalize
from service.domain.states import Step
from service.errors import Permanent
from service.intake.clients import create_client
from service.runtime import build_runtime
from service.work import storage
from service.work.download import run_download
from tests.support.jobs import insert, leftovers, must

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


def _runtime(settings: Settings, **update: object) -> Iterator[Runtime]:
    rt = build_runtime(settings.model_copy(update=update))
    yield rt
    rt.broker.close()
    rt.db.dispose()


@pytest.fixture
def three_files(settings: Settings, media_dir: Path) -> Iterator[Runtime]:
    """A deployment whose clients may store three copies of a.mp4, not four (a stored copy
    is a little larger than the source: yt-dlp writes its metadata into it)."""
    size = (media_dir / "a.mp4").stat().st_size
    yield from _runtime(settings, client_storage_quota_bytes=int(3.5 * size))


def test_ten_concurrent_downloads_store_at_most_the_three_the_quota_holds(
    three_files: Runtime, settings: Settings, media: MediaServer
) -> None:
    # Given a client with room for three files, and ten downloads of one such file each,
    # slow enough that every attempt reads the whole room before any file is stored
    owner = create_client(three_files, "greedy")[0]
    ids = insert(
        three_files,
        *(
            Job(
                client_id=owner.id,
                url=media.url(f"/slow/a.mp4?bps=60000&n={n}"),
                options=normalize(None, None).model_dump(mode="json"),
                step=Step.DOWNLOAD.value,
            )
            for n in range(10)
        ),
    )
    start = threading.Barrier(len(ids))
    refused: list[BaseException] = []

    def attempt(job_id: object) -> None:
        start.wait()
        try:
            run_download(three_files, job_id)  # type: ignore[arg-type]
        except Permanent as exc:
            refused.append(exc)

    # When all ten run at once, as ten worker threads would
    threads = [threading.Thread(target=attempt, args=(job_id,)) for job_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then three are stored, within the quota, and the other seven failed with nothing left
    jobs = [must(three_files, job_id) for job_id in ids]
    done = [j for j in jobs if j.status == "succeeded"]
    failed = [j for j in jobs if j.status == "failed"]
    assert len(done) == 3, [(j.status, j.error_message) for j in jobs]
    assert len(failed) == 7
    assert {j.error_class for j in failed} <= {"quota", "too_large"}
    assert any(j.error_class == "quota" for j in failed)  # caught at store, not only at start
    assert len(refused) == 7
    with three_files.db.session() as session:
        stored = artifact_rows.bytes_stored(session, owner.id)
    assert stored <= three_files.settings.client_storage_quota_bytes  # type: ignore[operator]
    for job in failed:
        assert leftovers(storage.job_dir(settings.storage_dir, owner.id, job.id)) == []
    assert leftovers(settings.temp_dir) == []


@pytest.fixture
def small_files(settings: Settings, media_dir: Path) -> Iterator[Runtime]:
    """A file-size cap between a.mp4 (about 46 kB) and its audio as FLAC (about 105 kB)."""
    size = (media_dir / "a.mp4").stat().st_size
    yield from _runtime(settings, max_file_bytes=size + 20_000)


def test_a_transcode_that_inflates_the_file_past_the_cap_fails_as_too_large(
    small_files: Runtime, settings: Settings, media: MediaServer
) -> None:
    # Given a download within the cap whose audio, transcoded to FLAC, is past it
    owner = create_client(small_files, "audiophile")[0]
    flac = normalize(None, JobOptions(audio_only=True, audio_codec="flac"))
    (job_id,) = insert(
        small_files,
        Job(
            client_id=owner.id,
            url=media.url("/media/a.mp4"),
            options=flac.model_dump(mode="json"),
            step=Step.DOWNLOAD.value,
        ),
    )
    # When it runs
    with pytest.raises(Permanent):
        run_download(small_files, job_id)
    # Then it fails with the size class, naming the cap, and leaves no file anywhere
    failed = must(small_files, job_id)
    assert (failed.status, failed.error_class) == ("failed", "too_large")
    assert "HAUL_MAX_FILE_BYTES" in (failed.error_message or "")
    assert "stored file" in (failed.error_message or "")
    assert leftovers(settings.storage_dir) == []
    assert leftovers(settings.temp_dir) == []
