"""What a submission must pass, through the API on a real database and RabbitMQ:
Idempotency-Key, ``dedupe``, the active-jobs and storage quotas, the request rate.

Each refusal is checked for its status, headers and problem body, and for what it
left behind: nothing (rows counted in the database, messages in the queue).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from service.api.app import create_app
from service.db.models import Artifact, IdempotencyKey, Job
from service.fleet import sweeps
from service.intake import clients
from service.runtime import build_runtime
from tests.integration.conftest import client_of, queue_depth
from tests.integration.test_api_jobs import SOURCE, problem

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def post(
    api: TestClient[Litestar], auth: dict[str, str], key: str | None = None, **body: Any
) -> httpx.Response:
    headers = {**auth, **({"Idempotency-Key": key} if key is not None else {})}
    return api.post("/v1/jobs", json={"url": SOURCE, **body}, headers=headers)


def count(runtime: Runtime, table: type[Any], **where: Any) -> int:
    with runtime.db.session() as session:
        stmt = sa.select(sa.func.count()).select_from(table)
        for name, value in where.items():
            stmt = stmt.where(getattr(table, name) == value)
        return int(session.execute(stmt).scalar_one())


def jobs_of(runtime: Runtime, auth: dict[str, str]) -> int:
    return count(runtime, Job, client_id=client_of(runtime, auth).id)


def at_once(n: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """``n`` calls released together from their own threads (a barrier, not a sleep)."""
    start = threading.Barrier(n)

    def one() -> httpx.Response:
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: one(), range(n)))


def set_limits(runtime: Runtime, auth: dict[str, str], **limits: int | None) -> None:
    clients.set_limits(runtime, str(client_of(runtime, auth).id), **limits)


# --- Idempotency-Key ----------------------------------------------------------------------------


@pytest.mark.parametrize("capped", [False, True], ids=["key-lock", "client-row-lock"])
def test_twenty_concurrent_posts_with_one_key_make_exactly_one_job(
    api: TestClient[Litestar],
    auth: dict[str, str],
    runtime: Runtime,
    settings: Settings,
    capped: bool,
) -> None:
    # Given a client (with an active-jobs limit, its submissions also queue on its row)
    if capped:
        set_limits(runtime, auth, max_active_jobs=100)
    key = str(uuid.uuid4())
    # When it sends the same request with the same key 20 times at once
    answers = at_once(20, lambda: post(api, auth, key, metadata={"order": 17}))
    # Then one request created the job (202) and the 19 others answered with it (200)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 19 + [202], [a.text for a in answers if a.status_code >= 300]
    assert len({a.json()["id"] for a in answers}) == 1
    assert {a.headers["location"] for a in answers} == {f"/v1/jobs/{answers[0].json()['id']}"}
    # and there is one row, one key and one message
    assert jobs_of(runtime, auth) == 1
    assert count(runtime, IdempotencyKey) == 1
    assert queue_depth(f"{settings.queue_prefix}.probe") == 1


def test_the_same_key_with_another_body_is_a_422_and_changes_nothing(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a job created with a key
    first = post(api, auth, "k-1", preset="mp3")
    assert first.status_code == 202
    # When the key comes again with another request
    again = post(api, auth, "k-1", preset="720p")
    # Then it is a 422 problem saying so, and no job was added
    body = problem(again, 422)
    assert body["type"] == "/problems/idempotency-key-reused"
    assert "different request" in body["detail"]
    assert jobs_of(runtime, auth) == 1


def test_the_same_request_spelled_differently_is_the_same_request(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # Given a job created with a key
    first = post(api, auth, '"k-2"', options={"height": 720, "audio_only": False})
    assert first.status_code == 202
    # When the request comes again with the host in capitals, the options in another order,
    # an explicit default preset and the key without its quotes
    upper = SOURCE.replace("media.example", "MEDIA.example")
    again = api.post(
        "/v1/jobs",
        json={
            "options": {"audio_only": False, "height": 720},
            "preset": "best",
            "url": upper,
            "priority": 0,
        },
        headers={**auth, "Idempotency-Key": "k-2"},
    )
    # Then it is answered with the same job
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]


def test_keys_belong_to_their_client(
    api: TestClient[Litestar], auth: dict[str, str], other_auth: dict[str, str], runtime: Runtime
) -> None:
    mine = post(api, auth, "shared-key")
    theirs = post(api, other_auth, "shared-key", preset="mp3")

    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]
    assert jobs_of(runtime, other_auth) == 1


def test_an_expired_key_can_be_used_again_and_the_sweep_removes_expired_keys(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a key used a day ago (its expiry moved into the past: the TTL has passed)
    first = post(api, auth, "old-key")
    assert first.status_code == 202
    expire_keys(runtime)
    # When it is sent again, even with another request
    again = post(api, auth, "old-key", preset="mp3")
    # Then that is a new job, and the key now names it
    assert again.status_code == 202, again.text
    assert again.json()["id"] != first.json()["id"]
    assert post(api, auth, "old-key", preset="mp3").json()["id"] == again.json()["id"]
    # and once it expires too, the sweep deletes it (and leaves the jobs alone)
    expire_keys(runtime)
    assert sweeps.run_all(runtime).keys_pruned == 1
    assert count(runtime, IdempotencyKey) == 0
    assert jobs_of(runtime, auth) == 2


def expire_keys(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        session.execute(
            sa.update(IdempotencyKey).values(expires_at=sa.func.now() - sa.text("interval '1 s'"))
        )


def test_keys_last_as_long_as_the_setting_says(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    post(api, auth, "ttl-key")
    with runtime.db.session() as session:
        (lifetime,) = session.execute(
            sa.select(IdempotencyKey.expires_at - IdempotencyKey.created_at)
        ).one()
    assert lifetime.total_seconds() == settings.idempotency_ttl_s == 86_400


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "two words", "caf\u00e9"],
    ids=["empty", "too-long", "space", "not-ascii"],
)
def test_an_unusable_key_is_a_400_and_creates_nothing(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, key: str
) -> None:
    headers: dict[str, Any] = {**auth, "Idempotency-Key": key.encode()}  # raw bytes on the wire
    response = api.post("/v1/jobs", json={"url": SOURCE}, headers=headers)

    assert "Idempotency-Key" in problem(response, 400)["detail"]
    assert jobs_of(runtime, auth) == 0


# --- dedupe -------------------------------------------------------------------------------------


def succeed(runtime: Runtime, job_id: str) -> None:
    """What a worker's success leaves on the row (no worker runs in these tests)."""
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == uuid.UUID(job_id))
            .values(status="succeeded", finished_at=sa.func.now())
        )


def test_dedupe_answers_with_a_succeeded_twin_instead_of_downloading_again(
    api: TestClient[Litestar],
    auth: dict[str, str],
    other_auth: dict[str, str],
    runtime: Runtime,
    settings: Settings,
) -> None:
    # Given a succeeded mp3 job of this URL, and one still queued for the 720p preset
    done = post(api, auth, preset="mp3").json()["id"]
    succeed(runtime, done)
    post(api, auth, preset="720p")
    depth = queue_depth(f"{settings.queue_prefix}.probe")
    # When the client asks again with dedupe, spelling the URL another way
    upper = SOURCE.replace("https://media", "HTTPS://MEDIA")
    twin = api.post("/v1/jobs", json={"url": upper, "preset": "mp3", "dedupe": True}, headers=auth)
    # Then it gets the succeeded job back, and nothing was created or published
    assert twin.status_code == 200, twin.text
    assert twin.json()["id"] == done
    assert twin.json()["status"] == "succeeded"
    assert jobs_of(runtime, auth) == 2
    assert queue_depth(f"{settings.queue_prefix}.probe") == depth
    # But other options, a twin that has not succeeded, no dedupe, or another client's
    # twin: each is a new job
    assert post(api, auth, preset="audio", dedupe=True).status_code == 202
    assert post(api, auth, preset="720p", dedupe=True).status_code == 202
    assert post(api, auth, preset="mp3").status_code == 202
    assert post(api, other_auth, preset="mp3", dedupe=True).status_code == 202
    assert jobs_of(runtime, auth) == 5


def test_a_key_sent_with_dedupe_names_the_twin(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    done = post(api, auth).json()["id"]
    succeed(runtime, done)

    first = post(api, auth, "dedupe-key", dedupe=True)
    again = post(api, auth, "dedupe-key", dedupe=True)

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["id"] == again.json()["id"] == done
    assert jobs_of(runtime, auth) == 1


# --- quotas -------------------------------------------------------------------------------------


def test_past_its_active_jobs_limit_a_client_gets_a_403_naming_the_limit(
    api: TestClient[Litestar], auth: dict[str, str], other_auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client allowed 2 active jobs, which has 2 queued (one with a key)
    set_limits(runtime, auth, max_active_jobs=2)
    first = post(api, auth, "first")
    assert first.status_code == 202
    assert post(api, auth).status_code == 202
    # When it submits a third
    refused = post(api, auth, "third")
    # Then it is a 403 problem naming the limit, its value and the client's count
    body = problem(refused, 403)
    assert body["type"] == "/problems/quota-exceeded"
    assert (body["limit"], body["value"], body["current"]) == ("max_active_jobs", 2, 2)
    assert "max_active_jobs" in body["detail"]
    assert "retry-after" not in refused.headers
    # and nothing was created: no job, and the refused request's key is still free
    assert jobs_of(runtime, auth) == 2
    assert count(runtime, IdempotencyKey, key="third") == 0
    # A replay of an accepted request is still answered, another client is not affected,
    # and once a job ends there is room again
    assert post(api, auth, "first").json()["id"] == first.json()["id"]
    assert post(api, other_auth).status_code == 202
    assert api.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=auth).status_code == 200
    assert post(api, auth, "third").status_code == 202


def test_the_active_jobs_limit_holds_for_concurrent_submissions(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client allowed 3 active jobs
    set_limits(runtime, auth, max_active_jobs=3)
    # When it sends 12 submissions at once
    answers = at_once(12, lambda: post(api, auth))
    # Then exactly 3 were accepted and 9 refused, and there are 3 rows
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202] * 3 + [403] * 9
    assert jobs_of(runtime, auth) == 3


def test_the_deployment_default_limits_every_client_and_an_own_value_overrides_it(
    settings: Settings, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    # Given a deployment that allows one active job per client
    rt = build_runtime(settings.model_copy(update={"client_max_active_jobs": 1}))
    try:
        with TestClient(create_app(rt.settings, rt)) as api:
            # and one client that an operator allowed two
            set_limits(rt, other_auth, max_active_jobs=2)
            # Then the first client gets one, the other two
            assert [post(api, auth).status_code for _ in range(2)] == [202, 403]
            assert [post(api, other_auth).status_code for _ in range(3)] == [202, 202, 403]
            # and back at the default, the other client is refused at once
            set_limits(rt, other_auth, max_active_jobs=None)
            assert problem(post(api, other_auth), 403)["value"] == 1
    finally:
        rt.broker.close()
        rt.db.dispose()


def test_a_client_whose_files_fill_its_quota_gets_a_403_naming_the_limit(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client with a 1000-byte quota whose one file takes 1000 bytes
    set_limits(runtime, auth, storage_quota_bytes=1000)
    done = post(api, auth).json()["id"]
    succeed(runtime, done)
    owner = client_of(runtime, auth)
    with runtime.db.session() as session:
        session.add(
            Artifact(
                job_id=uuid.UUID(done),
                client_id=owner.id,
                path=f"{owner.id}/{done}/a.mp4",
                filename="a.mp4",
                size=1000,
                sha256="0" * 64,
                mime="video/mp4",
            )
        )
    # When it submits another URL
    refused = post(api, auth, url="https://media.example/other.mp4")
    # Then it is a 403 problem naming the quota, and nothing was created
    body = problem(refused, 403)
    assert (body["limit"], body["value"], body["current"]) == ("storage_quota_bytes", 1000, 1000)
    assert jobs_of(runtime, auth) == 1
    # but asking for the file it already has, with dedupe, still works
    assert post(api, auth, dedupe=True).json()["id"] == done


# --- request rate -------------------------------------------------------------------------------


def test_past_its_request_rate_a_client_gets_a_429_with_retry_after_and_ratelimit_headers(
    api: TestClient[Litestar], auth: dict[str, str], other_auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client allowed 3 requests per minute
    set_limits(runtime, auth, requests_per_minute=3)
    # When it lists its jobs twice and submits once
    answers = [
        api.get("/v1/jobs", headers=auth),
        api.get("/v1/jobs", headers=auth),
        post(api, auth),
    ]
    # Then each passes and says what is left of the policy
    assert [a.status_code for a in answers] == [200, 200, 202]
    assert {a.headers["ratelimit-policy"] for a in answers} == {'"requests";q=3;w=60'}
    told = [rate_of(a) for a in answers]
    assert [r for r, _ in told] == [2, 1, 0]
    # t: seconds until the whole quota is back (20 s per request spent, less time passed)
    assert [t for _, t in told] == sorted(t for _, t in told)
    assert 0 < told[0][1] <= 20 and 40 < told[2][1] <= 60
    # When it submits once more
    refused = post(api, auth, preset="mp3")
    # Then that is a 429 problem naming the limit, with when to come back, and no job
    body = problem(refused, 429)
    assert body["type"] == "/problems/rate-limited"
    assert (body["limit"], body["value"]) == ("requests_per_minute", 3)
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 20
    assert refused.headers["ratelimit-policy"] == '"requests";q=3;w=60'
    assert refused.headers["ratelimit"].startswith('"requests";r=0;t=')
    assert jobs_of(runtime, auth) == 1
    # Another client is not affected, and a client without a rate gets no RateLimit headers
    set_limits(runtime, other_auth, requests_per_minute=100)
    assert rate_of(api.get("/v1/jobs", headers=other_auth)) == (99, 1)
    set_limits(runtime, other_auth, requests_per_minute=None)
    assert "ratelimit" not in api.get("/v1/jobs", headers=other_auth).headers


def rate_of(response: httpx.Response) -> tuple[int, int]:
    """The ``r`` and ``t`` parameters of a ``RateLimit`` header."""
    policy, *params = response.headers["ratelimit"].split(";")
    assert policy == '"requests"'
    values = dict(p.split("=") for p in params)
    return int(values["r"]), int(values["t"])


def test_the_request_rate_holds_for_concurrent_requests(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    set_limits(runtime, auth, requests_per_minute=5)

    answers = at_once(16, lambda: api.get("/v1/jobs", headers=auth))

    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 11


def test_requests_without_a_valid_key_spend_nothing(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    set_limits(runtime, auth, requests_per_minute=1)
    for _ in range(3):
        assert api.get("/v1/jobs", headers={"Authorization": "Bearer haul_nope"}).status_code == 401

    assert api.get("/v1/jobs", headers=auth).status_code == 200
