"""Webhook delivery use cases on a real database and RabbitMQ, against a local receiver
that verifies every signature with the ``standardwebhooks`` reference library.

No Dramatiq worker runs: each test plays the worker that received a
``deliver_callback`` message by calling :func:`service.webhooks.deliver.deliver`. The e2e
tests run the same through real processes.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import deliveries as delivery_rows
from service.db import jobs as job_rows
from service.db import replay as replay_rows
from service.db import transitions, trees
from service.db.models import Client, Job, WebhookAttempt, WebhookDelivery
from service.db.replay import EndedJobs
from service.domain.states import Phase, Status, Step
from service.fleet import sweeps
from service.intake import jobs
from service.intake.clients import create_client, rotate_secret
from service.intake.jobs import cancel, submit
from service.runtime import build_runtime
from service.webhooks.deliver import Next, deliver
from service.webhooks.endpoints import default_endpoint, recent_deliveries, set_default_endpoint
from service.webhooks.outbox import announce
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.network import free_port
from tests.support.rabbitmq import queue_depth, take_messages
from tests.support.receiver import Receiver

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration

SOURCE = "https://media.example/watch/clip.mp4"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    """The runtime with short webhook backoffs (retries are due at once in these tests)."""
    fast = settings.model_copy(
        update={
            "webhook_max_attempts": 5,
            "webhook_min_backoff_ms": 100,
            "webhook_max_backoff_ms": 200,
            "webhook_timeout_s": 2.0,
        }
    )
    runtime = build_runtime(fast)
    yield runtime
    runtime.broker.close()
    runtime.db.dispose()


@pytest.fixture
def client(rt: Runtime, hooks: Receiver) -> Client:
    made, _ = create_client(rt, "hooked")
    assert made.webhook_secret is not None
    hooks.trust(made.webhook_secret)
    return made


def finish(rt: Runtime, job_id: uuid.UUID, to: Status = Status.SUCCEEDED) -> None:
    """End a submitted job as a worker would: claim it, then move it to ``to``."""
    with rt.db.session() as session:
        claimed = transitions.claim(
            session, job_id, Step.PROBE, "w", timedelta(seconds=30), Phase.PROBING
        )
        assert claimed is not None
        moved = transitions.end_job(
            session, job_id, to, owner="w", error_class="x", error_message="y"
        )
        assert moved is not None
    announce(rt, job_id)


def deliveries_of(rt: Runtime, job_id: uuid.UUID) -> list[WebhookDelivery]:
    with rt.db.session() as session:
        return delivery_rows.for_job(session, job_id)


def the_delivery(rt: Runtime, job_id: uuid.UUID) -> WebhookDelivery:
    (delivery,) = deliveries_of(rt, job_id)
    return delivery


def attempts_of(rt: Runtime, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
    with rt.db.session() as session:
        return delivery_rows.attempts_of(session, [delivery_id]).get(delivery_id, [])


def drive(rt: Runtime, delivery_id: uuid.UUID, *, limit: int = 20) -> list[Next]:
    """Play the worker: attempt until an attempt says anything but 'retry'."""
    seen: list[Next] = []
    while len(seen) < limit:
        outcome = deliver(rt, delivery_id)
        seen.append(outcome.next)
        if outcome.next is not Next.RETRY:
            return seen
        assert outcome.delay_ms is not None and outcome.delay_ms > 0
    raise AssertionError(f"still retrying after {limit} attempts: {seen}")


def event(received: Any) -> dict[str, Any]:
    return dict(json.loads(received.body))


# --- the happy path -----------------------------------------------------------------------------


def test_a_succeeded_download_is_announced_signed_and_delivered_with_its_file_link(
    rt: Runtime, client: Client, hooks: Receiver, media: MediaServer
) -> None:
    # Given a job with a callback URL, downloaded for real
    job = submit(rt, client, url=media.url("/media/clip.mp4"), callback_url=hooks.url("/done"))
    take_messages(f"{rt.settings.queue_prefix}.probe")
    run_probe(rt, job.id)
    run_download(rt, job.id)
    # Then the success wrote one pending delivery and rang the callbacks queue with its id
    delivery = the_delivery(rt, job.id)
    assert (delivery.status, delivery.event, delivery.url) == (
        "pending",
        "job.succeeded",
        hooks.url("/done"),
    )
    ((message, _),) = take_messages(f"{rt.settings.queue_prefix}.callbacks")
    assert message["actor_name"] == "deliver_callback"
    assert message["args"] == [str(delivery.id)]
    # When the worker delivers it
    assert drive(rt, delivery.id) == [Next.DELIVERED]
    # Then the receiver got one request whose signature the reference library accepts
    (got,) = hooks.at("/done")
    assert got.verified_by == client.webhook_secret
    assert got.webhook_id == str(delivery.id)
    assert got.headers["content-type"] == "application/json"
    body = event(got)
    assert body["type"] == "job.succeeded"
    assert body["data"]["id"] == str(job.id)
    assert body["data"]["status"] == "succeeded"
    assert body["data"]["error"] is None
    assert body["data"]["file"]["url"] == f"/v1/jobs/{job.id}/file"
    assert body["data"]["file"]["mime"] == "video/mp4"
    # and the row says delivered, with one attempt on record
    done = the_delivery(rt, job.id)
    assert done.status == "delivered"
    assert done.delivered_at is not None
    (attempt,) = attempts_of(rt, delivery.id)
    assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 204, "delivered")
    assert attempt.latency_ms is not None and attempt.error is None
    assert jobs.get(rt, client, job.id).callback_status == "delivered"


def test_a_receiver_failing_three_times_gets_it_on_attempt_four_under_one_webhook_id(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a receiver that answers 500, a timeout-free 503, 502, then 200
    hooks.answer("/flaky", 500, 503, 502, then=200)
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/flaky"))
    finish(rt, job.id, Status.FAILED)
    delivery = the_delivery(rt, job.id)
    # When the worker works through it
    outcomes = drive(rt, delivery.id)
    # Then three retries, then delivered on attempt 4
    assert outcomes == [Next.RETRY, Next.RETRY, Next.RETRY, Next.DELIVERED]
    got = hooks.at("/flaky")
    assert [r.answered for r in got] == [500, 503, 502, 200]
    # with the same webhook-id and byte-identical body each time, each freshly signed and valid
    assert {r.webhook_id for r in got} == {str(delivery.id)}
    assert len({r.body for r in got}) == 1
    assert all(r.verified_by == client.webhook_secret for r in got)
    assert event(got[0])["type"] == "job.failed"
    assert event(got[0])["data"]["error"] == {"error_class": "x", "message": "y"}
    attempts = attempts_of(rt, delivery.id)
    assert [(a.number, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry"),
        (2, 503, "retry"),
        (3, 502, "retry"),
        (4, 200, "delivered"),
    ]
    assert attempts[0].error == "HTTP 500"
    assert the_delivery(rt, job.id).status == "delivered"


def test_a_receiver_that_always_fails_ends_failed_and_the_job_is_untouched(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a receiver that always answers 500
    hooks.answer("/down", then=500)
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/down"))
    finish(rt, job.id, Status.SUCCEEDED)
    before = jobs.get(rt, client, job.id).job
    delivery = the_delivery(rt, job.id)
    # When the worker works through every attempt
    outcomes = drive(rt, delivery.id)
    # Then it gives up after HAUL_WEBHOOK_MAX_ATTEMPTS, saying why
    assert outcomes == [Next.RETRY] * 4 + [Next.FAILED]
    assert len(hooks.at("/down")) == 5
    failed = the_delivery(rt, job.id)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 5, "HTTP 500")
    # and the job's own state is what it was; only its callback_status says failed
    view = jobs.get(rt, client, job.id)
    assert view.callback_status == "failed"
    assert (view.job.status, view.job.finished_at, view.job.updated_at) == (
        "succeeded",
        before.finished_at,
        before.updated_at,
    )
    # and another message for it changes nothing
    assert deliver(rt, delivery.id).next is Next.DROPPED
    assert len(hooks.at("/down")) == 5


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a receiver that answers 302 to somewhere else, then 200
    hooks.answer("/moved", 302, then=200)
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/moved"))
    finish(rt, job.id)
    # When it is delivered
    outcomes = drive(rt, the_delivery(rt, job.id).id)
    # Then the 302 was a retried failure and the Location was never visited
    assert outcomes == [Next.RETRY, Next.DELIVERED]
    assert hooks.at("/elsewhere") == []
    first = attempts_of(rt, the_delivery(rt, job.id).id)[0]
    assert first.status_code == 302
    assert first.error == "HTTP 302 (redirects are not followed)"


def test_an_unreachable_receiver_is_a_network_error_and_retried(
    rt: Runtime, client: Client
) -> None:
    # Given a callback URL where nothing listens
    job = submit(rt, client, url=SOURCE, callback_url=f"http://127.0.0.1:{free_port()}/x")
    finish(rt, job.id)
    delivery = the_delivery(rt, job.id)
    # When the first attempt is made
    outcome = deliver(rt, delivery.id)
    # Then it is retried, the attempt saying what went wrong and no status code
    assert outcome.next is Next.RETRY
    (attempt,) = attempts_of(rt, delivery.id)
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("ConnectError")
    after = the_delivery(rt, delivery.job_id)
    assert after.status == "pending"
    assert after.next_attempt_at is not None
    assert after.claimed_by is None


# --- egress and 410 ------------------------------------------------------------------------------


def test_a_callback_the_egress_policy_refuses_at_connect_fails_at_once_with_the_reason(
    rt: Runtime, settings: Settings, client: Client, hooks: Receiver
) -> None:
    # Given a job whose callback was accepted (127.0.0.1 is allowed where it was submitted)
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/private"))
    finish(rt, job.id)
    delivery = the_delivery(rt, job.id)
    # When a worker whose policy allows public addresses only delivers it
    strict = build_runtime(settings.model_copy(update={"egress_allow": ""}))
    try:
        outcome = deliver(strict, delivery.id)
    finally:
        strict.broker.close()
        strict.db.dispose()
    # Then nothing reached the receiver, and the delivery failed once, not retried, saying why
    assert outcome.next is Next.FAILED
    assert hooks.received == []
    failed = the_delivery(rt, job.id)
    assert failed.status == "failed"
    assert failed.last_error == "egress denied: a non-public address"
    (attempt,) = attempts_of(rt, delivery.id)
    assert (attempt.outcome, attempt.status_code) == ("failed", None)


def test_410_from_the_default_endpoint_disables_it_until_it_is_set_again(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a client whose default endpoint answers 410 Gone
    set_default_endpoint(rt, client, hooks.url("/gone"))
    hooks.answer("/gone", then=410)
    first = submit(rt, client, url=SOURCE)
    finish(rt, first.id)
    # When its event is delivered
    outcomes = drive(rt, the_delivery(rt, first.id).id)
    # Then the delivery fails without a retry and the default is disabled
    assert outcomes == [Next.FAILED]
    failed = the_delivery(rt, first.id)
    assert failed.from_default
    assert failed.last_error is not None and "default endpoint is disabled" in failed.last_error
    assert default_endpoint(rt, client).default_callback_disabled_at is not None
    # and the next job that ends makes no delivery at all
    second = submit(rt, client, url=SOURCE)
    finish(rt, second.id)
    assert deliveries_of(rt, second.id) == []
    assert jobs.get(rt, client, second.id).callback_status is None
    # until the client sets its endpoint again
    hooks.answer("/back", then=204)
    again = set_default_endpoint(rt, client, hooks.url("/back"))
    assert again.default_callback_disabled_at is None
    third = submit(rt, client, url=SOURCE)
    finish(rt, third.id, Status.CANCELLED)
    assert drive(rt, the_delivery(rt, third.id).id) == [Next.DELIVERED]
    assert event(hooks.at("/back")[0])["type"] == "job.cancelled"


def test_410_from_a_jobs_own_url_fails_that_delivery_only(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a default endpoint, and a job with its own URL that answers 410
    set_default_endpoint(rt, client, hooks.url("/default"))
    hooks.answer("/own", then=410)
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/own"))
    finish(rt, job.id)
    # When it is delivered
    assert drive(rt, the_delivery(rt, job.id).id) == [Next.FAILED]
    # Then the default endpoint stays enabled
    assert default_endpoint(rt, client).default_callback_disabled_at is None
    assert hooks.at("/default") == []


# --- every way a job ends writes the outbox row --------------------------------------------------


def _running(rt: Runtime, client: Client, **values: Any) -> uuid.UUID:
    with rt.db.session() as session:
        job = Job(
            client_id=client.id,
            url=SOURCE,
            status=Status.RUNNING.value,
            step=Step.DOWNLOAD.value,
            **values,
        )
        job_rows.insert(session, job)
        return job.id


def _dead_letter(rt: Runtime, client: Client) -> uuid.UUID:
    job_id = _running(rt, client)
    with rt.db.session() as session:
        transitions.move(
            session, job_id, Status.RETRYING, last_error="network: boom", last_error_class="network"
        )
        assert transitions.dead_letter(session, job_id, "retries exhausted") is not None
    return job_id


def _attempts_exhausted(rt: Runtime, client: Client) -> uuid.UUID:
    job_id = _running(rt, client, attempts=4, max_attempts=4)
    with rt.db.session() as session:
        transitions.move(session, job_id, Status.QUEUED)
        assert transitions.fail_exhausted(session, job_id) is not None
    return job_id


def _lease_sweep(rt: Runtime, client: Client) -> uuid.UUID:
    job_id = _running(rt, client, attempts=4, max_attempts=4)
    with rt.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(lease_owner="dead", lease_expires_at=sa.func.now() - timedelta(seconds=1))
        )
    sweeps.expired_leases(rt)
    return job_id


def _playlist_closes(rt: Runtime, client: Client) -> uuid.UUID:
    parent_id = _running(rt, client, phase=Phase.AWAITING_CHILDREN.value)
    child_ids = [_running(rt, client, parent_id=parent_id) for _ in range(2)]
    with rt.db.session() as session:
        for child in child_ids:
            transitions.end_job(session, child, Status.SUCCEEDED)
        assert trees.finish_parent_if_done(session, parent_id) is not None
    for child in child_ids:
        assert deliveries_of(rt, child) == [], "a playlist's entries report through the parent"
    return parent_id


def _cancelled(rt: Runtime, client: Client) -> uuid.UUID:
    job = submit(rt, client, url=SOURCE)
    cancel(rt, client, job.id)
    return job.id


@pytest.mark.parametrize(
    ("path", "ends"),
    [
        (_dead_letter, "failed"),
        (_attempts_exhausted, "failed"),
        (_lease_sweep, "failed"),
        (_playlist_closes, "succeeded"),
        (_cancelled, "cancelled"),
    ],
    ids=["dead-letter", "attempts-exhausted", "lease-sweep", "playlist-closes", "cancel"],
)
def test_every_terminal_transition_writes_exactly_one_delivery(
    rt: Runtime, client: Client, hooks: Receiver, path: Any, ends: str
) -> None:
    # Given a client with a default endpoint
    set_default_endpoint(rt, client, hooks.url("/all"))
    # When a job ends this way
    job_id = path(rt, client)
    # Then exactly one delivery of that event waits, with the row as it ended
    delivery = the_delivery(rt, job_id)
    assert delivery.event == f"job.{ends}"
    assert delivery.job_snapshot["status"] == ends
    assert delivery.from_default
    # and it goes out signed
    assert drive(rt, delivery.id) == [Next.DELIVERED]
    (got,) = hooks.at("/all")
    assert got.verified_by is not None
    assert event(got)["data"]["status"] == ends


def test_a_replayed_job_that_ends_again_is_a_second_event(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a failed job whose event was delivered
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/twice"))
    finish(rt, job.id, Status.FAILED)
    first = the_delivery(rt, job.id)
    drive(rt, first.id)
    # When it is retried and succeeds
    with rt.db.session() as session:
        assert replay_rows.replay(session, EndedJobs((Status.FAILED,), job_id=job.id))
    finish(rt, job.id, Status.SUCCEEDED)
    # Then a new delivery (a new webhook-id) carries the new event
    newest, oldest = deliveries_of(rt, job.id)
    assert oldest.id == first.id
    assert newest.id != first.id
    assert (newest.event, newest.status) == ("job.succeeded", "pending")
    assert jobs.get(rt, client, job.id).callback_status == "pending"


def test_recent_deliveries_are_the_clients_own_newest_first_with_their_attempts(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given three of the client's jobs that ended, the first one's event delivered,
    # and another client's job that ended too
    set_default_endpoint(rt, client, hooks.url("/mine"))
    ended = [submit(rt, client, url=f"{SOURCE}?n={n}").id for n in range(3)]
    for job_id in ended:
        finish(rt, job_id)
    drive(rt, the_delivery(rt, ended[0]).id)
    other, _ = create_client(rt, "someone else")
    set_default_endpoint(rt, other, hooks.url("/theirs"))
    finish(rt, submit(rt, other, url=SOURCE).id)

    # When the client asks for its two newest deliveries
    found = recent_deliveries(rt, client, limit=2)

    # Then it gets its own, newest first; and the full list carries each one's attempts
    assert [v.delivery.job_id for v in found] == [ended[2], ended[1]]
    everything = recent_deliveries(rt, client)
    assert [v.delivery.job_id for v in everything] == ended[::-1]
    assert [len(v.attempts) for v in everything] == [0, 0, 1]
    assert everything[-1].attempts[0].status_code == 204


# --- the doorbell: lost messages, duplicates ----------------------------------------------------


def test_a_delivery_whose_message_was_never_sent_is_published_by_the_sweep(
    rt: Runtime, client: Client, hooks: Receiver, settings: Settings
) -> None:
    # Given a job that ended while RabbitMQ was unreachable (the announce failed)
    away = build_runtime(
        rt.settings.model_copy(
            update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"}
        )
    )
    try:
        job = submit(away, client, url=SOURCE, callback_url=hooks.url("/late"))
        finish(away, job.id)
    finally:
        away.broker.close()
        away.db.dispose()
    delivery = the_delivery(rt, job.id)
    assert delivery.published_at is None
    queue = f"{rt.settings.queue_prefix}.callbacks"
    assert queue_depth(queue) == 0
    # When the sweep runs once the delivery is a few seconds old
    with rt.db.session() as session:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id)
            .values(created_at=sa.func.now() - timedelta(seconds=10))
        )
    report = sweeps.run_all(rt)
    # Then it is published, once, and a second sweep leaves it alone
    assert report.callbacks_republished == 1
    ((message, _),) = take_messages(queue)
    assert message["args"] == [str(delivery.id)]
    assert sweeps.run_all(rt).callbacks_republished == 0
    assert drive(rt, delivery.id) == [Next.DELIVERED]


def test_a_duplicate_message_for_a_delivered_delivery_sends_nothing(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a delivered event
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/once"))
    finish(rt, job.id)
    delivery = the_delivery(rt, job.id)
    drive(rt, delivery.id)
    # When the same message arrives again (redelivered, or sent twice)
    outcome = deliver(rt, delivery.id)
    # Then it is dropped: the receiver saw one request, the row one attempt
    assert outcome.next is Next.DROPPED
    assert len(hooks.at("/once")) == 1
    assert len(attempts_of(rt, delivery.id)) == 1


def test_a_delivery_claimed_by_another_worker_is_not_sent_twice(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a delivery another worker is sending right now
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/busy"))
    finish(rt, job.id)
    delivery = the_delivery(rt, job.id)
    with rt.db.session() as session:
        held = delivery_rows.claim(session, delivery.id, "other", timedelta(seconds=60), 5)
        assert held is not None
    # When a duplicate message arrives
    outcome = deliver(rt, delivery.id)
    # Then this worker leaves it alone
    assert outcome.next is Next.DROPPED
    assert hooks.received == []


# --- secrets -------------------------------------------------------------------------------------


def test_after_a_rotation_both_secrets_sign_during_the_grace_period(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a client whose secret was rotated (with the default grace period)
    old = client.webhook_secret
    assert old is not None
    _, new = rotate_secret(rt, "hooked")
    assert new.startswith("whsec_") and new != old
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/rotating"))
    finish(rt, job.id)
    # When the event is delivered
    drive(rt, the_delivery(rt, job.id).id)
    # Then it carries two signatures, and a receiver knowing either secret accepts it
    (got,) = hooks.at("/rotating")
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    with Receiver() as only_new:
        only_new.trust(new)
        assert only_new._verify(got.body, got.headers) == new
    with Receiver() as only_old:
        only_old.trust(old)
        assert only_old._verify(got.body, got.headers) == old


def test_a_rotation_without_grace_stops_the_old_secret_at_once(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a secret rotated because it leaked
    old = client.webhook_secret
    rotated, new = rotate_secret(rt, str(client.id), grace=False)
    assert rotated.previous_webhook_secret is None
    hooks.trust(new)
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/leaked"))
    finish(rt, job.id)
    # When the event is delivered
    drive(rt, the_delivery(rt, job.id).id)
    # Then only the new secret signs it
    (got,) = hooks.at("/leaked")
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert got.verified_by == new
    assert got.verified_by != old


def test_a_client_created_by_sql_alone_gets_a_secret_from_the_database(rt: Runtime) -> None:
    # Given a client row inserted without a secret (as a migration or a script would)
    with rt.db.session() as session:
        session.execute(
            sa.text(
                "INSERT INTO clients (id, name, key_prefix, key_hash, scopes, tier) "
                "VALUES (:id, 'bare', 'haul_bare', 'x', '[]', 'standard')"
            ),
            {"id": uuid.uuid4()},
        )
        secret = session.execute(
            sa.text("SELECT webhook_secret FROM clients WHERE name = 'bare'")
        ).scalar_one()
    # Then it has a well-formed one that the reference library can sign with
    assert secret.startswith("whsec_")
    from standardwebhooks import Webhook

    assert len(Webhook(secret)._whsecret) == 32


def _expire_claim(rt: Runtime, delivery_id: uuid.UUID) -> None:
    with rt.db.session() as session:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(claimed_until=sa.func.now() - timedelta(seconds=1))
        )


def test_an_attempt_whose_worker_died_is_made_again_once_its_claim_expires(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a delivery whose worker claimed it and died before recording anything
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/died"))
    finish(rt, job.id)
    delivery = the_delivery(rt, job.id)
    with rt.db.session() as session:
        assert delivery_rows.claim(session, delivery.id, "dead", timedelta(seconds=60), 5)
    assert deliver(rt, delivery.id).next is Next.DROPPED
    # When its claim has expired and a message arrives again (the sweep republished it)
    _expire_claim(rt, delivery.id)
    outcome = deliver(rt, delivery.id)
    # Then it is sent, as attempt 2 (the dead worker's attempt counted)
    assert outcome.next is Next.DELIVERED
    (attempt,) = attempts_of(rt, delivery.id)
    assert attempt.number == 2
    assert len(hooks.at("/died")) == 1


def test_a_delivery_whose_last_attempt_died_is_failed_by_the_next_message(
    rt: Runtime, client: Client, hooks: Receiver
) -> None:
    # Given a delivery with one attempt left, whose worker died during it
    hooks.answer("/last", then=500)
    job = submit(rt, client, url=SOURCE, callback_url=hooks.url("/last"))
    finish(rt, job.id)
    delivery = the_delivery(rt, job.id)
    with rt.db.session() as session:
        assert delivery_rows.claim(session, delivery.id, "dead", timedelta(seconds=60), 1)
    _expire_claim(rt, delivery.id)
    # When the next message arrives
    outcome = deliver(rt, delivery.id)
    # Then the delivery is failed, saying why, without another request
    assert outcome.next is Next.FAILED
    failed = the_delivery(rt, job.id)
    assert failed.status == "failed"
    assert failed.last_error == "gave up: no attempt left without an outcome"
    assert hooks.received == []
