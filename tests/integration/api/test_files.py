"""A job's file over HTTP (service/api/files.py): whole, by range, or a problem."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from litestar.testing import TestClient

from service.db.models import Artifact, Job
from service.work import storage
from tests.support.api import SOURCE, client_of, problem, submit
from tests.support.jobs import insert

if TYPE_CHECKING:
    from litestar import Litestar

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


# --- the file -----------------------------------------------------------------------------------

CONTENT = bytes(range(256)) * 4 + b"the end"


@pytest.fixture
def stored_file(auth: dict[str, str], runtime: Runtime, settings: Settings) -> uuid.UUID:
    """A succeeded job of the ``auth`` client whose file is in storage."""
    owner = client_of(runtime, auth)
    (job_id,) = insert(
        runtime, Job(client_id=owner.id, url=SOURCE, status="succeeded", step="download")
    )
    name = "Clip Title [abc123].mp4"
    folder = storage.job_dir(settings.storage_dir, owner.id, job_id)
    folder.mkdir(parents=True)
    (folder / name).write_bytes(CONTENT)
    with runtime.db.session() as session:
        session.add(
            Artifact(
                job_id=job_id,
                client_id=owner.id,
                path=f"{owner.id}/{job_id}/{name}",
                filename=name,
                size=len(CONTENT),
                sha256=storage.sha256_of(folder / name),
                mime="video/mp4",
                duration=3.0,
                title="Clip Title",
            )
        )
    return job_id


def test_the_file_downloads_whole_with_its_name_and_type(
    api: TestClient[Litestar], auth: dict[str, str], stored_file: uuid.UUID
) -> None:
    # When the owner fetches the file of a succeeded job
    response = api.get(f"/v1/jobs/{stored_file}/file", headers=auth)
    # Then it gets every byte, typed, named, and the job points at it
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("video/mp4")
    assert "Clip Title [abc123].mp4" in response.headers["content-disposition"]
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == CONTENT
    assert int(response.headers["content-length"]) == len(CONTENT)
    job = api.get(f"/v1/jobs/{stored_file}", headers=auth).json()
    assert job["file"]["url"] == f"/v1/jobs/{stored_file}/file"
    assert job["file"]["size"] == len(CONTENT)


def test_a_range_request_gets_the_first_ten_bytes(
    api: TestClient[Litestar], auth: dict[str, str], stored_file: uuid.UUID
) -> None:
    # When the owner asks for bytes 0-9
    response = api.get(f"/v1/jobs/{stored_file}/file", headers={**auth, "Range": "bytes=0-9"})
    # Then it gets exactly those, marked partial
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-9/{len(CONTENT)}"
    assert response.content == CONTENT[:10]
    assert response.headers["content-length"] == "10"


def test_a_suffix_range_gets_the_last_bytes(
    api: TestClient[Litestar], auth: dict[str, str], stored_file: uuid.UUID
) -> None:
    # When the owner asks for the last five bytes
    response = api.get(f"/v1/jobs/{stored_file}/file", headers={**auth, "Range": "bytes=-5"})
    # Then it gets the file's tail
    assert response.status_code == 206
    size = len(CONTENT)
    assert response.headers["content-range"] == f"bytes {size - 5}-{size - 1}/{size}"
    assert response.content == b"e end"


def test_a_range_past_the_end_is_a_416_problem_with_the_size(
    api: TestClient[Litestar], auth: dict[str, str], stored_file: uuid.UUID
) -> None:
    # When the owner asks for a range starting past the end
    response = api.get(f"/v1/jobs/{stored_file}/file", headers={**auth, "Range": "bytes=999999-"})
    # Then it is told the range is unsatisfiable, and how large the file is
    problem(response, 416)
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"


def test_a_job_without_a_file_has_no_file(api: TestClient[Litestar], auth: dict[str, str]) -> None:
    # Given a job that has not produced anything
    job = submit(api, auth)
    # When its owner asks for the file
    response = api.get(f"/v1/jobs/{job['id']}/file", headers=auth)
    # Then it is a 404 that says the job has no file
    assert "no file" in problem(response, 404)["detail"]
