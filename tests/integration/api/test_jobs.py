"""The ``/v1/jobs`` API in-process (Litestar's TestClient) on a real database and RabbitMQ.

No worker runs here: these tests check what a client of the API sees, and that a
submitted job really reached the broker (or, when it could not, that the row says so).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from service.api.app import create_app
from service.db import clients as client_rows
from service.db import control as control_rows
from service.db.models import Artifact, Job
from service.dispatch import queue_names
from service.domain.states import Step
from service.intake.clients import create_client
from service.runtime import build_runtime
from service.work import storage
from tests.conftest import free_port
from tests.integration.conftest import client_of, queue_depth, take_messages
from tests.support.prom import samples
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    from litestar import Litestar

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

#: Never fetched: no worker runs in these tests.
SOURCE = "https://media.example/watch/clip.mp4"
PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return dict(body)


def submit(api: TestClient[Litestar], auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = api.post("/v1/jobs", json={"url": SOURCE, **body}, headers=auth)
    assert response.status_code == 202, response.text
    return dict(response.json())


def insert(runtime: Runtime, *jobs: Job) -> list[uuid.UUID]:
    """Store rows directly, all in one transaction (so they share ``created_at``)."""
    with runtime.db.session() as session:
        session.add_all(jobs)
        session.flush()
        return [job.id for job in jobs]


def row(runtime: Runtime, job_id: uuid.UUID | str) -> Job | None:
    with runtime.db.session() as session:
        return session.get(Job, uuid.UUID(str(job_id)))


# --- submit -------------------------------------------------------------------------------------


def test_submit_answers_202_stores_the_job_and_publishes_it(
    api: TestClient[Litestar], auth: dict[str, str], settings: Settings
) -> None:
    # Given a client with a key
    # When it submits a URL
    response = api.post(
        "/v1/jobs",
        json={"url": SOURCE, "preset": "mp3", "priority": 3, "metadata": {"ref": "a-1"}},
        headers=auth,
    )
    # Then the job is accepted, queued, announced, and where the Location says
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/jobs/{body['id']}"
    assert body["status"] == "queued"
    assert body["step"] == "probe"
    assert body["url"] == SOURCE
    assert body["options"]["preset"] == "mp3"
    assert body["options"]["audio_codec"] == "mp3"
    assert body["priority"] == 3
    assert body["metadata"] == {"ref": "a-1"}
    assert body["published_at"] is not None
    assert body["last_error"] is None
    assert api.get(response.headers["location"], headers=auth).json()["id"] == body["id"]
    # and the one message in RabbitMQ names the probe actor, this job and its priority only
    queue = f"{settings.queue_prefix}.probe"
    assert queue_depth(queue) == 1
    ((message, priority),) = take_messages(queue)
    assert message["actor_name"] == "probe"
    assert message["args"] == [body["id"]]
    assert message["kwargs"] == {}
    assert priority == 3


@pytest.fixture
def api_without_broker(settings: Settings) -> Iterator[TestClient[Litestar]]:
    """The API with RabbitMQ unreachable (nothing listens on the port); same database."""
    broken = settings.model_copy(
        update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"}
    )
    rt = build_runtime(broken)
    with TestClient(create_app(broken, rt)) as client:
        yield client
    rt.broker.close()
    rt.db.dispose()


def test_submit_with_the_broker_down_keeps_the_job_and_says_why(
    api_without_broker: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given an API whose broker is unreachable
    api = api_without_broker
    # When a client submits a URL
    began = time.monotonic()
    response = api.post("/v1/jobs", json={"url": SOURCE}, headers=auth)
    took = time.monotonic() - began
    # Then the job is still accepted at once and stored as queued, unpublished, with the reason
    assert response.status_code == 202, response.text
    assert took < 5, f"a refused broker connection held the request for {took:.1f} s"
    body = response.json()
    assert body["status"] == "queued"
    assert body["published_at"] is None
    assert body["last_error"].startswith("publish failed")
    stored = row(runtime, body["id"])
    assert stored is not None
    assert stored.status == "queued"
    assert stored.published_at is None
    assert stored.last_error is not None
    assert stored.last_error.startswith("publish failed")


# --- read and list ------------------------------------------------------------------------------


def test_get_returns_the_job_as_submitted(api: TestClient[Litestar], auth: dict[str, str]) -> None:
    # Given a submitted job
    created = submit(api, auth, metadata={"k": [1, 2]})
    # When its owner reads it
    response = api.get(f"/v1/jobs/{created['id']}", headers=auth)
    # Then it is the same job, not yet started
    assert response.status_code == 200
    job = response.json()
    assert job["id"] == created["id"]
    assert job["status"] == "queued"
    assert job["metadata"] == {"k": [1, 2]}
    assert job["file"] is None
    assert job["error"] is None
    assert job["attempts"] == 0
    assert job["started_at"] is None
    attempts = api.get(f"/v1/jobs/{created['id']}/attempts", headers=auth)
    assert attempts.status_code == 200
    assert attempts.json() == {"items": []}


def test_list_is_newest_first_and_pages_cover_every_job_once(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # Given seven jobs submitted one after the other
    submitted = [submit(api, auth)["id"] for _ in range(7)]
    # When the client walks the list three at a time
    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/jobs", params=params, headers=auth)
        assert page.status_code == 200, page.text
        items = [item["id"] for item in page.json()["items"]]
        seen += items
        sizes.append(len(items))
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    # Then it sees every job exactly once, newest first, and the last page says so
    assert sizes == [3, 3, 1]
    assert seen == list(reversed(submitted))


def test_pages_do_not_skip_or_repeat_jobs_created_in_the_same_instant(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given seven jobs inserted in one transaction (they share created_at)
    owner = client_of(runtime, auth)
    ids = insert(runtime, *(Job(client_id=owner.id, url=f"{SOURCE}?n={n}") for n in range(7)))
    # When the client walks the list two at a time
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/jobs", params=params, headers=auth).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then each job appears exactly once
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == {str(i) for i in ids}


def test_list_filters_by_status(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given jobs in several states
    owner = client_of(runtime, auth)
    failed, _, _ = insert(
        runtime,
        Job(client_id=owner.id, url=SOURCE, status="failed", error_class="http_404"),
        Job(client_id=owner.id, url=SOURCE, status="succeeded"),
        Job(client_id=owner.id, url=SOURCE, status="queued"),
    )
    # When the client asks for the failed ones
    response = api.get("/v1/jobs", params={"status": "failed"}, headers=auth)
    # Then only those come back
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [str(failed)]
    assert response.json()["items"][0]["error"]["error_class"] == "http_404"


def test_list_filters_by_parent_and_a_parent_counts_its_children(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a playlist parent with two children, and an unrelated job
    owner = client_of(runtime, auth)
    (parent,) = insert(runtime, Job(client_id=owner.id, url=SOURCE, status="running"))
    children = insert(
        runtime,
        Job(client_id=owner.id, parent_id=parent, url=f"{SOURCE}?c=1", step="download"),
        Job(
            client_id=owner.id,
            parent_id=parent,
            url=f"{SOURCE}?c=2",
            step="download",
            status="succeeded",
        ),
    )
    submit(api, auth)
    # When the client lists the parent's children
    response = api.get("/v1/jobs", params={"parent_id": str(parent)}, headers=auth)
    # Then exactly those come back, and the parent shows their counts
    assert response.status_code == 200
    assert {item["id"] for item in response.json()["items"]} == {str(c) for c in children}
    assert all(item["parent_id"] == str(parent) for item in response.json()["items"])
    shown = api.get(f"/v1/jobs/{parent}", headers=auth).json()
    assert shown["children"] == {
        "total": 2,
        "progress": 0.5,
        "queued": 1,
        "running": 0,
        "retrying": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 0,
    }


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        pytest.param({"url": "http://"}, "host", id="url-without-host"),
        pytest.param({"url": "not a url"}, "url", id="url-with-spaces"),
        pytest.param({"url": "ftp://media.example/a.mp4"}, "scheme", id="non-http-scheme"),
        pytest.param({"url": "file:///etc/passwd"}, "scheme", id="file-scheme"),
        pytest.param({"url": SOURCE, "preset": "4k"}, "preset", id="unknown-preset"),
        pytest.param({"url": SOURCE, "options": {"exec": "rm -rf /"}}, "exec", id="unknown-option"),
        pytest.param({"url": SOURCE, "outtmpl": "/etc/x"}, "outtmpl", id="unknown-field"),
        pytest.param({"url": SOURCE, "priority": 10}, "priority", id="priority-10"),
        pytest.param({"preset": "best"}, "url", id="missing-url"),
    ],
)
def test_invalid_submissions_are_422_problems_and_store_nothing(
    api: TestClient[Litestar],
    auth: dict[str, str],
    runtime: Runtime,
    settings: Settings,
    body: dict[str, Any],
    mentions: str,
) -> None:
    # Given a client
    # When it submits something the API must refuse
    response = api.post("/v1/jobs", json=body, headers=auth)
    # Then it gets a 422 problem naming what is wrong, and nothing was stored or published
    detail = problem(response, 422)["detail"]
    assert mentions in detail
    with runtime.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Job)).scalar() == 0
    assert queue_depth(f"{settings.queue_prefix}.probe") == 0


@pytest.mark.parametrize(
    "metadata",
    [{"note": "a\u0000b"}, {"k\u0000": 1}, {"deep": [{"x": "\u0000"}]}],
    ids=["in-value", "in-key", "nested"],
)
def test_metadata_postgres_cannot_store_is_a_422_problem(
    api: TestClient[Litestar], auth: dict[str, str], metadata: dict[str, Any]
) -> None:
    # When a client sends metadata with a NUL character (valid JSON, not storable as jsonb)
    response = api.post("/v1/jobs", json={"url": SOURCE, "metadata": metadata}, headers=auth)
    # Then it is told its input is invalid, not that the server broke
    assert "metadata" in problem(response, 422)["detail"]


def test_a_body_that_is_not_json_is_a_400_problem(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # When a client sends broken JSON
    response = api.post(
        "/v1/jobs",
        content=b'{"url": "https://media.example/a.mp4",',
        headers={**auth, "Content-Type": "application/json"},
    )
    # Then it is told the body is malformed
    problem(response, 400)


def test_a_body_over_64_kib_is_a_413_problem(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given two valid bodies, one just under the 64 KiB limit and one just over it
    def body(blob: int) -> bytes:
        return json.dumps({"url": SOURCE, "metadata": {"blob": "x" * blob}}).encode()

    under, over = body(60 * 1024), body(64 * 1024)
    assert len(under) < 64 * 1024 < len(over)
    # When both are sent
    json_auth = {**auth, "Content-Type": "application/json"}
    accepted = api.post("/v1/jobs", content=under, headers=json_auth)
    refused = api.post("/v1/jobs", content=over, headers=json_auth)
    # Then only the large one is refused as too large, and it stored nothing
    assert accepted.status_code == 202, accepted.text
    problem(refused, 413)
    with runtime.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Job)).scalar() == 1


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("zzzz", id="not-base64-text"),
        pytest.param(b64("not-a-cursor"), id="no-separator"),
        pytest.param(b64("2024-01-01T00:00:00+00:00|not-a-uuid"), id="bad-id"),
        pytest.param(b64(f"2024-01-01T00:00:00|{uuid.uuid4()}"), id="naive-timestamp"),
        pytest.param(b64(f"yesterday|{uuid.uuid4()}"), id="bad-timestamp"),
    ],
)
def test_a_cursor_not_from_next_cursor_is_a_400_problem(
    api: TestClient[Litestar], auth: dict[str, str], cursor: str
) -> None:
    # When a client pages with a made-up cursor
    response = api.get("/v1/jobs", params={"cursor": cursor}, headers=auth)
    # Then it is told to use next_cursor
    assert "next_cursor" in problem(response, 400)["detail"]


def test_an_unknown_status_filter_is_a_422_problem(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # When a client filters on a status that does not exist
    response = api.get("/v1/jobs", params={"status": "done"}, headers=auth)
    # Then the answer says which parameter is wrong
    assert "status" in problem(response, 422)["detail"]


# --- authentication ----------------------------------------------------------------------------


@pytest.fixture
def revoked_auth(runtime: Runtime) -> dict[str, str]:
    client, key = create_client(runtime, "former")
    with runtime.db.session() as session:
        assert client_rows.revoke(session, client.id)
    return {"Authorization": f"Bearer {key}"}


def test_missing_malformed_unknown_and_revoked_keys_get_the_same_401(
    api: TestClient[Litestar], auth: dict[str, str], revoked_auth: dict[str, str]
) -> None:
    # Given a job that exists, and every way of not holding a valid key
    job = submit(api, auth)
    well_formed_unknown = "Bearer haul_" + "A" * 43
    attempts = {
        "missing": {},
        "wrong scheme": {"Authorization": auth["Authorization"].replace("Bearer", "Basic")},
        "malformed": {"Authorization": "Bearer not-a-haul-key"},
        "unknown": {"Authorization": well_formed_unknown},
        "revoked": revoked_auth,
    }
    # When each calls the API
    bodies = {}
    for name, headers in attempts.items():
        for path in ("/v1/jobs", f"/v1/jobs/{job['id']}"):
            response = api.get(path, headers=headers)
            body = problem(response, 401)
            assert response.headers["www-authenticate"].lower().startswith("bearer")
            assert body.pop("instance") == path
            bodies[(name, path)] = body
    # Then every answer is the same, so none reveals which keys exist
    assert len({json.dumps(b, sort_keys=True) for b in bodies.values()}) == 1


def test_a_revoked_key_is_refused_on_its_very_next_request(
    api: TestClient[Litestar], runtime: Runtime
) -> None:
    # Given a client whose key works
    client, key = create_client(runtime, "leaving")
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/v1/jobs", headers=headers).status_code == 200
    # When the operator revokes it
    with runtime.db.session() as session:
        assert client_rows.revoke(session, client.id)
    # Then the next request is refused
    problem(api.get("/v1/jobs", headers=headers), 401)


def test_unknown_and_malformed_job_ids_are_404_problems(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # When a client asks for a job that does not exist, or for one by a non-UUID id
    unknown = api.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)
    malformed = api.get("/v1/jobs/not-a-uuid", headers=auth)
    # Then both are plain 404 problems
    problem(unknown, 404)
    problem(malformed, 404)


def test_another_clients_job_does_not_exist_for_me(
    api: TestClient[Litestar],
    auth: dict[str, str],
    other_auth: dict[str, str],
    runtime: Runtime,
    settings: Settings,
) -> None:
    # Given alice's job, with a file
    owner = client_of(runtime, auth)
    job = submit(api, auth)
    job_id = uuid.UUID(job["id"])
    folder = storage.job_dir(settings.storage_dir, owner.id, job_id)
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(b"alice's file")
    with runtime.db.session() as session:
        session.add(
            Artifact(
                job_id=job_id,
                client_id=owner.id,
                path=f"{owner.id}/{job_id}/clip.mp4",
                filename="clip.mp4",
                size=12,
                sha256="0" * 64,
                mime="video/mp4",
            )
        )
    base = f"/v1/jobs/{job_id}"
    # When mallory tries everything on it
    answers = {
        "get": api.get(base, headers=other_auth),
        "cancel": api.post(f"{base}/cancel", headers=other_auth),
        "retry": api.post(f"{base}/retry", headers=other_auth),
        "delete": api.delete(base, headers=other_auth),
        "attempts": api.get(f"{base}/attempts", headers=other_auth),
        "file": api.get(f"{base}/file", headers=other_auth),
    }
    listed = api.get("/v1/jobs", headers=other_auth).json()["items"]
    # Then every answer is the 404 of a job that never existed, the list is empty,
    # and alice's job and file are untouched
    never = problem(api.get(f"/v1/jobs/{uuid.uuid4()}", headers=other_auth), 404)
    never.pop("instance")
    for name, response in answers.items():
        body = problem(response, 404)
        body.pop("instance")
        assert body == never, name
    assert listed == []
    mine = api.get(base, headers=auth)
    assert mine.status_code == 200
    assert mine.json()["status"] == "queued"
    assert (folder / "clip.mp4").read_bytes() == b"alice's file"


# --- cancel and delete --------------------------------------------------------------------------


def test_cancelling_a_queued_job_ends_it_and_a_second_cancel_is_a_409(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # Given a queued job
    job = submit(api, auth)
    # When its owner cancels it twice
    first = api.post(f"/v1/jobs/{job['id']}/cancel", headers=auth)
    second = api.post(f"/v1/jobs/{job['id']}/cancel", headers=auth)
    # Then the first cancels it, the second is a conflict, and the job stays cancelled
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "cancelled"
    assert first.json()["finished_at"] is not None
    problem(second, 409)
    assert api.get(f"/v1/jobs/{job['id']}", headers=auth).json()["status"] == "cancelled"


def test_cancelling_a_parent_cancels_its_active_children_only(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a playlist parent waiting on three children, one of them already done
    owner = client_of(runtime, auth)
    (parent,) = insert(
        runtime, Job(client_id=owner.id, url=SOURCE, status="running", phase="awaiting_children")
    )
    queued, running, done = insert(
        runtime,
        *(
            Job(
                client_id=owner.id,
                parent_id=parent,
                url=f"{SOURCE}?c={status}",
                step=Step.DOWNLOAD.value,
                status=status,
                phase="downloading" if status == "running" else None,
            )
            for status in ("queued", "running", "succeeded")
        ),
    )
    # When the owner cancels the parent
    response = api.post(f"/v1/jobs/{parent}/cancel", headers=auth)
    # Then the parent and its unfinished children are cancelled; the finished one stays
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"

    def status(job_id: uuid.UUID) -> str:
        return str(api.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"])

    assert status(queued) == "cancelled"
    assert status(running) == "cancelled"
    assert status(done) == "succeeded"


def test_delete_removes_the_job_and_its_files(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    # Given two jobs with files on disk
    owner = client_of(runtime, auth)
    doomed, kept = submit(api, auth)["id"], submit(api, auth)["id"]
    folders = {}
    for job_id in (doomed, kept):
        folders[job_id] = storage.job_dir(settings.storage_dir, owner.id, uuid.UUID(job_id))
        folders[job_id].mkdir(parents=True)
        (folders[job_id] / "clip.mp4").write_bytes(b"data")
    # When the owner deletes one
    response = api.delete(f"/v1/jobs/{doomed}", headers=auth)
    # Then it is gone with its files; the other job and its file remain
    assert response.status_code == 204
    assert response.content == b""
    problem(api.get(f"/v1/jobs/{doomed}", headers=auth), 404)
    assert not folders[doomed].exists()
    assert row(runtime, doomed) is None
    assert api.get(f"/v1/jobs/{kept}", headers=auth).status_code == 200
    assert (folders[kept] / "clip.mp4").read_bytes() == b"data"


def test_deleting_a_parent_removes_its_children_and_their_files(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    # Given a playlist parent with two children that have files
    owner = client_of(runtime, auth)
    (parent,) = insert(
        runtime, Job(client_id=owner.id, url=SOURCE, status="running", phase="awaiting_children")
    )
    children = insert(
        runtime,
        *(
            Job(client_id=owner.id, parent_id=parent, url=f"{SOURCE}?c={n}", step="download")
            for n in range(2)
        ),
    )
    folders = [storage.job_dir(settings.storage_dir, owner.id, c) for c in children]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "part.mp4").write_bytes(b"data")
    # When the owner deletes the parent
    response = api.delete(f"/v1/jobs/{parent}", headers=auth)
    # Then the children are gone too, with their files
    assert response.status_code == 204
    for child in children:
        problem(api.get(f"/v1/jobs/{child}", headers=auth), 404)
    assert not any(folder.exists() for folder in folders)
    assert api.get("/v1/jobs", headers=auth).json()["items"] == []


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


# --- health and schema --------------------------------------------------------------------------


def test_liveness_and_readiness_answer_ok(api: TestClient[Litestar]) -> None:
    # When an orchestrator probes the API (no key needed)
    live = api.get("/health/live")
    ready = api.get("/health/ready")
    # Then the process is live, and ready because the database and broker answer
    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert ready.json()["queues_error"] is None


def test_readiness_and_metrics_show_how_many_messages_wait_in_each_queue(
    api: TestClient[Litestar], runtime: Runtime, settings: Settings
) -> None:
    # Given three probe messages on this test's own queues, and no worker consuming them
    for _ in range(3):
        runtime.publish(Step.PROBE, uuid.uuid4())
    probe = f"{settings.queue_prefix}.probe"

    # When an operator asks for readiness
    def depths() -> dict[str, Any] | None:
        queues: dict[str, Any] = api.get("/health/ready").json()["queues"]
        return queues if queues[probe] == {"ready": 3, "consumers": 0} else None

    queues = wait_for(depths, timeout=10, what="the three messages in the probe queue")
    # Then every queue of the deployment is listed: the probe queue and its delay and
    # dead-letter queues (declared with it), and null for those nobody declared yet
    assert list(queues) == queue_names(settings)
    assert queues[f"{probe}.DQ"] == queues[f"{probe}.XQ"] == {"ready": 0, "consumers": 0}
    assert queues[f"{settings.queue_prefix}.download"] is None
    # and /metrics reports the same depths, for alerts
    metrics = samples(api.get("/metrics").text)
    assert metrics[("haul_queue_messages_ready", (("queue", probe),))] == 3
    assert metrics[("haul_queue_consumers", (("queue", probe),))] == 0
    assert ("haul_queue_messages_ready", (("queue", f"{settings.queue_prefix}.download"),)) not in (
        metrics
    )


def test_metrics_count_held_jobs_by_reason(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a paused probe queue
    with runtime.db.session() as session:
        control_rows.set_paused(session, "probe", True)
    # When two jobs are submitted to it
    for _ in range(2):
        assert submit(api, auth)["held"] == "queue_paused"
    # Then /metrics counts them as queued, and as held for that reason
    metrics = samples(api.get("/metrics").text)
    assert metrics[("haul_jobs", (("status", "queued"), ("step", "probe")))] == 2
    assert metrics[("haul_jobs_held", (("reason", "queue_paused"), ("step", "probe")))] == 2


def test_readiness_is_503_and_names_the_database_when_it_is_down(settings: Settings) -> None:
    # Given an API whose database is unreachable (nothing listens on the port)
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/haul"}
    )
    rt = build_runtime(down)
    try:
        with TestClient(create_app(down, rt)) as api:
            # When it is probed
            live = api.get("/health/live")
            ready = api.get("/health/ready")
    finally:
        rt.broker.close()
        rt.db.dispose()
    # Then it is alive but not ready, and the check says the database is the reason
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"] != "ok"
    assert "database" in ready.json()["checks"]["database"]
    assert ready.json()["checks"]["broker"] == "ok"


def test_with_the_database_down_the_api_answers_503_and_accepts_nothing(
    settings: Settings,
) -> None:
    # Given an API whose database is unreachable
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/haul"}
    )
    rt = build_runtime(down)
    try:
        with TestClient(create_app(down, rt)) as api:
            # When a client submits or lists (its key cannot even be checked)
            headers = {"Authorization": "Bearer haul_" + "k" * 43}
            submitted = api.post("/v1/jobs", json={"url": SOURCE}, headers=headers)
            listed = api.get("/v1/jobs", headers=headers)
    finally:
        rt.broker.close()
        rt.db.dispose()
    # Then both are 503 problems that say to come back, never a 202 without a row
    for response in (submitted, listed):
        body = problem(response, 503)
        assert "database" in body["detail"]
        assert response.headers["retry-after"] == "5"
    assert queue_depth(f"{settings.queue_prefix}.probe") == 0


def test_readiness_is_503_and_names_the_broker_when_it_is_down(
    api_without_broker: TestClient[Litestar],
) -> None:
    # Given an API whose broker is unreachable
    api = api_without_broker
    # When it is probed
    ready = api.get("/health/ready")
    # Then it is not ready, and the broker check says why
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["broker"] != "ok"
    # and the queue depths were not asked for
    assert ready.json()["queues"] is None
    assert ready.json()["queues_error"] == "not read: the broker is unreachable"


def test_the_openapi_schema_is_served_and_lists_the_jobs_api(api: TestClient[Litestar]) -> None:
    # When a client fetches the OpenAPI document
    response = api.get("/schema/openapi.json")
    # Then it describes the jobs endpoints
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/v1/jobs" in paths
    assert {"get", "post"} <= paths["/v1/jobs"].keys()
    assert "/v1/jobs/{job_id}/file" in paths


def test_an_unexpected_error_is_a_500_problem_without_internals(
    api: TestClient[Litestar], auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bug deep inside, whose message names a path on the server
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom in /srv/haul/service/secret.py line 42")

    monkeypatch.setattr("service.intake.jobs.get", broken)
    # When a client meets it
    response = api.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)
    # Then it gets a plain 500 problem: no traceback, no message, no path
    body = problem(response, 500)
    assert body["detail"] == "an internal error occurred; it was logged"
    assert "boom" not in response.text
    assert "/srv/" not in response.text
    assert "Traceback" not in response.text
