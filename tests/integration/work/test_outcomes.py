"""How an attempt ends on the row (``work/outcomes.py``), on a real database and RabbitMQ:
handed back, failed, released for a retry (throttled or not), the site answering, the
broker's retry and dead letter; each with the attempt's own row, what is logged and
measured, and nothing written by a worker that no longer holds the job.

The use cases (``test_download.py``, ``test_guarantees.py``) show these through a whole
attempt; these pin each ending on its own, so that a changed one fails here in seconds
(mutation testing, docs/testing.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
import structlog
from pydantic import SecretStr

from service.db import extractions, transitions
from service.db.cookies import SiteCookies
from service.db.extractions import JobExtraction
from service.db.models import SiteBreaker, WebhookDelivery
from service.domain.errors import ErrorClass
from service.domain.states import AttemptOutcome, Phase, Status, Step
from service.errors import Permanent, Transient
from service.intake.clients import create_client
from service.observe import worker_metrics
from service.webhooks.endpoints import set_default_endpoint
from service.work import outcomes, storage
from tests.support.jobs import attempts_of, must
from tests.support.logs import captured
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from service.db.models import Client, Job
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

OWNER = "worker-1/abcd"
OTHER = "worker-2/efgh"
LEASE = timedelta(minutes=5)
NOT_FOUND = ErrorClass.http(404)
#: A job on a site (the submit writes its family, as job_rows.insert does).
ON_SITE = {"url": "https://www.youtube.com/watch?v=1", "site": "youtube.com"}


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, AttemptOutcome, float]]:
    """What the worker's metrics are told of each finished attempt (step, outcome, seconds):
    they are only recorded in a worker process, so the test takes the call."""
    told: list[tuple[str, AttemptOutcome, float]] = []
    monkeypatch.setattr(worker_metrics, "attempt_finished", lambda *a: told.append(a))
    return told


def claimed(runtime: Runtime, job_id: uuid.UUID, owner: str = OWNER) -> Job:
    """The job as a worker's claim leaves it: running under ``owner``, its attempt open."""
    with runtime.db.session() as session:
        taken = transitions.claim_attempt(
            session, job_id, Step.DOWNLOAD, owner, LEASE, Phase.DOWNLOADING, "2026.01.01"
        )
    assert taken is not None
    return taken.job


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


# -- outcome_of, close_attempt --------------------------------------------------------------


def test_a_final_write_that_matched_no_row_was_abandoned(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    assert outcomes.outcome_of(None) is AttemptOutcome.ABANDONED
    assert outcomes.outcome_of(must(runtime, job())) is AttemptOutcome.SUCCEEDED


def test_closing_an_attempt_writes_its_row_logs_one_line_and_measures_it(
    runtime: Runtime, job: Callable[..., uuid.UUID], measured: list[Any]
) -> None:
    running = claimed(runtime, job())
    with captured(outcomes) as logs, runtime.db.session() as session:
        outcomes.close_attempt(
            session,
            running.id,
            OWNER,
            AttemptOutcome.RETRY,
            error_class=ErrorClass.HTTP_5XX,
            error_message="HTTP Error 503",
        )
    (attempt,) = attempts_of(runtime, running.id)
    assert (attempt.outcome, attempt.error_class, attempt.error_message) == (
        AttemptOutcome.RETRY,
        ErrorClass.HTTP_5XX,
        "HTTP Error 503",
    )
    assert attempt.finished_at is not None and attempt.started_at is not None
    seconds = (attempt.finished_at - attempt.started_at).total_seconds()
    assert measured == [(Step.DOWNLOAD.value, AttemptOutcome.RETRY, seconds)]
    (line,) = events(logs, "attempt finished")
    assert line == {
        "event": "attempt finished",
        "log_level": "info",
        "job_id": str(running.id),
        "attempt": 1,
        "step": Step.DOWNLOAD.value,
        "outcome": AttemptOutcome.RETRY,
        "duration_s": round(seconds, 3),
        "error_class": ErrorClass.HTTP_5XX,
    }


def test_closing_an_attempt_writes_what_goes_along_in_the_same_statement(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    running = claimed(runtime, job())
    with runtime.db.session() as session:
        keep = extractions.kept(running.id, {"title": "kept by the probe"})
        outcomes.close_attempt(session, running.id, OWNER, AttemptOutcome.SUCCEEDED, along=keep)
    with runtime.db.session() as session:
        kept = session.get(JobExtraction, running.id)
        assert kept is not None and kept.info == {"title": "kept by the probe"}


def test_closing_an_attempt_this_worker_does_not_hold_writes_logs_and_measures_nothing(
    runtime: Runtime, job: Callable[..., uuid.UUID], measured: list[Any]
) -> None:
    running = claimed(runtime, job(), owner=OTHER)
    with captured(outcomes) as logs, runtime.db.session() as session:
        outcomes.close_attempt(session, running.id, OWNER, AttemptOutcome.FAILED)
    (attempt,) = attempts_of(runtime, running.id)
    assert attempt.finished_at is None
    assert measured == []
    assert events(logs, "attempt finished") == []


# -- hand_back ------------------------------------------------------------------------------


def test_a_worker_going_away_hands_the_job_back_without_spending_an_attempt(
    runtime: Runtime, job: Callable[..., uuid.UUID], measured: list[Any]
) -> None:
    running = claimed(runtime, job())
    with captured(outcomes) as logs:
        outcomes.hand_back(runtime, running, OWNER, structlog.get_logger())
    after = must(runtime, running.id)
    assert (after.status, after.attempts, after.lease_owner) == (Status.QUEUED.value, 0, None)
    assert after.published_at is not None, "queued again at once: its message is sent"
    queue = f"{runtime.settings.queue_prefix}.{Step.DOWNLOAD.value}"
    assert [body["args"][0] for body, _ in take_messages(queue)] == [str(running.id)]
    (attempt,) = attempts_of(runtime, running.id)
    assert (attempt.outcome, attempt.error_message) == (
        AttemptOutcome.HANDED_BACK,
        "the worker shut down",
    )
    assert [(e["log_level"], e.get("reason")) for e in events(logs, "handed back")] == [
        ("info", "worker shutdown")
    ]


def test_a_former_owner_hands_back_nothing_and_sends_nothing(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    running = claimed(runtime, job(), owner=OTHER)
    outcomes.hand_back(runtime, running, OWNER, structlog.get_logger())
    after = must(runtime, running.id)
    assert (after.status, after.attempts, after.lease_owner) == (Status.RUNNING.value, 1, OTHER)
    queue = f"{runtime.settings.queue_prefix}.{Step.DOWNLOAD.value}"
    assert take_messages(queue) == []
    assert attempts_of(runtime, running.id)[0].finished_at is None


# -- fail -----------------------------------------------------------------------------------


def test_a_permanent_error_fails_the_job_and_closes_its_attempt(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    running = claimed(runtime, job())
    error = Permanent("HTTP Error 404: Not Found", error_class=NOT_FOUND)
    with captured(outcomes) as logs:
        outcomes.fail(runtime, running, OWNER, error, structlog.get_logger())
    after = must(runtime, running.id)
    assert (after.status, after.error_class, after.error_message) == (
        Status.FAILED.value,
        NOT_FOUND.value,
        "HTTP Error 404: Not Found",
    )
    assert (after.lease_owner, after.finished_at is not None) == (None, True)
    (attempt,) = attempts_of(runtime, running.id)
    assert (attempt.outcome, attempt.error_class, attempt.error_message) == (
        AttemptOutcome.FAILED,
        NOT_FOUND,
        "HTTP Error 404: Not Found",
    )
    (line,) = events(logs, "failed")
    assert (line["error_class"], line["error"]) == (
        NOT_FOUND,
        "HTTP Error 404: Not Found",
    )


@pytest.mark.parametrize("holder", ["another worker", "nobody: it was cancelled"])
def test_a_permanent_error_of_a_worker_that_lost_the_job_changes_nothing(
    runtime: Runtime, job: Callable[..., uuid.UUID], holder: str
) -> None:
    running = claimed(runtime, job(), owner=OTHER if holder == "another worker" else OWNER)
    if holder != "another worker":
        with runtime.db.session() as session:
            assert transitions.end_job(session, running.id, Status.CANCELLED) is not None
    before = must(runtime, running.id)
    outcomes.fail(runtime, running, OWNER, Permanent("gone"), structlog.get_logger())
    assert must(runtime, running.id) == before


# -- release_for_retry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "error_class", "message"),
    [
        (
            Transient("HTTP Error 503: Service Unavailable", error_class=ErrorClass.HTTP_5XX),
            ErrorClass.HTTP_5XX,
            "HTTP Error 503: Service Unavailable",
        ),
        (KeyError("formats"), "KeyError", "'formats'"),
        (TimeoutError(), "TimeoutError", "TimeoutError"),
    ],
    ids=["classified", "unexpected", "no message"],
)
def test_a_failed_attempt_is_released_for_a_retry_with_its_error(
    runtime: Runtime,
    job: Callable[..., uuid.UUID],
    error: BaseException,
    error_class: str,
    message: str,
) -> None:
    running = claimed(runtime, job())
    with captured(outcomes) as logs:
        outcomes.release_for_retry(runtime, running, OWNER, error, structlog.get_logger())
    after = must(runtime, running.id)
    assert (after.status, after.lease_owner, after.phase) == (Status.RETRYING.value, None, None)
    assert (after.last_error, after.last_error_class) == (f"{error_class}: {message}", error_class)
    (attempt,) = attempts_of(runtime, running.id)
    assert (attempt.outcome, attempt.error_class, attempt.error_message) == (
        AttemptOutcome.RETRY,
        error_class,
        message,
    )
    (line,) = events(logs, "attempt failed, will retry")
    assert (line["log_level"], line["error_class"], line["error"]) == (
        "warning",
        error_class,
        message,
    )


def test_a_long_error_is_cut_to_what_the_row_keeps(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    running = claimed(runtime, job())
    error = Transient("x" * 3000, error_class=ErrorClass.HTTP_5XX)
    outcomes.release_for_retry(runtime, running, OWNER, error, structlog.get_logger())
    after = must(runtime, running.id)
    assert after.last_error == f"{ErrorClass.HTTP_5XX}: {'x' * 3000}"[:2000]
    assert attempts_of(runtime, running.id)[0].error_message == "x" * 2000


def test_a_released_attempt_leaves_no_file_in_storage(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    running = claimed(runtime, job())
    stored = storage.job_dir(runtime.settings.storage_dir, running.client_id, running.id)
    stored.mkdir(parents=True)
    (stored / "v.mp4").write_bytes(b"moved in before the error")
    outcomes.release_for_retry(runtime, running, OWNER, Transient("x"), structlog.get_logger())
    assert not stored.exists()


def test_a_release_by_a_worker_that_lost_the_job_keeps_the_new_owners_row_and_files(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    running = claimed(runtime, job(), owner=OTHER)
    stored = storage.job_dir(runtime.settings.storage_dir, running.client_id, running.id)
    stored.mkdir(parents=True)
    (stored / "v.mp4").write_bytes(b"the new owner's")
    before = must(runtime, running.id)
    outcomes.release_for_retry(runtime, running, OWNER, Transient("x"), structlog.get_logger())
    assert must(runtime, running.id) == before
    assert (stored / "v.mp4").exists()


def test_a_release_the_database_refuses_is_logged_for_the_lease_sweep(
    runtime: Runtime, job: Callable[..., uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = claimed(runtime, job())
    monkeypatch.setattr(runtime.settings, "database_wait_s", 0.0)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise sa.exc.OperationalError("UPDATE jobs", {}, Exception("the database is gone"))

    monkeypatch.setattr(transitions, "move", refused)
    with captured(outcomes) as logs:
        outcomes.release_for_retry(runtime, running, OWNER, Transient("x"), structlog.get_logger())
    refused_line = "could not record the failed attempt; the lease sweep will"
    assert [e["log_level"] for e in events(logs, refused_line)] == ["error"]
    assert must(runtime, running.id).status == Status.RUNNING.value


# -- throttled: the site's breaker -----------------------------------------------------------


def breaker(runtime: Runtime) -> SiteBreaker | None:
    with runtime.db.session() as session:
        return session.execute(sa.select(SiteBreaker)).scalars().first()


def admins_deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    with runtime.db.session() as session:
        return list(session.execute(sa.select(WebhookDelivery)).scalars())


def test_throttles_count_against_the_sites_breaker_until_it_opens_and_the_retry_waits(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    admin, _ = create_client(runtime, "ops", admin=True)
    set_default_endpoint(runtime, admin, "https://hooks.example/ops")
    threshold = runtime.settings.breaker_threshold
    waits = []
    for n in range(threshold):
        running = claimed(runtime, job(**ON_SITE))
        error = Transient("HTTP Error 429", error_class=ErrorClass.RATE_LIMITED)
        with captured(outcomes) as logs:
            outcomes.release_for_retry(runtime, running, OWNER, error, structlog.get_logger())
        waits.append(error.retry_after_s)
        if n < threshold - 1:
            assert events(logs, "site breaker opened") == []
            assert admins_deliveries(runtime) == []
    opened = breaker(runtime)
    assert opened is not None and opened.site == "youtube.com"
    assert waits[:-1] == [None] * (threshold - 1), "a throttle that only counts adds no wait"
    cooldown = runtime.settings.breaker_cooldown_s
    assert waits[-1] is not None and cooldown - 5 < waits[-1] <= cooldown
    (line,) = events(logs, "site breaker opened")
    said = (line["log_level"], line["site"], line["identity"], line["retry_at"])
    assert said == ("warning", "youtube.com", "guest", opened.retry_at)
    (delivery,) = admins_deliveries(runtime)
    assert delivery.client_id == admin.id
    callbacks = f"{runtime.settings.queue_prefix}.callbacks"
    assert [body["args"][0] for body, _ in take_messages(callbacks)] == [str(delivery.id)]


def test_a_throttle_after_the_open_breakers_cooldown_ran_out_adds_no_wait(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    # An attempt that started before the breaker opened is throttled once its cooldown is
    # over (no trial has been let through yet): it counts, and its retry need not wait.
    open_breaker(runtime, job)
    with runtime.db.session() as session:
        session.execute(
            sa.update(SiteBreaker).values(retry_at=sa.func.now() - timedelta(minutes=1))
        )
    running = claimed(runtime, job(**ON_SITE))
    error = Transient("HTTP Error 429", error_class=ErrorClass.RATE_LIMITED)
    outcomes.release_for_retry(runtime, running, OWNER, error, structlog.get_logger())
    assert error.retry_after_s == 0.0


@pytest.fixture
def cookies_breaker_opened(
    runtime: Runtime, client: Client, job: Callable[..., uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> Client:
    """Workers can open cookies and ``client`` has some for the site, so its attempts there
    are its own identity: throttles of its jobs there have opened that identity's breaker."""
    monkeypatch.setattr(runtime.settings, "secret_key", SecretStr("a key to seal cookies with"))
    with runtime.db.session() as session:
        session.add(SiteCookies(client_id=client.id, site="youtube.com", sealed="x", count=1))
    open_breaker(runtime, job)
    return client


def test_throttles_with_the_clients_cookies_count_against_its_own_breaker(
    runtime: Runtime, cookies_breaker_opened: Client
) -> None:
    opened = breaker(runtime)
    identity = f"client:{cookies_breaker_opened.id}"
    assert opened is not None and (opened.state, opened.identity) == ("open", identity)


def test_a_throttle_of_a_job_without_a_site_counts_nothing(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    running = claimed(runtime, job(url="file:///media/v.mp4"))
    error = Transient("HTTP Error 429", error_class=ErrorClass.RATE_LIMITED)
    outcomes.release_for_retry(runtime, running, OWNER, error, structlog.get_logger())
    assert breaker(runtime) is None
    assert must(runtime, running.id).status == Status.RETRYING.value


def test_an_error_that_is_not_a_throttle_leaves_the_breaker_alone(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    for error in (
        Transient("HTTP Error 503", error_class=ErrorClass.HTTP_5XX),
        Permanent("HTTP Error 429", error_class=ErrorClass.RATE_LIMITED),
    ):
        running = claimed(runtime, job(**ON_SITE))
        outcomes.release_for_retry(runtime, running, OWNER, error, structlog.get_logger())
    assert breaker(runtime) is None


# -- site_answered --------------------------------------------------------------------------


def open_breaker(runtime: Runtime, job: Callable[..., uuid.UUID]) -> None:
    for _ in range(runtime.settings.breaker_threshold):
        running = claimed(runtime, job(**ON_SITE))
        error = Transient("HTTP Error 429", error_class=ErrorClass.RATE_LIMITED)
        outcomes.release_for_retry(runtime, running, OWNER, error, structlog.get_logger())


def test_a_success_closes_the_sites_open_breaker_and_tells_the_admins(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    open_breaker(runtime, job)
    opened = breaker(runtime)
    assert opened is not None and opened.reason is not None
    admin, _ = create_client(runtime, "ops", admin=True)
    set_default_endpoint(runtime, admin, "https://hooks.example/ops")
    answered = job(**ON_SITE)
    with captured(outcomes) as logs, runtime.db.session() as session:
        told = outcomes.site_answered(runtime, session, answered)
    closed = breaker(runtime)
    assert closed is not None and closed.state == "closed"
    (delivery,) = admins_deliveries(runtime)
    assert [delivery.id] == told
    # The admins read which breaker closed, and the last throttle's error it had
    said = json.loads(delivery.body)["data"]
    assert (said["site"], said["identity"], said["state"]) == ("youtube.com", "guest", "closed")
    assert said["reason"] == opened.reason and "HTTP Error 429" in said["reason"]
    (line,) = events(logs, "site breaker closed")
    assert (line["site"], line["identity"], line["job_id"]) == (
        "youtube.com",
        "guest",
        str(answered),
    )


def test_a_success_with_the_clients_cookies_closes_its_own_breaker(
    runtime: Runtime, job: Callable[..., uuid.UUID], cookies_breaker_opened: Client
) -> None:
    with runtime.db.session() as session:
        outcomes.site_answered(runtime, session, job(**ON_SITE))
    closed = breaker(runtime)
    identity = f"client:{cookies_breaker_opened.id}"
    assert closed is not None and (closed.state, closed.identity) == ("closed", identity)


def test_a_success_the_claim_saw_no_breaker_for_looks_nothing_up(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    open_breaker(runtime, job)
    answered = job(**ON_SITE)
    with runtime.db.session() as session:
        assert outcomes.site_answered(runtime, session, answered, seen=False) == []
    still = breaker(runtime)
    assert still is not None and still.state == "open"
    with runtime.db.session() as session:
        assert outcomes.site_answered(runtime, session, job(**ON_SITE)) == []
    assert admins_deliveries(runtime) == [], "no admin endpoint: closed, nobody told"


def test_a_success_on_a_clean_site_tells_nobody(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    with captured(outcomes) as logs, runtime.db.session() as session:
        assert outcomes.site_answered(runtime, session, job(**ON_SITE)) == []
    assert events(logs, "site breaker closed") == []


# -- the broker's retry and dead letter ------------------------------------------------------


def test_a_scheduled_retry_says_when_it_is_due(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    retrying = job(status=Status.RETRYING.value)
    before = datetime.now(UTC)
    outcomes.retry_scheduled(runtime, retrying, timedelta(seconds=90))
    due = must(runtime, retrying).next_attempt_at
    assert due is not None
    assert before + timedelta(seconds=85) < due < datetime.now(UTC) + timedelta(seconds=95)


def test_a_dead_letter_fails_a_waiting_job_saying_how_many_retries(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    waiting = job(status=Status.RETRYING.value)
    outcomes.dead_lettered(runtime, waiting, 4)
    after = must(runtime, waiting)
    assert (after.status, after.error_class, after.error_message) == (
        Status.FAILED.value,
        ErrorClass.DEAD_LETTER.value,
        "retries exhausted after 4 retries",
    )
    assert after.dead_lettered_at is not None


def test_a_dead_letter_of_a_job_that_had_failed_only_stamps_its_time(
    runtime: Runtime, job: Callable[..., uuid.UUID]
) -> None:
    failed = job(status=Status.FAILED.value, error_class="permanent", error_message="404")
    outcomes.dead_lettered(runtime, failed, 4)
    after = must(runtime, failed)
    assert (after.status, after.error_class, after.error_message) == ("failed", "permanent", "404")
    assert after.dead_lettered_at is not None
