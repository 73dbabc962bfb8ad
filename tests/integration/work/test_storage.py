"""The SHA-256 on an artifact is the stored file's, whichever way it was read.

A file that yt-dlp wrote once and nothing rewrote is hashed while it downloads
(``storage.StreamHash``); one that post-processing rewrote, or that yt-dlp
fetched again after an error, is hashed from the final file.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Artifact
from service.domain.options import JobOptions
from service.intake.clients import create_client
from service.intake.jobs import submit
from service.work import storage
from service.work.download import run_download
from service.work.probe import run_probe

if TYPE_CHECKING:
    from pathlib import Path

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

UNTOUCHED = JobOptions(embed_metadata=False, embed_thumbnail=False)


@pytest.fixture
def client(runtime: Runtime) -> Client:
    client, _ = create_client(runtime, "stream-hash")
    return client


@pytest.fixture
def full_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file hashed by reading it again after the download."""
    reads: list[Path] = []
    real = storage.sha256_of

    def counted(path: Path) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(storage, "sha256_of", counted)
    return reads


def downloaded(runtime: Runtime, client: Client, url: str, options: JobOptions | None) -> Artifact:
    job = submit(runtime, client, url=url, options=options)
    run_probe(runtime, job.id)
    run_download(runtime, job.id)
    with runtime.db.session() as session:
        (artifact,) = session.execute(
            sa.select(Artifact).where(Artifact.job_id == job.id)  # type: ignore[arg-type]
        ).scalars()
        session.expunge(artifact)
    return artifact


def test_a_file_nothing_rewrote_is_hashed_as_it_downloads(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer, full_reads: list[Path]
) -> None:
    # Given a job whose file needs no post-processing (an mp4, no metadata or thumbnail)
    # When it is downloaded and stored
    artifact = downloaded(runtime, client, media.url("/media/clip.mp4"), UNTOUCHED)
    # Then the artifact carries the stored file's hash, and the file was never read again
    stored = storage.resolve(settings.storage_dir, artifact.path)
    assert full_reads == []
    assert artifact.sha256 == storage.sha256_of(stored)
    assert artifact.size == stored.stat().st_size


def test_a_file_post_processing_rewrote_is_hashed_after_it(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer, full_reads: list[Path]
) -> None:
    # Given a job whose file ffmpeg rewrites (metadata and thumbnail embedded)
    # When it is downloaded and stored
    artifact = downloaded(runtime, client, media.url("/media/clip.mp4"), None)
    # Then the hash was taken from the final file, once, and matches it
    stored = storage.resolve(settings.storage_dir, artifact.path)
    assert len(full_reads) == 1
    assert artifact.sha256 == storage.sha256_of(stored)


def test_a_file_ytdlp_fetched_again_is_hashed_after_it(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer, full_reads: list[Path]
) -> None:
    # Given a site whose file answers 503 once, after the probe's request (the download reuses
    # the probe's extraction), so that yt-dlp retries the download within the attempt
    key = uuid.uuid4().hex
    url = media.url(f"/flaky/{key}/clip.mp4?fail=1&after=1")
    # When it is downloaded and stored
    artifact = downloaded(runtime, client, url, UNTOUCHED)
    # Then yt-dlp did retry, the streamed bytes were not trusted, and the hash matches the file
    assert media.hits(f"/flaky/{key}/clip.mp4", "GET") == 3
    stored = storage.resolve(settings.storage_dir, artifact.path)
    assert len(full_reads) == 1
    assert artifact.sha256 == storage.sha256_of(stored)
