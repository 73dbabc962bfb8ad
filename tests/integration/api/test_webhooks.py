"""The webhook routes in-process (Litestar's TestClient) on a real database and RabbitMQ:
callback URLs on jobs, the default endpoint, deliveries, redeliver, tenant isolation.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import deliveries as delivery_rows
from service.db import transitions
from service.db.models import WebhookDelivery
from service.domain.states import Phase, Status, Step
from service.webhooks.deliver import Next, deliver
from service.webhooks.outbox import announce
from tests.support.api import client_of, problem, submit
from tests.support.rabbitmq import take_messages
from tests.support.receiver import Receiver

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def end(runtime: Runtime, job_id: str, to: Status = Status.SUCCEEDED) -> None:
    """End a job as a worker would, and ring the callbacks doorbell."""
    with runtime.db.session() as session:
        assert transitions.claim(
            session, uuid.UUID(job_id), Step.PROBE, "w", timedelta(seconds=30), Phase.PROBING
        )
        assert transitions.end_job(session, uuid.UUID(job_id), to, owner="w")
    announce(runtime, uuid.UUID(job_id))


def delivery_ids(runtime: Runtime, job_id: uuid.UUID) -> list[uuid.UUID]:
    with runtime.db.session() as session:
        return [d.id for d in delivery_rows.for_job(session, job_id)]


def deliver_all(runtime: Runtime, job_id: str) -> None:
    for delivery in delivery_ids(runtime, uuid.UUID(job_id)):
        assert deliver(runtime, delivery).next is Next.DELIVERED


@pytest.mark.parametrize(
    ("callback_url", "says"),
    [
        ("file:///etc/passwd", "scheme must be http or https"),
        ("http://10.0.0.1/", "10.0.0.1 is private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0x7f.0.0.2/hook", "127.0.0.2 is loopback"),
        ("https://user:pw@hooks.example/x", "credentials"),
        ("hooks.example/in", "scheme must be http or https, not none"),
    ],
)
def test_a_callback_url_that_is_not_public_http_is_a_422_problem(
    api: TestClient[Litestar], auth: dict[str, str], callback_url: str, says: str
) -> None:
    # When a client submits a job with an unacceptable callback URL
    response = api.post(
        "/v1/jobs",
        json={"url": "https://media.example/a.mp4", "callback_url": callback_url},
        headers=auth,
    )
    # Then it is refused with a problem naming the field and the reason, and nothing is stored
    body = problem(response, 422)
    assert "callback_url" in body["detail"]
    assert says in body["detail"]
    assert api.get("/v1/jobs", headers=auth).json()["items"] == []


def test_the_default_endpoint_is_set_read_refused_and_cleared(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # Given a client without a default endpoint
    assert api.get("/v1/webhook", headers=auth).json() == {"url": None, "disabled_at": None}
    # When it sets one, then tries a private one, then clears it
    put = api.put("/v1/webhook", json={"url": "https://Hooks.Example/in#frag"}, headers=auth)
    refused = api.put("/v1/webhook", json={"url": "http://192.168.1.1/"}, headers=auth)
    read = api.get("/v1/webhook", headers=auth).json()
    cleared = api.delete("/v1/webhook", headers=auth)
    # Then the good one is stored in canonical form, the private one refused, and it clears
    assert put.status_code == 200, put.text
    assert put.json()["url"] == "https://hooks.example/in"
    assert "192.168.1.1 is private" in problem(refused, 422)["detail"]
    assert read["url"] == "https://hooks.example/in"
    assert cleared.status_code == 200
    assert cleared.json()["url"] is None
    assert problem(api.put("/v1/webhook", json={"uri": "x"}, headers=auth), 422)


def test_a_job_shows_its_callback_and_lists_its_deliveries_with_every_attempt(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, hooks: Receiver
) -> None:
    # Given a job with a callback URL whose receiver fails once, then accepts
    hooks.answer("/j", 500, then=202)
    job = submit(api, auth, callback_url=hooks.url("/j"))
    assert job["callback_url"] == hooks.url("/j")
    assert job["callback_status"] is None
    # When it ends and its event goes out (a retry, then success)
    end(runtime, job["id"])
    assert api.get(f"/v1/jobs/{job['id']}", headers=auth).json()["callback_status"] == "pending"
    (delivery_id,) = delivery_ids(runtime, uuid.UUID(job["id"]))
    assert deliver(runtime, delivery_id).next is Next.RETRY
    callbacks_fast(runtime, delivery_id)
    # Then the job says delivered, and its deliveries show both attempts
    assert api.get(f"/v1/jobs/{job['id']}", headers=auth).json()["callback_status"] == "delivered"
    listed = api.get(f"/v1/jobs/{job['id']}/deliveries", headers=auth)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["id"] == str(delivery_id)
    assert item["event"] == "job.succeeded"
    assert item["status"] == "delivered"
    assert item["from_default"] is False
    assert [(a["number"], a["status_code"], a["outcome"]) for a in item["attempts"]] == [
        (1, 500, "retry"),
        (2, 202, "delivered"),
    ]
    assert all(a["latency_ms"] is not None for a in item["attempts"])
    # and the job list shows the status too
    (listed_job,) = api.get("/v1/jobs", headers=auth).json()["items"]
    assert listed_job["callback_status"] == "delivered"


def callbacks_fast(runtime: Runtime, delivery_id: uuid.UUID) -> None:
    """Make a waiting retry due now (the tests do not wait out production backoffs)."""
    with runtime.db.session() as session:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(next_attempt_at=sa.func.now())
        )
    assert deliver(runtime, delivery_id).next is Next.DELIVERED


def test_redeliver_sends_the_same_event_again_under_the_same_webhook_id(
    api: TestClient[Litestar],
    auth: dict[str, str],
    runtime: Runtime,
    settings: Settings,
    hooks: Receiver,
) -> None:
    # Given an ended job whose event was delivered
    hooks.trust(client_of(runtime, auth).webhook_secret or "")
    job = submit(api, auth, callback_url=hooks.url("/again"))
    end(runtime, job["id"], Status.CANCELLED)
    deliver_all(runtime, job["id"])
    take_messages(f"{settings.queue_prefix}.callbacks")
    # When the client asks for it again
    response = api.post(f"/v1/jobs/{job['id']}/redeliver", headers=auth)
    # Then the same delivery is pending again, with a fresh budget, and announced
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["max_attempts"] == 1 + settings.webhook_max_attempts
    ((message, _),) = take_messages(f"{settings.queue_prefix}.callbacks")
    assert message["args"] == [body["id"]]
    # and while it is pending, another redeliver is a conflict
    assert problem(api.post(f"/v1/jobs/{job['id']}/redeliver", headers=auth), 409)
    # and once sent, the receiver saw the same webhook-id and body twice, both verified
    assert deliver(runtime, uuid.UUID(body["id"])).next is Next.DELIVERED
    first, second = hooks.at("/again")
    assert first.webhook_id == second.webhook_id == body["id"]
    assert first.body == second.body
    assert first.verified_by and second.verified_by
    items = api.get(f"/v1/jobs/{job['id']}/deliveries", headers=auth).json()["items"]
    assert [a["number"] for a in items[0]["attempts"]] == [1, 2]


def test_redeliver_of_a_job_that_ended_without_a_callback_sends_it_to_the_new_default(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime, hooks: Receiver
) -> None:
    # Given a job that ended before the client had any endpoint
    job = submit(api, auth)
    end(runtime, job["id"], Status.FAILED)
    assert api.get(f"/v1/jobs/{job['id']}/deliveries", headers=auth).json()["items"] == []
    # When there is still none, redeliver is a conflict saying so
    refused = problem(api.post(f"/v1/jobs/{job['id']}/redeliver", headers=auth), 409)
    assert "no callback URL" in refused["detail"]
    # When the client sets a default endpoint and asks again
    api.put("/v1/webhook", json={"url": hooks.url("/later")}, headers=auth)
    response = api.post(f"/v1/jobs/{job['id']}/redeliver", headers=auth)
    # Then a first delivery of the job's current state goes there
    assert response.status_code == 202, response.text
    assert response.json()["event"] == "job.failed"
    assert response.json()["from_default"] is True
    deliver_all(runtime, job["id"])
    assert len(hooks.at("/later")) == 1


def test_redeliver_of_a_job_still_running_is_a_conflict(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    job = submit(api, auth, callback_url="https://hooks.example/x")
    body = problem(api.post(f"/v1/jobs/{job['id']}/redeliver", headers=auth), 409)
    assert "has not ended" in body["detail"]


def test_another_clients_deliveries_and_redeliver_are_404(
    api: TestClient[Litestar],
    auth: dict[str, str],
    other_auth: dict[str, str],
    runtime: Runtime,
    hooks: Receiver,
) -> None:
    # Given alice's ended job with a delivery
    job = submit(api, auth, callback_url=hooks.url("/alice"))
    end(runtime, job["id"])
    deliver_all(runtime, job["id"])
    base = f"/v1/jobs/{job['id']}"
    # When mallory asks for its deliveries or a redelivery
    answers: dict[str, Any] = {
        "deliveries": api.get(f"{base}/deliveries", headers=other_auth),
        "redeliver": api.post(f"{base}/redeliver", headers=other_auth),
    }
    # Then both are the same 404 as for a job that does not exist, and nothing was sent
    for name, response in answers.items():
        assert problem(response, 404)["detail"] == "no such job", name
    never = f"/v1/jobs/{uuid.uuid4()}"
    assert problem(api.get(f"{never}/deliveries", headers=auth), 404)
    assert problem(api.post(f"{never}/redeliver", headers=auth), 404)
    assert len(hooks.at("/alice")) == 1
    # and mallory's default endpoint is her own
    api.put("/v1/webhook", json={"url": "https://mallory.example/"}, headers=other_auth)
    assert api.get("/v1/webhook", headers=auth).json()["url"] is None
