"""A subscription's check is a job of kind ``check``, on a real database, broker and yt-dlp.

Its attempts and retries are a job's; it fires no job-ended webhook, does not count
toward ``max_active_jobs`` and is left out of the default job list. Check jobs run
in-process (``run_check``, what the ``check_subscription`` actor calls).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db.models import Job, WebhookDelivery
from service.intake.clients import create_client, set_limits
from service.webhooks.endpoints import set_default_endpoint
from tests.integration.subscriptions.test_check import check, entries, feed, item, subscribe
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


def shown(api: TestClient[Litestar], auth: dict[str, str], sub_id: str) -> dict[str, Any]:
    resp = api.get(f"/v1/subscriptions/{sub_id}", headers=auth)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def job(api: TestClient[Litestar], auth: dict[str, str], job_id: str) -> dict[str, Any]:
    resp = api.get(f"/v1/jobs/{job_id}", headers=auth)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def outcomes(api: TestClient[Litestar], auth: dict[str, str], job_id: str) -> list[str]:
    resp = api.get(f"/v1/jobs/{job_id}/attempts", headers=auth)
    assert resp.status_code == 200, resp.text
    return [a["outcome"] for a in resp.json()["items"]]


def test_a_check_is_a_job_whose_attempts_show_and_that_ends_with_what_it_found(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription: its first check is a job, made and rung at creation
    sub = subscribe(api, auth, url=feed(media, item(2), item(1)))
    made = sub["check"]
    assert made is not None and made["status"] == "queued"
    rung = take_messages(f"{runtime.settings.queue_prefix}.subscriptions")
    assert [m["args"] for m, _ in rung] == [[made["id"]]]

    # When the worker runs it
    check(runtime, sub["id"])

    # Then the job succeeded in one attempt, says what it found, and is the subscription's check
    done = job(api, auth, made["id"])
    assert (done["kind"], done["status"], done["attempts"]) == ("check", "succeeded", 1)
    assert done["subscription_id"] == sub["id"]
    assert done["info"]["check"] == {"listed": 2, "new": 2, "capped": False}
    assert outcomes(api, auth, made["id"]) == ["succeeded"]
    after = shown(api, auth, sub["id"])
    assert after["check"]["id"] == made["id"]
    assert after["last_check"]["outcome"] == "ok"


def test_a_failing_check_is_retried_as_a_job_and_only_its_last_attempt_counts_as_failed(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a feed that answers 503 to every request (retries: 2, so 3 attempts)
    url = feed(media, item(1))
    media.fail_feed(url.rsplit("/", 1)[-1].removesuffix(".rss"), 100)
    sub = subscribe(api, auth, url=url)
    check_id = sub["check"]["id"]
    attempts = runtime.settings.max_retries + 1

    # When its check runs all but its last attempt
    for _ in range(attempts - 1):
        assert check(runtime, sub["id"]) is None

    # Then the job waits for a retry, saying why, and the subscription has no failure yet
    waiting = job(api, auth, check_id)
    assert (waiting["status"], waiting["attempts"]) == ("retrying", attempts - 1)
    assert waiting["last_error"].startswith("http_5xx")
    assert outcomes(api, auth, check_id) == ["retry"] * (attempts - 1)
    between = shown(api, auth, sub["id"])
    assert (between["last_check"]["outcome"], between["consecutive_failures"]) == (None, 0)
    assert between["check"]["status"] == "retrying"

    # When its last attempt fails too
    outcome = check(runtime, sub["id"])

    # Then that is one failed check on the subscription, with the job's error
    assert outcome is not None and not outcome.ok
    after = shown(api, auth, sub["id"])
    assert after["last_check"]["outcome"] == "failed"
    assert after["last_check"]["error"].startswith("http_5xx")
    assert after["consecutive_failures"] == 1
    assert outcomes(api, auth, check_id) == ["retry"] * attempts


def test_checks_are_left_out_of_the_job_list_unless_asked_for(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription checked once, whose feed's entry made a download job
    sub = subscribe(api, auth, url=feed(media, item(1)), backfill="all")
    check(runtime, sub["id"])
    (entry,) = entries(api, auth, sub["id"])

    # When the client lists its jobs, and then its checks
    listed = api.get("/v1/jobs", headers=auth).json()["items"]
    checks = api.get("/v1/jobs?kind=check", headers=auth).json()["items"]

    # Then the list shows the download only, and the filter the check only
    assert [(j["id"], j["kind"]) for j in listed] == [(entry["job_id"], "download")]
    assert [(j["id"], j["kind"]) for j in checks] == [(sub["check"]["id"], "check")]
    assert api.get("/v1/jobs?kind=bogus", headers=auth).status_code == 422


def test_the_dashboards_job_list_shows_checks_only_when_asked_for(
    api: TestClient[Litestar], runtime: Runtime, media: MediaServer
) -> None:
    # Given a person signed in to the dashboard, whose subscription was checked once
    _, key = create_client(runtime, "person")
    auth = {"Authorization": f"Bearer {key}"}
    sub = subscribe(api, auth, url=feed(media, item(1)), backfill="all")
    check(runtime, sub["id"])
    (entry,) = entries(api, auth, sub["id"])
    sign_in = _token(api.get("/signin").text)
    signed = api.post("/signin", data={"key": key, "_csrf": sign_in}, follow_redirects=False)
    assert signed.status_code == 303, signed.text

    # When the jobs page is opened, and then with the checks filter
    downloads = api.get("/jobs")
    checks = api.get("/jobs?kind=check")

    # Then the first lists the entry's download and not the check; the second the check only
    assert (downloads.status_code, checks.status_code) == (200, 200)
    assert entry["job_id"] in downloads.text
    assert sub["check"]["id"] not in downloads.text
    assert sub["check"]["id"] in checks.text
    assert entry["job_id"] not in checks.text


def _token(html: str) -> str:
    found = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def test_a_client_at_max_active_jobs_still_has_its_checks_run(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a client that may have one active job, with a subscription whose check waits
    set_limits(runtime, "alice", max_active_jobs=1)
    sub = subscribe(api, auth, url=feed(media, item(2), item(1)), backfill="all")

    # When it submits a download (the waiting check does not count toward the limit)
    accepted = api.post("/v1/jobs", json={"url": media.url("/media/a.mp4")}, headers=auth)
    assert accepted.status_code == 202, accepted.text

    # and the check runs while the client is at its limit
    outcome = check(runtime, sub["id"])

    # Then the check ran and succeeded; its entries wait for room, saying why
    assert outcome is not None and (outcome.ok, outcome.new, outcome.queued) == (True, 2, 0)
    assert job(api, auth, sub["check"]["id"])["status"] == "succeeded"
    states = [(e["state"], e["reason"] or "") for e in entries(api, auth, sub["id"])]
    assert [s for s, _ in states] == ["pending", "pending"]
    assert any("max_active_jobs" in reason for _, reason in states)


def test_a_check_fires_no_job_ended_webhook(
    api: TestClient[Litestar], runtime: Runtime, media: MediaServer
) -> None:
    # Given a client with a default endpoint (every job of its that ends is announced there)
    client, key = create_client(runtime, "hooked")
    auth = {"Authorization": f"Bearer {key}"}
    set_default_endpoint(runtime, client, media.url("/status/204"))
    # and two subscriptions: a feed, and a file that is not one (its check fails for good)
    ok = subscribe(api, auth, url=feed(media, item(1)))
    failing = subscribe(api, auth, url=media.url("/media/a.mp4"))

    # When both checks run, and a download of the client ends
    check(runtime, ok["id"])
    check(runtime, failing["id"])
    download = api.post("/v1/jobs", json={"url": media.url("/gone.mp4")}, headers=auth).json()
    cancelled = api.post(f"/v1/jobs/{download['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text

    # Then the checks ended (one succeeded, one failed) without a job delivery; the download's
    # end made one
    assert job(api, auth, ok["check"]["id"])["status"] == "succeeded"
    assert job(api, auth, failing["check"]["id"])["status"] == "failed"
    with runtime.db.session() as session:
        stmt = sa.select(WebhookDelivery.job_id, WebhookDelivery.event).where(
            WebhookDelivery.client_id == client.id, WebhookDelivery.job_id.is_not(None)
        )
        delivered = [(str(job_id), event) for job_id, event in session.execute(stmt)]
    assert delivered == [(download["id"], "job.cancelled")]


def test_check_now_answers_with_the_check_still_waiting_and_makes_no_second_one(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription whose first check has not run yet
    sub = subscribe(api, auth, url=feed(media, item(1)))

    # When "check now" is asked twice
    first = api.post(f"/v1/subscriptions/{sub['id']}/check", headers=auth)
    second = api.post(f"/v1/subscriptions/{sub['id']}/check", headers=auth)

    # Then both answer with the waiting check; there is one check job
    assert (first.status_code, second.status_code) == (202, 202)
    ids = {first.json()["check"]["id"], second.json()["check"]["id"], sub["check"]["id"]}
    assert len(ids) == 1
    assert first.headers["location"] == f"/v1/jobs/{sub['check']['id']}"
    with runtime.db.session() as session:
        stmt = sa.select(sa.func.count()).where(Job.subscription_id == uuid.UUID(sub["id"]))
        assert session.execute(stmt).scalar_one() == 1

    # When it has run, "check now" makes the next one
    check(runtime, sub["id"])
    third = api.post(f"/v1/subscriptions/{sub['id']}/check", headers=auth)
    assert third.json()["check"]["id"] not in ids
    assert third.json()["check"]["status"] == "queued"


def test_a_failed_check_is_not_replayed_by_a_retry_of_jobs(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription whose check failed for good (not a feed)
    sub = subscribe(api, auth, url=media.url("/media/a.mp4"))
    check(runtime, sub["id"])
    check_id = sub["check"]["id"]
    assert job(api, auth, check_id)["status"] == "failed"

    # When the client retries it, and then all its failed jobs
    one = api.post(f"/v1/jobs/{check_id}/retry", headers=auth)
    many = api.post("/v1/jobs/retry", json={"status": "failed"}, headers=auth)

    # Then the check stays failed: checking again is its subscription's to do
    assert one.status_code == 409, one.text
    assert "subscription" in one.json()["detail"]
    assert many.status_code == 200, many.text
    assert job(api, auth, check_id)["status"] == "failed"


def test_deleting_a_subscription_deletes_its_checks(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    sub = subscribe(api, auth, url=feed(media, item(1)))
    check(runtime, sub["id"])

    assert api.delete(f"/v1/subscriptions/{sub['id']}", headers=auth).status_code == 204

    assert api.get(f"/v1/jobs/{sub['check']['id']}", headers=auth).status_code == 404
