"""Subscriptions on a real database, broker and yt-dlp, against a local feed that grows.

The API creates them; their check jobs run in-process (``run_check``, what the
``check_subscription`` actor calls) so each test decides when a check happens, and
the jobs they make are downloaded with the worker's own ``run_download``.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import subscriptions as subscription_rows
from service.db.models import Artifact, Job, Subscription, SubscriptionEntry
from service.domain.states import Kind
from service.errors import JobFailure
from service.fleet import sweeps
from service.intake.clients import set_limits
from service.subscriptions.check import Outcome, run_check
from service.subscriptions.schedule import tick
from service.work.download import run_download
from tests.support.media_server import FeedItem
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def item(n: int, *, title: str | None = None, duration: int | None = 2) -> FeedItem:
    """The n-th episode of a feed, published n hours after a fixed time."""
    name = "abc"[n % 3]
    return FeedItem(
        guid=f"episode-{n}",
        path=f"/media/{name}.mp4?n={n}",
        title=title or f"Episode {n}",
        duration_s=duration,
        published=NOW + timedelta(hours=n),
    )


def feed(media: MediaServer, *items: FeedItem) -> str:
    """A fresh live feed holding ``items`` (newest first), and its URL."""
    return media.set_feed(uuid.uuid4().hex[:12], list(items))


def grow(media: MediaServer, url: str, *items: FeedItem) -> None:
    key = url.rsplit("/", 1)[-1].removesuffix(".rss")
    media.set_feed(key, list(items))


def subscribe(api: TestClient[Litestar], auth: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = api.post("/v1/subscriptions", json=body, headers=auth)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def entries(api: TestClient[Litestar], auth: dict[str, str], sub_id: str) -> list[dict[str, Any]]:
    resp = api.get(f"/v1/subscriptions/{sub_id}/entries", headers=auth)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def jobs_of(runtime: Runtime, sub_id: str) -> list[Job]:
    with runtime.db.session() as session:
        stmt = (
            sa.select(Job)
            .join(SubscriptionEntry, SubscriptionEntry.job_id == Job.id)
            .where(SubscriptionEntry.subscription_id == uuid.UUID(sub_id))
        )
        return list(session.execute(stmt).scalars())


def all_jobs(runtime: Runtime) -> list[Job]:
    """Every download job (a subscription's checks are jobs too, of kind ``check``)."""
    with runtime.db.session() as session:
        stmt = sa.select(Job).where(Job.kind == Kind.DOWNLOAD.value)
        return list(session.execute(stmt).scalars())


def check_job(runtime: Runtime, sub_id: str) -> uuid.UUID:
    """The subscription's check job still waiting (made at creation or by "check now"), or
    a new one as the scheduler's tick makes it."""
    with runtime.db.session() as session:
        # the subscription's row held, as the tick and "check now" hold it
        lock = sa.select(Subscription).where(Subscription.id == uuid.UUID(sub_id))
        sub = session.execute(lock.with_for_update()).scalars().first()
        assert sub is not None
        made = subscription_rows.add_checks(session, [sub], runtime.settings.max_retries + 1)
        job = made[0] if made else subscription_rows.active_check(session, sub.id)
        assert job is not None
        return job.id


def download_all(runtime: Runtime) -> None:
    """Run every published download as a worker would."""
    for body, _ in take_messages(f"{runtime.settings.queue_prefix}.download"):
        run_download(runtime, uuid.UUID(body["args"][0]))


def check(runtime: Runtime, sub_id: str) -> Any:
    """Run the subscription's check job as a worker would; what it did (None: nothing ran,
    or an attempt failed that will be retried). A check that failed raises for Dramatiq;
    here the outcome it wrote on the subscription is returned instead."""
    recorded: list[Outcome] = []
    try:
        return run_check(runtime, check_job(runtime, sub_id), recorded.append)
    except JobFailure:
        return recorded[-1] if recorded else None


def test_backfill_none_downloads_only_the_entry_added_later_and_only_once(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a feed of two episodes and a subscription made with the default backfill
    url = feed(media, item(2), item(1))
    sub = subscribe(api, auth, url=url)

    # When it is checked, the feed gains an episode, and it is checked twice more
    first = check(runtime, sub["id"])
    grow(media, url, item(3), item(2), item(1))
    second = check(runtime, sub["id"])
    download_all(runtime)
    third = check(runtime, sub["id"])
    download_all(runtime)

    # Then the first check made nothing, the second one job, the third none
    assert (first.ok, first.new, first.queued) == (True, 2, 0)
    assert (second.new, second.queued) == (1, 1)
    assert (third.new, third.queued) == (0, 0)
    jobs = all_jobs(runtime)
    assert [j.status for j in jobs] == ["succeeded"]
    assert jobs[0].url.endswith("/media/a.mp4?n=3")
    # And the entries say why the older ones have no job
    seen = {e["key"]: e for e in entries(api, auth, sub["id"])}
    assert seen["guid:episode-3"]["state"] == "queued"
    assert seen["guid:episode-3"]["job_status"] == "succeeded"
    assert {seen[f"guid:episode-{n}"]["state"] for n in (1, 2)} == {"before_backfill"}
    # And the subscription shows what its checks did
    shown = api.get(f"/v1/subscriptions/{sub['id']}", headers=auth).json()
    assert shown["last_check"]["outcome"] == "ok"
    assert shown["entries_seen"] == 3
    assert shown["jobs"] == {"succeeded": 1}
    assert shown["bytes_stored"] > 0
    assert shown["consecutive_failures"] == 0


@pytest.mark.parametrize(("backfill", "expected"), [("all", {1, 2, 3, 4}), (2, {3, 4})])
def test_backfill_all_or_n_downloads_that_many_of_the_first_listing(
    api: TestClient[Litestar],
    auth: dict[str, str],
    runtime: Runtime,
    media: MediaServer,
    backfill: Any,
    expected: set[int],
) -> None:
    # Given a feed of four episodes, listed oldest first (the newest are not on top)
    url = feed(media, item(1), item(2), item(3), item(4))
    sub = subscribe(api, auth, url=url, backfill=backfill)

    # When it is checked
    check(runtime, sub["id"])

    # Then the backfill's episodes have jobs, the newest by date
    made = {int(j.url.rsplit("=", 1)[-1]) for j in jobs_of(runtime, sub["id"])}
    assert made == expected


def test_filters_by_title_and_duration_leave_entries_out_and_say_why(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a feed with a trailer, a long episode, an episode of unknown length and one to keep
    url = feed(
        media,
        item(4, title="Episode 4"),
        item(3, title="Episode 3", duration=None),
        item(2, title="Episode 2", duration=7200),
        item(1, title="Trailer"),
    )
    filters = {"title_include": "^Episode", "title_exclude": "(?i)trailer", "max_duration_s": 600}
    sub = subscribe(api, auth, url=url, backfill="all", filters=filters)

    # When it is checked
    check(runtime, sub["id"])

    # Then the long one and the trailer are filtered; the unknown length passes
    seen = {e["title"]: e for e in entries(api, auth, sub["id"])}
    assert seen["Trailer"]["state"] == "filtered"
    assert seen["Trailer"]["reason"] == "title does not match title_include"
    assert seen["Episode 2"]["state"] == "filtered"
    assert "max_duration_s" in seen["Episode 2"]["reason"]
    assert seen["Episode 3"]["state"] == "queued"
    assert seen["Episode 4"]["state"] == "queued"
    assert len(jobs_of(runtime, sub["id"])) == 2


def test_a_title_built_to_make_a_regex_backtrack_does_not_stall_the_check(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a pattern that backtracks exponentially in a naive engine, and a title made for it
    url = feed(media, item(1, title="a" * 5_000 + "!"))
    sub = subscribe(api, auth, url=url, backfill="all", filters={"title_include": "^(a+)+$"})

    # When it is checked
    began = time.monotonic()
    outcome = check(runtime, sub["id"])

    # Then the check ends quickly and the entry is filtered
    assert outcome.ok
    assert time.monotonic() - began < 10
    assert entries(api, auth, sub["id"])[0]["state"] == "filtered"


def test_two_checks_racing_make_one_job_per_entry(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription to a feed of five episodes, backfilling all
    url = feed(media, *(item(n) for n in range(5, 0, -1)))
    sub = subscribe(api, auth, url=url, backfill="all")

    # When four checks run at once
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def one() -> None:
        start.wait()
        try:
            check(runtime, sub["id"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    # Then there is exactly one job per entry
    assert errors == []
    urls = sorted(j.url for j in all_jobs(runtime))
    assert len(urls) == 5
    assert len(set(urls)) == 5


def test_two_schedulers_and_a_long_outage_claim_each_due_subscription_once(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription whose checks were due for the last six hours (the scheduler was down)
    sub = subscribe(api, auth, url=feed(media, item(1)))
    check(runtime, sub["id"])  # the first check, made at creation
    take_messages(f"{runtime.settings.queue_prefix}.subscriptions")  # its ring
    with runtime.db.session() as session:
        session.execute(
            sa.update(Subscription).values(next_check_at=sa.func.now() - timedelta(hours=6))
        )

    # When two schedulers tick at the same moment
    start = threading.Barrier(2)
    claimed: list[int] = []

    def scheduler() -> None:
        start.wait()
        claimed.append(tick(runtime))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # Then one check job was made and rung, and the next is one interval from now
    rung = take_messages(f"{runtime.settings.queue_prefix}.subscriptions")
    assert sorted(claimed) == [0, 1]
    shown = api.get(f"/v1/subscriptions/{sub['id']}", headers=auth).json()
    assert shown["check"]["status"] == "queued"
    assert [m["args"] for m, _ in rung] == [[shown["check"]["id"]]]
    due = datetime.fromisoformat(shown["next_check_at"])
    assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)
    # And a tick right after finds nothing due
    assert tick(runtime) == 0


def test_an_unreachable_url_is_accepted_and_pauses_after_repeated_failed_checks(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription to a feed that does not exist
    sub = subscribe(api, auth, url=media.url("/feed-live/never-set.rss"))
    limit = runtime.settings.subscription_max_failures

    # When it is checked once
    check(runtime, sub["id"])

    # Then the failed check is visible on it, and it still runs
    shown = api.get(f"/v1/subscriptions/{sub['id']}", headers=auth).json()
    assert shown["last_check"]["outcome"] == "failed"
    assert "404" in shown["last_check"]["error"]
    assert shown["consecutive_failures"] == 1
    assert shown["paused"] is False

    # When it fails as many times as the limit allows
    for _ in range(limit - 1):
        check(runtime, sub["id"])

    # Then it paused itself and says why
    shown = api.get(f"/v1/subscriptions/{sub['id']}", headers=auth).json()
    assert shown["paused"] is True
    assert shown["next_check_at"] is None
    assert f"after {limit} failed checks" in shown["paused_reason"]

    # And resuming clears the count
    resumed = api.patch(f"/v1/subscriptions/{sub['id']}", json={"paused": False}, headers=auth)
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["paused"], resumed.json()["consecutive_failures"]) == (False, 0)


def test_a_single_item_url_fails_its_check_as_not_a_feed(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    sub = subscribe(api, auth, url=media.url("/media/a.mp4"))

    check(runtime, sub["id"])

    shown = api.get(f"/v1/subscriptions/{sub['id']}", headers=auth).json()
    assert shown["last_check"]["error"].startswith("not_a_feed:")


def test_deleting_a_job_does_not_make_its_entry_download_again(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given an entry downloaded by a subscription
    url = feed(media, item(1))
    sub = subscribe(api, auth, url=url, backfill="all")
    check(runtime, sub["id"])
    download_all(runtime)
    (job,) = jobs_of(runtime, sub["id"])

    # When its job is deleted and the feed is checked again
    assert api.delete(f"/v1/jobs/{job.id}", headers=auth).status_code == 204
    again = check(runtime, sub["id"])

    # Then no job is made; the entry is still seen, without its job
    assert again.queued == 0
    assert all_jobs(runtime) == []
    (seen,) = entries(api, auth, sub["id"])
    assert (seen["state"], seen["job_id"]) == ("queued", None)


def test_keep_last_keeps_the_newest_files_and_the_older_jobs_say_why(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription keeping two files, whose three episodes were downloaded
    url = feed(media, item(3), item(2), item(1))
    sub = subscribe(api, auth, url=url, backfill="all", keep_last=2)
    check(runtime, sub["id"])
    for body, _ in take_messages(f"{runtime.settings.queue_prefix}.download")[::-1]:
        run_download(runtime, uuid.UUID(body["args"][0]))  # oldest episode first

    # When it is checked again
    check(runtime, sub["id"])

    # Then two files are left, of the two jobs that finished last
    with runtime.db.session() as session:
        files = list(session.execute(sa.select(Artifact)).scalars())
    assert len(files) == 2
    stored = [p for p in runtime.settings.storage_dir.rglob("*") if p.is_file()]
    assert len(stored) == 2
    removed = [j for j in all_jobs(runtime) if "file_removed" in j.info]
    assert len(removed) == 1
    assert removed[0].url.endswith("n=1")


def test_delete_with_files_removes_what_it_downloaded(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    sub = subscribe(api, auth, url=feed(media, item(1)), backfill="all")
    check(runtime, sub["id"])
    download_all(runtime)

    gone = api.delete(f"/v1/subscriptions/{sub['id']}?delete_files=true", headers=auth)

    assert gone.status_code == 204
    assert api.get(f"/v1/subscriptions/{sub['id']}", headers=auth).status_code == 404
    assert [p for p in runtime.settings.storage_dir.rglob("*") if p.is_file()] == []
    (job,) = all_jobs(runtime)
    assert job.info["file_removed"] == "its subscription was deleted"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interval_s": 10}, "interval_s"),
        ({"filters": {"title_include": "(unclosed"}}, "title_include"),
        ({"filters": {"title_include": "(?=lookahead)"}}, "title_include"),
        ({"filters": {"title_include": "x" * 201}}, "title_include"),
        ({"filters": {"min_duration_s": 10, "max_duration_s": 5}}, "min_duration_s"),
        ({"backfill": "some"}, "backfill"),
        ({"backfill": 0}, "backfill"),
        ({"surprise": True}, "surprise"),
        ({"url": "ftp://example.com/feed"}, "http"),
    ],
)
def test_bad_input_is_a_422_problem(
    api: TestClient[Litestar], auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    resp = api.post(
        "/v1/subscriptions", json={"url": "https://feeds.example/rss", **body}, headers=auth
    )

    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert field in resp.json()["detail"]


def test_list_pages_with_a_cursor_and_only_admins_list_every_client(
    api: TestClient[Litestar],
    auth: dict[str, str],
    other_auth: dict[str, str],
    runtime: Runtime,
) -> None:
    # Given three subscriptions of one client and one of another
    for n in range(3):
        subscribe(api, auth, url=f"https://feeds.example/{n}.rss")
    theirs = subscribe(api, other_auth, url="https://feeds.example/theirs.rss")

    # When the first client pages through its list, two at a time
    first = api.get("/v1/subscriptions?limit=2", headers=auth).json()
    second = api.get(f"/v1/subscriptions?limit=2&cursor={first['next_cursor']}", headers=auth)

    # Then it sees its three, never the other's, and may not list every client's
    urls = [s["url"] for s in first["items"] + second.json()["items"]]
    assert sorted(urls) == [f"https://feeds.example/{n}.rss" for n in range(3)]
    assert second.json()["next_cursor"] is None
    assert api.get(f"/v1/subscriptions/{theirs['id']}", headers=auth).status_code == 404
    assert api.get("/v1/subscriptions?all=true", headers=auth).status_code == 403


def test_an_entry_admission_refused_stays_pending_and_is_taken_at_a_later_check(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a client that may have one active job, and a feed of three to backfill
    set_limits(runtime, "alice", max_active_jobs=1)
    sub = subscribe(api, auth, url=feed(media, item(3), item(2), item(1)), backfill="all")

    # When it is checked
    check(runtime, sub["id"])

    # Then one entry has a job and the others wait, saying why
    states = sorted((e["state"], e["reason"] or "") for e in entries(api, auth, sub["id"]))
    assert [s for s, _ in states] == ["pending", "pending", "queued"]
    assert any("max_active_jobs" in reason for _, reason in states)

    # When that job ends and the next checks run
    for _ in range(2):
        download_all(runtime)
        check(runtime, sub["id"])
    download_all(runtime)

    # Then every entry was downloaded, once each
    jobs = all_jobs(runtime)
    assert sorted(j.url[-1] for j in jobs) == ["1", "2", "3"]
    assert {j.status for j in jobs} == {"succeeded"}


def test_max_subscriptions_refuses_one_more_with_a_403_problem(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a client allowed one subscription, which it has
    set_limits(runtime, "alice", max_subscriptions=1)
    subscribe(api, auth, url="https://feeds.example/one.rss")

    # When it asks for a second
    resp = api.post(
        "/v1/subscriptions", json={"url": "https://feeds.example/two.rss"}, headers=auth
    )

    # Then it is refused, naming the limit
    assert resp.status_code == 403, resp.text
    assert (resp.json()["limit"], resp.json()["value"], resp.json()["current"]) == (
        "max_subscriptions",
        1,
        1,
    )


def _record_statement(into: list[str], *args: Any) -> None:
    """A statement of the check itself; its heartbeats (one per ``HAUL_HEARTBEAT_S`` while the
    feed is listed, from the lease thread) depend on time, not on the feed."""
    if not threading.current_thread().name.startswith("lease-"):
        into.append(str(args[2]))


def test_a_check_with_nothing_new_costs_the_same_statements_for_50_or_500_entries(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given two subscriptions to feeds of 50 and 500 entries, each checked once already
    counts = {}
    for size in (50, 500):
        sub = subscribe(api, auth, url=feed(media, *(item(n) for n in range(size, 0, -1))))
        check(runtime, sub["id"])

        # When it is checked again with nothing new, counting the SQL statements
        statements: list[str] = []
        count = functools.partial(_record_statement, statements)
        sa.event.listen(runtime.db.engine, "before_cursor_execute", count)
        try:
            began = time.monotonic()
            outcome = check(runtime, sub["id"])
            elapsed_ms = (time.monotonic() - began) * 1000
        finally:
            sa.event.remove(runtime.db.engine, "before_cursor_execute", count)
        assert (outcome.listed, outcome.new, outcome.queued) == (size, 0, 0)
        counts[size] = len(statements)
        print(f"{size} entries, nothing new: {elapsed_ms:.0f} ms, {len(statements)} statements")

    # Then the number of statements does not grow with the feed
    assert counts[50] == counts[500]


def test_metrics_count_subscriptions_and_their_entries(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a checked subscription of two entries and one whose check failed
    ok = subscribe(api, auth, url=feed(media, item(2), item(1)))
    failing = subscribe(api, auth, url=media.url("/media/a.mp4"))
    check(runtime, ok["id"])
    check(runtime, failing["id"])

    # When Prometheus scrapes the API
    text = api.get("/metrics").text

    # Then it sees them by state, and the entries by what became of them
    assert 'haul_subscriptions{state="ok"} 1.0' in text
    assert 'haul_subscriptions{state="failing"} 1.0' in text
    assert 'haul_subscription_entries{state="before_backfill"} 2.0' in text
    assert "haul_subscriptions_overdue_seconds" in text


def test_a_check_that_cannot_be_published_says_so_and_the_sweep_rings_again(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a subscription whose first check ran, and a broker that refuses every message
    sub = subscribe(api, auth, url=feed(media, item(1)))
    check(runtime, sub["id"])
    take_messages(f"{runtime.settings.queue_prefix}.subscriptions")
    publish = runtime.publish

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    runtime.publish = refuse  # type: ignore[method-assign]

    # When "check now" is asked
    resp = api.post(f"/v1/subscriptions/{sub['id']}/check", headers=auth)

    # Then it is accepted: its check job waits, saying its message was not sent
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["check"]["id"]
    assert resp.headers["location"] == f"/v1/jobs/{job_id}"
    shown = api.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert (shown["status"], shown["kind"]) == ("queued", "check")
    assert shown["last_error"].startswith("publish failed:")

    # When the broker is back and the republish sweep runs (the row aged past its wait)
    runtime.publish = publish  # type: ignore[method-assign]
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == uuid.UUID(job_id))
            .values(queued_at=sa.func.now() - timedelta(minutes=1))
        )
    assert sweeps.unpublished(runtime) == 1

    # Then the check is rung, and runs
    rung = take_messages(f"{runtime.settings.queue_prefix}.subscriptions")
    assert [m["args"] for m, _ in rung] == [[job_id]]
    assert run_check(runtime, uuid.UUID(job_id)) is not None
