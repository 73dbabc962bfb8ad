"""A subscription's events on a real database, broker and local feed: the webhook outbox
rows whose subject is the subscription, their signed delivery to a local receiver, and
the notification the live streams hear.

Checks run in-process (``run_check``); each delivery is made by calling the worker's
``deliver`` for the message the check published, as the callbacks actor would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db.models import WebhookDelivery
from service.db.notify import job_changes
from service.intake.clients import create_client
from service.webhooks.deliver import Next, deliver
from service.webhooks.endpoints import set_default_endpoint
from tests.integration.subscriptions.test_check import check, feed, grow, item, subscribe
from tests.support.rabbitmq import take_messages
from tests.support.receiver import Receiver

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.db.models import Client
    from service.runtime import Runtime
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


@pytest.fixture
def hooked(runtime: Runtime, hooks: Receiver) -> tuple[Client, dict[str, str]]:
    """A client whose webhook secret the receiver trusts, and its key's headers."""
    made, key = create_client(runtime, "subscriber")
    assert made.webhook_secret is not None
    hooks.trust(made.webhook_secret)
    return made, {"Authorization": f"Bearer {key}"}


def deliveries_of(runtime: Runtime, sub_id: str) -> list[WebhookDelivery]:
    with runtime.db.session() as session:
        stmt = (
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.subject_id == uuid.UUID(sub_id))
            .order_by(WebhookDelivery.created_at, WebhookDelivery.event)
        )
        return list(session.execute(stmt).scalars())


def deliver_published(runtime: Runtime) -> list[Next]:
    """Play the callbacks worker for every message published so far."""
    return [
        deliver(runtime, uuid.UUID(body["args"][0])).next
        for body, _ in take_messages(f"{runtime.settings.queue_prefix}.callbacks")
    ]


def test_new_entries_are_one_signed_webhook_to_the_subscriptions_callback_url(
    api: TestClient[Litestar],
    runtime: Runtime,
    media: MediaServer,
    hooks: Receiver,
    hooked: tuple[Client, dict[str, str]],
) -> None:
    _, auth = hooked
    # Given a subscription with a callback URL, checked once (backfill none: nothing to say)
    url = feed(media, item(2), item(1))
    sub = subscribe(api, auth, url=url, callback_url=hooks.url("/subs"))
    check(runtime, sub["id"])
    assert deliveries_of(runtime, sub["id"]) == []

    # When the feed gains two episodes and it is checked twice
    grow(media, url, item(4), item(3), item(2), item(1))
    check(runtime, sub["id"])
    check(runtime, sub["id"])

    # Then exactly one delivery was made, about the subscription and not any job
    (made,) = deliveries_of(runtime, sub["id"])
    assert (made.subject_kind, made.job_id, made.event) == (
        "subscription",
        None,
        "subscription.entries_found",
    )
    # and the worker sends it, signed, to the subscription's URL
    assert deliver_published(runtime) == [Next.DELIVERED]
    (got,) = hooks.at("/subs")
    assert got.verified_by is not None
    assert got.webhook_id == str(made.id)
    event = json.loads(got.body)
    assert event["type"] == "subscription.entries_found"
    assert event["data"]["subscription"]["id"] == sub["id"]
    assert event["data"]["new"] == 2
    assert [e["key"] for e in event["data"]["entries"]] == ["guid:episode-4", "guid:episode-3"]
    assert {e["state"] for e in event["data"]["entries"]} == {"pending"}
    # and the subscription lists it among its deliveries, with its attempt
    shown = api.get(f"/v1/subscriptions/{sub['id']}/deliveries", headers=auth).json()["items"]
    assert [(d["id"], d["event"], d["status"]) for d in shown] == [
        (str(made.id), "subscription.entries_found", "delivered")
    ]
    assert [a["status_code"] for a in shown[0]["attempts"]] == [204]
    assert api.get(f"/v1/subscriptions/{uuid.uuid4()}/deliveries", headers=auth).status_code == 404


def test_failed_checks_and_the_pause_they_cause_go_to_the_clients_default_endpoint(
    api: TestClient[Litestar],
    runtime: Runtime,
    media: MediaServer,
    hooks: Receiver,
    hooked: tuple[Client, dict[str, str]],
) -> None:
    client, auth = hooked
    # Given a client with a default endpoint and a subscription without a URL of its own
    set_default_endpoint(runtime, client, hooks.url("/default"))
    sub = subscribe(api, auth, url=media.url("/feed-live/never-set.rss"))
    limit = runtime.settings.subscription_max_failures

    # When its feed fails as many checks as the limit allows
    for _ in range(limit):
        check(runtime, sub["id"])

    # Then each failed check was announced, and the last one's pause as well
    assert deliver_published(runtime) == [Next.DELIVERED] * (limit + 1)
    types = [json.loads(r.body)["type"] for r in hooks.at("/default")]
    assert types == ["subscription.check_failed"] * limit + ["subscription.paused"]
    paused = json.loads(hooks.at("/default")[-1].body)["data"]
    assert paused["subscription"]["paused"] is True
    assert f"after {limit} failed checks" in paused["paused_reason"]
    assert "404" in paused["error"]
    assert all(r.verified_by is not None for r in hooks.at("/default"))
    assert all(d.from_default for d in deliveries_of(runtime, sub["id"]))


def test_a_subscription_without_any_endpoint_makes_no_delivery(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    sub = subscribe(api, auth, url=media.url("/feed-live/never-set.rss"))

    check(runtime, sub["id"])

    assert deliveries_of(runtime, sub["id"]) == []


def test_a_check_notifies_the_live_channel_with_the_subscriptions_event(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, media: MediaServer
) -> None:
    # Given a listener on the channel the API's live hub listens to
    sub = subscribe(api, auth, url=media.url("/feed-live/never-set.rss"))

    async def first_subscription_change() -> dict[str, Any]:
        connected = asyncio.Event()

        async def on_connect() -> None:
            connected.set()

        changes = job_changes(runtime.settings.database_url, on_connect=on_connect)
        waiting = asyncio.ensure_future(_next_about(changes, sub["id"]))
        try:
            await asyncio.wait_for(connected.wait(), timeout=10)
            # When the subscription's check fails
            await asyncio.to_thread(check, runtime, sub["id"])
            return await asyncio.wait_for(waiting, timeout=10)
        finally:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            await changes.aclose()  # type: ignore[attr-defined]

    change = asyncio.run(first_subscription_change())

    # Then the channel carried the event, for that client's streams
    assert change["event"] == "subscription.check_failed"
    assert change["client_id"] == sub["client_id"]
    assert "404" in change["error"]


async def _next_about(changes: Any, sub_id: str) -> dict[str, Any]:
    async for change in changes:
        if change.get("subscription_id") == sub_id:
            return dict(change)
    raise AssertionError("the listener ended")
