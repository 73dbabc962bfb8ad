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

from service.db import clients as client_rows
from service.db.models import Artifact, Job
from service.domain.states import Step
from service.intake.clients import create_client
from service.work import storage
from tests.support.api import SOURCE, client_of, problem, submit
from tests.support.jobs import insert, row
from tests.support.rabbitmq import queue_depth, take_messages

if TYPE_CHECKING:
    from litestar import Litestar

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


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


def test_list_finds_text_in_the_address_or_title_literally(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given jobs whose addresses and titles differ, one with a title holding "100%_Cats"
    owner = client_of(runtime, auth)
    by_url, by_title, literal, _ = insert(
        runtime,
        Job(client_id=owner.id, url="https://media.example/Concert-2026.mp4"),
        Job(client_id=owner.id, url=SOURCE, info={"title": "The concert, live"}),
        Job(client_id=owner.id, url=SOURCE, info={"title": "100%_Cats"}),
        Job(client_id=owner.id, url=SOURCE, info={"title": "100 xCats"}),
    )
    other, _ = create_client(runtime, "someone-else")
    insert(runtime, Job(client_id=other.id, url="https://media.example/concert.mp4"))

    def found(q: str) -> set[str]:
        response = api.get("/v1/jobs", params={"q": q}, headers=auth)
        assert response.status_code == 200
        return {item["id"] for item in response.json()["items"]}

    # Then a word finds it in the address or the title, in any case, among the caller's jobs only
    assert found("CONCERT") == {str(by_url), str(by_title)}
    # And % and _ are the characters themselves, not wildcards
    assert found("0%_c") == {str(literal)}
    # And a word found nowhere gives an empty page, and an overlong one is a 422 problem
    assert found("nowhere") == set()
    assert "q" in problem(api.get("/v1/jobs", params={"q": "x" * 201}, headers=auth), 422)["detail"]


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
