"""Playlist trees on a real database, through the API where a client would act.

A parent shows its entries by state and its overall progress (one grouped query per
page); retrying an ended parent queues the entries its ending calls for, with fresh
budgets, and reopens it; bulk retry does the same per match; and the parent and its
entries agree when a retry and an entry's finish meet.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import finders, transitions, trees
from service.db import replay as replay_rows
from service.db.models import Job, JobEvent, WebhookDelivery
from service.db.replay import EndedJobs
from service.domain.states import Phase, Status, Step
from service.errors import Conflict, NotFound
from service.intake import replay
from service.intake.jobs import JobView, cancel, delete
from tests.support.api import client_of, problem
from tests.support.jobs import blocked_on_a_lock, insert, row
from tests.support.rabbitmq import queue_depth, take_messages
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar
    from litestar.testing import TestClient
    from sqlmodel import Session

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

FEED = "https://media.example/feed.rss"
HOOK = "https://hooks.example/haul"
OWNER = "worker-1/abcd"


def _parent_fields(status: str) -> dict[str, Any]:
    ended = {"finished_at": datetime.now(UTC)}
    return {
        "running": {"phase": "awaiting_children"},
        "failed": {**ended, "error_class": "children_failed", "error_message": "some failed"},
        "cancelled": ended,
        "succeeded": {**ended, "progress": 1.0},
    }[status]


def _entry_fields(status: str, error_class: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "queued": {},
        "running": {
            "phase": "downloading",
            "attempts": 1,
            "lease_owner": OWNER,
            "lease_expires_at": now + timedelta(minutes=5),
        },
        "succeeded": {"finished_at": now, "progress": 1.0, "attempts": 1},
        "failed": {
            "finished_at": now,
            "attempts": 2,
            "error_class": error_class,
            "error_message": f"{error_class}: it broke",
            "dead_lettered_at": now,
        },
        "cancelled": {"finished_at": now},
    }[status]


def playlist(
    runtime: Runtime,
    client_id: uuid.UUID,
    status: str,
    *entries: str,
    progress: float | None = None,
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A parent in ``status`` with one entry per given state (``failed:http_404`` names
    the error class), stored as the workers leave them; ``progress`` is a running entry's."""
    parent = Job(
        client_id=client_id,
        url=FEED,
        status=status,
        callback_url=HOOK,
        attempts=1,
        **_parent_fields(status),
    )
    children = []
    for n, spec in enumerate(entries):
        entry, _, error_class = spec.partition(":")
        fields = _entry_fields(entry, error_class or "http_5xx")
        if entry == "running":
            fields["progress"] = progress
        children.append(
            Job(
                client_id=client_id,
                parent_id=parent.id,
                url=f"https://media.example/{n}.mp4",
                step="download",
                status=entry,
                max_attempts=2,
                **fields,
            )
        )
    insert(runtime, parent)
    return parent.id, insert(runtime, *children)


def finish_entry(runtime: Runtime, job_id: uuid.UUID, to: Status) -> Job | None:
    """End an entry as a worker does: claim it, move it, close its parent if that was the
    last; returns the parent if it closed."""
    with runtime.db.session() as session:
        lease = timedelta(minutes=1)
        claimed = transitions.claim(session, job_id, Step.DOWNLOAD, OWNER, lease, Phase.DOWNLOADING)
        assert claimed is not None and claimed.parent_id is not None
        assert transitions.end_job(session, job_id, to, owner=OWNER) is not None
        return trees.finish_parent_if_done(session, claimed.parent_id)


def statuses(runtime: Runtime, job_ids: list[uuid.UUID]) -> list[str]:
    return [row(runtime, j).status for j in job_ids]  # type: ignore[union-attr]


def events_of(runtime: Runtime, job_id: uuid.UUID) -> list[tuple[str, str | None]]:
    """The job's state changes as the trigger recorded them (what SSE replays)."""
    with runtime.db.session() as session:
        stmt = sa.select(JobEvent.status, JobEvent.phase).where(JobEvent.job_id == job_id)
        return [(s, p) for s, p in session.execute(stmt.order_by(JobEvent.id))]


def events_sent(runtime: Runtime, job_id: uuid.UUID) -> list[str]:
    """The webhook events the outbox trigger wrote for the job, oldest first."""
    with runtime.db.session() as session:
        stmt = sa.select(WebhookDelivery.event).where(WebhookDelivery.job_id == job_id)
        return list(session.execute(stmt.order_by(WebhookDelivery.created_at)).scalars())


def announced(settings: Settings, step: str) -> list[str]:
    return sorted(m["args"][0] for m, _ in take_messages(f"{settings.queue_prefix}.{step}"))


# --- what a parent shows ------------------------------------------------------------------------


def test_a_parent_shows_its_entries_by_state_and_its_overall_progress(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a playlist whose entries are done, failed, half-way and waiting
    owner = client_of(runtime, auth).id
    parent, _ = playlist(
        runtime, owner, "running", "succeeded", "failed", "running", "queued", progress=0.5
    )
    # When its owner reads it, and lists it
    shown = api.get(f"/v1/jobs/{parent}", headers=auth).json()
    listed = api.get("/v1/jobs", headers=auth).json()["items"]
    # Then ended entries count as done, the running one by its progress, the queued one not
    expected = {
        "total": 4,
        "progress": (1 + 1 + 0.5 + 0) / 4,
        "queued": 1,
        "running": 1,
        "retrying": 0,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
    }
    assert shown["children"] == expected
    by_id = {item["id"]: item for item in listed}
    assert by_id[str(parent)]["children"] == expected
    assert all(item["children"] is None for item in listed if item["id"] != str(parent))


def _statements_to_list(api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime) -> int:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(runtime.db.engine, "before_cursor_execute", count)
    try:
        assert api.get("/v1/jobs", headers=auth).status_code == 200
    finally:
        sa.event.remove(runtime.db.engine, "before_cursor_execute", count)
    return len(seen)


def test_a_page_of_playlists_reads_their_entries_in_one_query(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given one playlist, then six
    owner = client_of(runtime, auth).id
    playlist(runtime, owner, "running", "succeeded", "running", progress=0.2)
    one = _statements_to_list(api, auth, runtime)
    for _ in range(5):
        playlist(runtime, owner, "running", "queued", "running", progress=0.7)
    six = _statements_to_list(api, auth, runtime)
    # Then listing them costs the same statements: nothing is read per parent
    assert six == one


# --- retrying a parent --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries_end", "parent_ends", "message"),
    [
        (Status.SUCCEEDED, "succeeded", None),
        (Status.FAILED, "failed", "2 of 4 entries failed"),
    ],
)
def test_a_retried_playlist_queues_its_failed_entries_afresh_and_ends_again(
    api: TestClient[Litestar],
    auth: dict[str, str],
    runtime: Runtime,
    settings: Settings,
    entries_end: Status,
    parent_ends: str,
    message: str | None,
) -> None:
    # Given a playlist that failed: one entry done, two failed, one cancelled on its own
    owner = client_of(runtime, auth).id
    parent, (done, failed_a, failed_b, dropped) = playlist(
        runtime, owner, "failed", "succeeded", "failed", "failed", "cancelled"
    )
    # When its owner retries it
    response = api.post(f"/v1/jobs/{parent}/retry", headers=auth)
    # Then it waits on its entries again, without being probed again
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["phase"]) == ("running", "awaiting_children")
    assert body["error"] is None and body["finished_at"] is None
    assert body["children"]["queued"] == 2
    assert body["children"]["progress"] == 0.5
    # and exactly its failed entries are queued, with a fresh budget, and announced
    assert statuses(runtime, [done, failed_a, failed_b, dropped]) == [
        "succeeded",
        "queued",
        "queued",
        "cancelled",
    ]
    for entry in (row(runtime, failed_a), row(runtime, failed_b)):
        assert entry is not None
        assert (entry.attempts, entry.error_class, entry.dead_lettered_at) == (0, None, None)
        assert entry.published_at is not None
    assert announced(settings, "download") == sorted([str(failed_a), str(failed_b)])
    assert queue_depth(f"{settings.queue_prefix}.probe") == 0
    # When both entries end again, the last one closes the parent by what they did
    assert finish_entry(runtime, failed_a, entries_end) is None
    closed = finish_entry(runtime, failed_b, entries_end)
    assert closed is not None
    assert (closed.status, closed.error_message) == (parent_ends, message)
    # and the triggers saw it all: the reopening, the new end, and one new webhook event
    assert events_of(runtime, parent) == [
        ("failed", None),
        ("running", "awaiting_children"),
        (parent_ends, None),
    ]
    assert events_sent(runtime, parent) == [f"job.{parent_ends}"]


def test_retrying_a_cancelled_playlist_resumes_every_entry_that_did_not_succeed(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, settings: Settings
) -> None:
    # Given a playlist cancelled mid-way: one entry done, one failed, two stopped
    owner = client_of(runtime, auth).id
    parent, entries = playlist(
        runtime, owner, "cancelled", "succeeded", "failed", "cancelled", "cancelled"
    )
    # When its owner retries it
    response = api.post(f"/v1/jobs/{parent}/retry", headers=auth)
    # Then all but the finished entry run again
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    assert statuses(runtime, entries) == ["succeeded", "queued", "queued", "queued"]
    assert announced(settings, "download") == sorted(str(e) for e in entries[1:])


def test_a_playlist_with_no_entry_left_to_retry_stays_as_it_ended(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a failed playlist whose failed entry was deleted since
    owner = client_of(runtime, auth).id
    parent, _ = playlist(runtime, owner, "failed", "succeeded", "cancelled")
    # When its owner retries it, then it is a conflict that says why, and nothing moved
    body = problem(api.post(f"/v1/jobs/{parent}/retry", headers=auth), 409)
    assert "no entry" in body["detail"]
    assert row(runtime, parent).status == "failed"  # type: ignore[union-attr]


def test_retrying_one_entry_reopens_its_ended_playlist(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a failed playlist with two failed entries
    owner = client_of(runtime, auth).id
    parent, (first, second, _) = playlist(runtime, owner, "failed", "failed", "failed", "succeeded")
    # When its owner retries only the first
    assert api.post(f"/v1/jobs/{first}/retry", headers=auth).status_code == 202
    # Then the playlist waits for it, the other failed entry stays failed
    assert row(runtime, parent).status == "running"  # type: ignore[union-attr]
    assert statuses(runtime, [first, second]) == ["queued", "failed"]
    # and when it succeeds the playlist ends again, still failed for the other one
    closed = finish_entry(runtime, first, Status.SUCCEEDED)
    assert closed is not None
    assert (closed.status, closed.error_message) == ("failed", "1 of 3 entries failed")


def test_an_entry_of_a_succeeded_playlist_is_not_retried(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a playlist that succeeded although one entry was cancelled on its own
    owner = client_of(runtime, auth).id
    parent, (dropped, _) = playlist(runtime, owner, "succeeded", "cancelled", "succeeded")
    # When its owner retries that entry, alone or in bulk
    body = problem(api.post(f"/v1/jobs/{dropped}/retry", headers=auth), 409)
    bulk = api.post("/v1/jobs/retry", json={"status": "cancelled"}, headers=auth)
    # Then it stays cancelled: the playlist could not follow it
    assert "succeeded" in body["detail"]
    assert bulk.json() == {"requeued": 0}
    assert statuses(runtime, [dropped, parent]) == ["cancelled", "succeeded"]


# --- bulk retry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_class", "queued"),
    [(None, {"single", "5xx", "404", "open 5xx"}), ("http_5xx", {"single", "5xx", "open 5xx"})],
    ids=["every-failure", "one-error-class"],
)
def test_bulk_retry_takes_a_playlist_through_its_entries(
    api: TestClient[Litestar],
    auth: dict[str, str],
    other_auth: dict[str, str],
    runtime: Runtime,
    error_class: str | None,
    queued: set[str],
) -> None:
    # Given a failed job, a failed playlist (a 5xx entry, a 404 entry, a finished one),
    # a playlist still running with a failed entry, and another client's failed playlist
    mine = client_of(runtime, auth).id
    (single,) = insert(
        runtime, Job(client_id=mine, url=FEED, status="failed", error_class="http_5xx")
    )
    ended, (e5xx, e404, _) = playlist(
        runtime, mine, "failed", "failed:http_5xx", "failed:http_404", "succeeded"
    )
    open_, (open_5xx, _) = playlist(runtime, mine, "running", "failed:http_5xx", "running")
    theirs, their_entries = playlist(
        runtime, client_of(runtime, other_auth).id, "failed", "failed:http_5xx"
    )
    named = {"single": single, "5xx": e5xx, "404": e404, "open 5xx": open_5xx}
    # When the client replays its failures (of one class, or all)
    response = api.post(
        "/v1/jobs/retry", json={"status": "failed", "error_class": error_class}, headers=auth
    )
    # Then each matching job runs again, and each playlist they belong to waits for them
    assert response.status_code == 200, response.text
    assert response.json() == {"requeued": len(queued)}
    now = dict(zip(named, statuses(runtime, list(named.values())), strict=True))
    assert {name for name, status in now.items() if status == "queued"} == queued
    assert statuses(runtime, [ended, open_]) == ["running", "running"]
    assert statuses(runtime, [theirs, *their_entries]) == ["failed", "failed"]


# --- a retry meeting an entry's finish ----------------------------------------------------------


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    return thread, result


def _finish_running_entry(runtime: Runtime, entry: uuid.UUID, parent: uuid.UUID) -> Job | None:
    with runtime.db.session() as session:
        assert transitions.end_job(session, entry, Status.SUCCEEDED, owner=OWNER) is not None
        return trees.finish_parent_if_done(session, parent)


def test_an_entry_finishing_during_a_retry_waits_and_leaves_the_playlist_open(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a running playlist: its last running entry and one failed entry
    owner = client_of(runtime, auth).id
    parent, (running, failed) = playlist(runtime, owner, "running", "running", "failed")
    # When a retry of the failed entry has queued it but not committed yet
    with runtime.db.session() as session:
        assert replay_rows.replay(session, EndedJobs((Status.FAILED,), job_id=failed))
        trees.reopen_parents(session, {parent})
        # and the running entry finishes meanwhile
        thread, closed = _in_thread(lambda: _finish_running_entry(runtime, running, parent))
        # Then the finish waits for the retry (it locked the parent)
        wait_for(lambda: blocked_on_a_lock(runtime), timeout=10, what="the finish to wait")
    thread.join(timeout=10)
    # and then counts the queued entry: the playlist stays open for it
    assert closed == [None]
    assert row(runtime, parent).status == "running"  # type: ignore[union-attr]
    assert statuses(runtime, [running, failed]) == ["succeeded", "queued"]


def test_a_retry_after_an_entry_closed_the_playlist_reopens_it(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a running playlist: its last running entry and one failed entry
    owner = client_of(runtime, auth).id
    parent, (running, failed) = playlist(runtime, owner, "running", "running", "failed")
    client = client_of(runtime, auth)
    # When the running entry finishes and closes the playlist, not committed yet
    with runtime.db.session() as session:
        assert transitions.end_job(session, running, Status.SUCCEEDED, owner=OWNER) is not None
        closing = trees.finish_parent_if_done(session, parent)
        assert closing is not None and closing.status == "failed"
        # and its owner retries the failed entry meanwhile
        thread, retried = _in_thread(lambda: replay.retry_one(runtime, client, failed))
        # Then the retry waits for the finish
        wait_for(lambda: blocked_on_a_lock(runtime), timeout=10, what="the retry to wait")
    thread.join(timeout=10)
    # and then reopens the playlist it closed
    assert len(retried) == 1 and not isinstance(retried[0], Conflict)
    assert row(runtime, parent).status == "running"  # type: ignore[union-attr]
    assert statuses(runtime, [running, failed]) == ["succeeded", "queued"]
    assert [s for s, _ in events_of(runtime, parent)] == ["running", "failed", "running"]


# --- a cancel or a delete meeting a retry or a finish -------------------------------------------


def _second_waits_for_first(
    runtime: Runtime,
    first: Callable[[Session], object],
    second: Callable[[], object],
    then: Callable[[Session], object] = lambda _: None,
) -> object:
    """Run ``first`` in a transaction and ``second`` in a thread meanwhile; check that the
    second waits on a lock, finish the first with ``then`` and commit; return what the
    second returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(second())
        except Exception as exc:
            outcome.append(exc)

    with runtime.db.session() as session:
        first(session)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait_for(lambda: blocked_on_a_lock(runtime), timeout=10, what="the second to wait")
        then(session)
    thread.join(timeout=10)
    assert len(outcome) == 1, "the second did not end after the first committed"
    return outcome[0]


def _during_a_retry(
    runtime: Runtime, entry: uuid.UUID, parent: uuid.UUID, second: Callable[[], object]
) -> object:
    """``second`` run while a retry of ``entry`` has queued it and not yet locked its
    playlist; the retry then reopens the playlist and commits."""
    return _second_waits_for_first(
        runtime,
        lambda session: replay_rows.replay(session, EndedJobs((Status.FAILED,), job_id=entry)),
        second,
        then=lambda session: trees.reopen_parents(session, {parent}),
    )


def test_a_cancel_during_a_retry_of_an_entry_waits_and_cancels_that_entry_too(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a running playlist: a running entry and a failed one
    client = client_of(runtime, auth)
    parent, (running, failed) = playlist(runtime, client.id, "running", "running", "failed")
    # When a retry of the failed entry has queued it, not yet reached the playlist,
    # and its owner cancels the playlist meanwhile
    cancelled = _during_a_retry(runtime, failed, parent, lambda: cancel(runtime, client, parent))
    # Then the cancel waited for the retry (it locks the entries first) and then
    # cancelled the entry the retry queued: nothing is left live under it
    assert isinstance(cancelled, JobView), cancelled
    assert statuses(runtime, [parent, running, failed]) == ["cancelled"] * 3


def test_a_retry_of_an_entry_during_a_cancel_waits_and_reopens_the_playlist(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a running playlist: a running entry and a failed one
    client = client_of(runtime, auth)
    parent, (running, failed) = playlist(runtime, client.id, "running", "running", "failed")
    # When a cancel of the playlist has run, not committed, and the failed entry is retried
    retried = _second_waits_for_first(
        runtime,
        lambda session: trees.cancel_tree(session, parent),
        lambda: replay.retry_one(runtime, client, failed),
    )
    # Then the retry waited, then queued the entry and reopened the playlist for it
    assert isinstance(retried, JobView), retried
    assert statuses(runtime, [parent, running, failed]) == ["running", "cancelled", "queued"]


def test_a_cancel_during_an_entry_finish_waits_and_finds_the_playlist_ended(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a running playlist: its last running entry and a failed one
    client = client_of(runtime, auth)
    parent, (running, failed) = playlist(runtime, client.id, "running", "running", "failed")
    # When the running entry's worker has moved it to succeeded, not yet closed the
    # playlist, and its owner cancels the playlist meanwhile
    cancelled = _second_waits_for_first(
        runtime,
        lambda session: transitions.end_job(session, running, Status.SUCCEEDED, owner=OWNER),
        lambda: cancel(runtime, client, parent),
        then=lambda session: trees.finish_parent_if_done(session, parent),
    )
    # Then the cancel waited for the finish, which closed the playlist (no deadlock),
    # and is told the playlist ended meanwhile
    assert isinstance(cancelled, Conflict), cancelled
    assert statuses(runtime, [parent, running, failed]) == ["failed", "succeeded", "failed"]


def test_a_delete_during_a_retry_of_an_entry_waits_and_deletes_the_playlist(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a failed playlist with a failed entry
    client = client_of(runtime, auth)
    parent, (done, failed) = playlist(runtime, client.id, "failed", "succeeded", "failed")
    # When a retry of the entry has queued it, not yet reopened the playlist, and its
    # owner deletes the playlist meanwhile
    deleted = _during_a_retry(runtime, failed, parent, lambda: delete(runtime, client, parent))
    # Then the delete waited for the retry (no deadlock) and deleted the whole playlist
    assert deleted is None
    assert [row(runtime, j) for j in (parent, done, failed)] == [None, None, None]


def test_a_retry_of_an_entry_during_a_delete_waits_and_finds_it_gone(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a failed playlist with a failed entry
    client = client_of(runtime, auth)
    parent, (done, failed) = playlist(runtime, client.id, "failed", "succeeded", "failed")
    # When a delete of the playlist has run, not committed, and the entry is retried
    retried = _second_waits_for_first(
        runtime,
        lambda session: trees.delete_tree(session, parent),
        lambda: replay.retry_one(runtime, client, failed),
    )
    # Then the retry waited and answers that there is no such job (a 404, not a 500)
    assert isinstance(retried, NotFound), retried
    assert [row(runtime, j) for j in (parent, done, failed)] == [None, None, None]


# --- a parent's own progress --------------------------------------------------------------------


def test_a_parent_s_own_progress_moves_as_entries_end_and_at_most_once_per_interval_between(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a running playlist: two entries queued, one half-way
    owner = client_of(runtime, auth).id
    parent, (first, _, running) = playlist(
        runtime, owner, "running", "queued", "queued", "running", progress=0.5
    )
    # When the first entry ends, its finish writes the playlist's progress on the parent
    assert finish_entry(runtime, first, Status.SUCCEEDED) is None
    assert row(runtime, parent).progress == (1 + 0.5) / 3  # type: ignore[union-attr]
    # and a heartbeat of the running one moves it only once the parent's row is old enough
    with runtime.db.session() as session:
        assert transitions.heartbeat(session, running, OWNER, timedelta(minutes=1), progress=0.8)
        trees.spread_progress(session, parent, timedelta(minutes=5))
    assert row(runtime, parent).progress == (1 + 0.5) / 3  # type: ignore[union-attr]
    with runtime.db.session() as session:
        trees.spread_progress(session, parent, timedelta(0))
    assert row(runtime, parent).progress == (1 + 0.8) / 3  # type: ignore[union-attr]


def test_retention_during_a_retry_of_an_entry_waits_and_spares_the_reopened_playlist(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given an ended playlist past its retention (any age counts here)
    client = client_of(runtime, auth)
    parent, (done, failed) = playlist(runtime, client.id, "failed", "succeeded", "failed")

    def prune() -> object:
        with runtime.db.session() as session:
            return finders.prune_ended(session, timedelta(0), 10)

    # When a retry of its failed entry has queued it, not yet reopened the playlist,
    # and the retention sweep runs meanwhile
    pruned = _during_a_retry(runtime, failed, parent, prune)
    # Then the sweep waited for the retry (it locks entries first), found the playlist
    # reopened, and deleted nothing
    assert pruned == []
    assert statuses(runtime, [parent, done, failed]) == ["running", "succeeded", "queued"]
