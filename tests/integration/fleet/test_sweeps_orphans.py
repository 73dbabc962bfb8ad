"""The orphan sweep: files no artifact names, and work dirs of jobs not running, go once old.

"Old" is past the lease plus ``HAUL_ORPHAN_GRACE_S``, by the later of a file's mtime
and ctime; the sweep takes its clock as an argument, so a test moves it forward
instead of waiting (a file's ctime cannot be set back).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from service.db.models import Artifact, Job
from service.fleet import sweeps
from service.intake.clients import create_client
from service.work import storage

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

URL = "https://media.example/clip.mp4"


@pytest.fixture
def client(runtime: Runtime) -> Client:
    client, _ = create_client(runtime, "orphans")
    return client


def later(rt: Runtime) -> float:
    """A sweep clock just past the margin for anything written now."""
    return time.time() + rt.settings.lease_s + rt.settings.orphan_grace_s + 5


def job(rt: Runtime, client: Client, status: str) -> Job:
    row = Job(client_id=client.id, url=URL, status=status)
    with rt.db.session() as session:
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


def stored_file(rt: Runtime, client_id: uuid.UUID, job_id: uuid.UUID, name: str) -> Path:
    folder = storage.job_dir(rt.settings.storage_dir, client_id, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"media")
    return path


def with_artifact(rt: Runtime, row: Job, name: str) -> Path:
    path = stored_file(rt, row.client_id, row.id, name)
    with rt.db.session() as session:
        session.add(
            Artifact(
                job_id=row.id,
                client_id=row.client_id,
                path=str(path.relative_to(rt.settings.storage_dir)),
                filename=name,
                size=5,
                sha256=storage.sha256_of(path),
                mime="video/mp4",
            )
        )
    return path


def touched_at(path: Path, when: float) -> Path:
    os.utime(path, (when, when))
    return path


def test_files_no_artifact_names_go_once_older_than_the_margin(
    runtime: Runtime, client: Client
) -> None:
    # Given a succeeded job's file, a second file beside it from a killed attempt,
    # and the dir of a job whose row is gone
    done = job(runtime, client, "succeeded")
    kept = with_artifact(runtime, done, "clip.mp4")
    beside = stored_file(runtime, client.id, done.id, "clip [other].mp4")
    hidden = stored_file(runtime, client.id, done.id, ".clip.mp4.incoming")
    gone_job = uuid.uuid4()
    gone = stored_file(runtime, client.id, gone_job, "gone.mp4")
    # When the sweep runs now, Then nothing is young enough to trust as an orphan
    assert sweeps.orphan_files(runtime) == 0
    assert all(p.exists() for p in (kept, beside, hidden, gone))
    # When it runs after the margin, with one orphan changed just now (by the sweep's clock)
    clock = later(runtime)
    fresh = touched_at(stored_file(runtime, client.id, uuid.uuid4(), "fresh.mp4"), clock)
    removed = sweeps.orphan_files(runtime, now=clock)
    # Then the old orphans are gone, with the dir of the job that is gone; the rest stays
    assert removed == 3
    assert not beside.exists() and not hidden.exists() and not gone.exists()
    assert not storage.job_dir(runtime.settings.storage_dir, client.id, gone_job).exists()
    assert kept.read_bytes() == b"media"
    assert fresh.exists()


@pytest.mark.parametrize("status", ["running", "queued", "retrying"])
def test_files_of_an_active_job_stay_however_old(
    runtime: Runtime, client: Client, status: str
) -> None:
    # Given a job that may be moving its file into storage (running) or may run again,
    # with a file of an old date (yt-dlp stamps files with the site's Last-Modified)
    active = job(runtime, client, status)
    path = touched_at(stored_file(runtime, client.id, active.id, "clip.mp4"), 0)
    # When the sweep runs after the margin
    assert sweeps.orphan_files(runtime, now=later(runtime)) == 0
    # Then the file stays
    assert path.exists()


def test_work_dirs_of_jobs_not_running_go_once_older_than_the_margin(
    runtime: Runtime, client: Client
) -> None:
    # Given work dirs left by killed attempts: of a failed job, of a job whose row is gone,
    # of a running job (its attempt may be the one using it), and a dir that is not haul's
    failed, running = job(runtime, client, "failed"), job(runtime, client, "running")
    runtime.settings.temp_dir.mkdir(parents=True)
    dirs = {}
    for name, job_id in [("failed", failed.id), ("gone", uuid.uuid4()), ("running", running.id)]:
        # as storage.workdir names them; a killed worker never removed them
        dirs[name] = Path(tempfile.mkdtemp(prefix=f"{job_id}-", dir=runtime.settings.temp_dir))
        (dirs[name] / "clip.mp4.part").write_bytes(b"partial")
    foreign = runtime.settings.temp_dir / "not-a-job"
    foreign.mkdir()
    # When the sweep runs now, Then nothing is old enough
    assert sweeps.orphan_workdirs(runtime) == 0
    # When it runs after the margin
    removed = sweeps.orphan_workdirs(runtime, now=later(runtime))
    # Then the dirs of jobs not running are gone; the running job's and the foreign one stay
    assert removed == 2
    assert not dirs["failed"].exists() and not dirs["gone"].exists()
    assert (dirs["running"] / "clip.mp4.part").exists()
    assert foreign.exists()


def test_a_big_storage_dir_is_swept_in_bounded_batches(
    runtime: Runtime, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given more orphaned job dirs than one run looks at
    monkeypatch.setattr(sweeps, "BATCH", 2)
    orphans = [stored_file(runtime, client.id, uuid.uuid4(), "x.mp4") for _ in range(5)]
    clock = later(runtime)
    # When the sweep runs, each run removes at most a batch, and runs together remove them all
    counts = []
    for _ in range(200):
        counts.append(sweeps.orphan_files(runtime, now=clock))
        if not any(p.exists() for p in orphans):
            break
    assert max(counts) <= 2
    assert sum(counts) == 5
    assert not any(p.exists() for p in orphans)


def test_every_sweep_run_reports_the_orphans_it_removed(runtime: Runtime, client: Client) -> None:
    # Given an orphan file that is old by its mtime only (its ctime is now)
    touched_at(stored_file(runtime, client.id, uuid.uuid4(), "x.mp4"), 0)
    # When every sweep runs now
    report = sweeps.run_all(runtime)
    # Then the young orphan is kept, and the report has the field the metrics count by name
    assert (report.orphan_files, report.orphan_workdirs) == (0, 0)
