"""A site's breaker announces its moves to admins by webhook (service/fleet/breaker_events.py)
on a real database and RabbitMQ: a throttle that opens it, a success and an admin's reset
that close it each make one delivery per admin's default endpoint, in the move's
transaction, published after the commit; non-admins hear nothing, and a throttle that
only counts or a success on a clean breaker makes nothing.

The breaker is moved by the functions the worker and the admin API call
(``release_for_retry``, ``site_answered``, ``reset_site``); each published delivery is
sent by the worker's ``deliver`` to a local receiver that checks its signature.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
import structlog

from service.db import jobs as job_rows
from service.db.models import Job, WebhookDelivery
from service.domain.errors import ErrorClass
from service.errors import Transient
from service.fleet.admin import reset_site
from service.fleet.breaker_events import SUBJECT_NAMESPACE, subject_id
from service.intake.clients import create_client
from service.webhooks.deliver import Next, deliver
from service.webhooks.endpoints import set_default_endpoint
from service.webhooks.outbox import announce_deliveries
from service.work.outcomes import release_for_retry, site_answered
from tests.support.rabbitmq import take_messages
from tests.support.receiver import Receiver

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

SITE = "youtube.com"


@pytest.fixture
def admins(runtime: Runtime, hooks: Receiver) -> tuple[Client, Client]:
    """An admin with a default endpoint, a non-admin with one, and an admin without one."""
    admin, _ = create_client(runtime, "ops", admin=True)
    user, _ = create_client(runtime, "user")
    create_client(runtime, "quiet-admin", admin=True)
    for made in (admin, user):
        assert made.webhook_secret is not None
        hooks.trust(made.webhook_secret)
    set_default_endpoint(runtime, admin, hooks.url("/ops"))
    set_default_endpoint(runtime, user, hooks.url("/user"))
    return admin, user


def a_job(runtime: Runtime, client: Client) -> Job:
    job = Job(client_id=client.id, url="https://www.youtube.com/watch?v=1", step="download")
    with runtime.db.session() as session:
        job_rows.insert_many(session, [job])
    return job


def throttle(runtime: Runtime, job: Job) -> None:
    """What a worker does when the site answered 429: release the attempt for a retry."""
    exc = Transient("HTTP Error 429: Too Many Requests", error_class=ErrorClass.RATE_LIMITED)
    release_for_retry(runtime, job, "worker-1", exc, structlog.get_logger())


def deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    with runtime.db.session() as session:
        stmt = sa.select(WebhookDelivery).order_by(WebhookDelivery.created_at)
        return list(session.execute(stmt).scalars())


def deliver_published(runtime: Runtime) -> list[uuid.UUID]:
    """Play the callbacks worker for every message published so far; the ids it delivered."""
    sent = []
    for body, _ in take_messages(f"{runtime.settings.queue_prefix}.callbacks"):
        delivery_id = uuid.UUID(body["args"][0])
        assert deliver(runtime, delivery_id).next is Next.DELIVERED
        sent.append(delivery_id)
    return sent


def test_the_subject_is_a_stable_uuid5_of_the_site_and_identity() -> None:
    assert subject_id(SITE, "guest") == uuid.uuid5(SUBJECT_NAMESPACE, "youtube.com/guest")
    assert subject_id(SITE, "guest") != subject_id(SITE, "client:x")


def test_opening_and_closing_a_breaker_are_signed_webhooks_to_admins_only(
    runtime: Runtime, hooks: Receiver, admins: tuple[Client, Client]
) -> None:
    admin, user = admins
    job = a_job(runtime, user)
    threshold = runtime.settings.breaker_threshold

    # Given throttles short of the threshold, and a success while nothing is open: no event
    for _ in range(threshold - 1):
        throttle(runtime, job)
    with runtime.db.session() as session:
        assert site_answered(runtime, session, job.id) == []  # the count is cleared, quietly
    for _ in range(threshold - 1):
        throttle(runtime, job)
    assert deliveries(runtime) == []

    # When the next throttle opens the breaker
    throttle(runtime, job)

    # Then exactly one delivery, to the admin's endpoint, about the site, was made and published
    (opened,) = deliveries(runtime)
    assert (opened.client_id, opened.subject_kind, opened.event, opened.from_default) == (
        admin.id,
        "site",
        "site.breaker_opened",
        True,
    )
    assert (opened.subject_id, opened.job_id) == (subject_id(SITE, "guest"), None)
    assert deliver_published(runtime) == [opened.id]
    (got,) = hooks.at("/ops")
    assert got.verified_by is not None
    assert got.webhook_id == str(opened.id)
    event = json.loads(got.body)
    assert event["type"] == "site.breaker_opened"
    data = event["data"]
    assert set(data) == {"site", "identity", "state", "failures", "opens", "retry_at", "reason"}
    assert (data["site"], data["identity"], data["state"]) == (SITE, "guest", "open")
    assert (data["failures"], data["opens"]) == (threshold, 1)
    assert data["retry_at"] is not None
    assert "429" in data["reason"]

    # When a throttle comes while it is open (a late attempt): nothing new
    throttle(runtime, job)
    assert len(deliveries(runtime)) == 1

    # When an attempt succeeds, the breaker closes: one breaker_closed, after the commit
    with runtime.db.session() as session:
        told = site_answered(runtime, session, job.id)
    assert announce_deliveries(runtime, told) == 1
    (closed,) = [d for d in deliveries(runtime) if d.id != opened.id]
    assert told == [closed.id]
    assert (closed.client_id, closed.event, closed.subject_id) == (
        admin.id,
        "site.breaker_closed",
        opened.subject_id,
    )
    assert deliver_published(runtime) == [closed.id]
    got_closed = hooks.at("/ops")[-1]
    assert got_closed.verified_by is not None
    data = json.loads(got_closed.body)["data"]
    assert (data["state"], data["failures"], data["opens"], data["retry_at"]) == (
        "closed",
        0,
        0,
        None,
    )
    assert hooks.at("/user") == []


def test_an_admins_reset_of_an_open_breaker_is_a_breaker_closed_webhook(
    runtime: Runtime, hooks: Receiver, admins: tuple[Client, Client]
) -> None:
    admin, user = admins
    job = a_job(runtime, user)
    # A reset of a site whose breakers are closed says nothing
    reset_site(runtime, admin, "www.youtube.com")
    assert deliveries(runtime) == []

    for _ in range(runtime.settings.breaker_threshold):
        throttle(runtime, job)
    assert deliver_published(runtime) != []

    # When an admin resets the site (by any of its host names)
    reset_site(runtime, admin, "youtu.be")

    # Then the admin's endpoint hears that its guest breaker closed, signed
    closed = [d for d in deliveries(runtime) if d.event == "site.breaker_closed"]
    assert [(d.client_id, d.subject_id) for d in closed] == [(admin.id, subject_id(SITE, "guest"))]
    assert deliver_published(runtime) == [closed[0].id]
    got = hooks.at("/ops")[-1]
    assert got.verified_by is not None
    data = json.loads(got.body)["data"]
    assert (data["site"], data["identity"], data["state"], data["retry_at"]) == (
        SITE,
        "guest",
        "closed",
        None,
    )
    assert hooks.at("/user") == []
