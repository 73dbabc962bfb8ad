"""Signing (service/webhooks/signing.py) agrees with the Standard Webhooks reference library;
the event body is the job as it ended; a rotated secret signs only during its grace period."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.db.models import Artifact, Client, WebhookDelivery
from service.webhooks import signing
from service.webhooks.signing import signing_secrets
from tests.support.paths import REPO


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = signing.new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != signing.new_secret()


@given(body=st.text(max_size=500))
def test_the_reference_library_verifies_what_haul_signs(body: str) -> None:
    # Given a secret and an attempt signed now
    secret = signing.new_secret()
    msg_id = str(uuid.uuid4())
    headers = signing.headers(msg_id, int(time.time()), body, [secret])
    # Then a receiver using standardwebhooks accepts it, and refuses it with another secret
    Webhook(secret).verify(body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers, json_parse=False)


def test_a_changed_body_id_or_timestamp_fails_verification() -> None:
    secret = signing.new_secret()
    now = int(time.time())
    headers = signing.headers("msg_1", now, '{"a":1}', [secret])
    verifier = Webhook(secret)

    with pytest.raises(WebhookVerificationError):
        verifier.verify('{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        verifier.verify('{"a":1}', {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        verifier.verify('{"a":1}', {**headers, "webhook-timestamp": str(now - 1)})


def test_two_secrets_give_two_signatures_each_verifying_alone() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.headers("msg_1", int(time.time()), "{}", [new, old])

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify("{}", headers)
    Webhook(new).verify("{}", headers)


def test_no_secret_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^a delivery needs at least one signing secret$"):
        signing.headers("msg_1", 0, "{}", [])


def test_the_event_body_is_the_job_as_it_ended_with_its_file() -> None:
    job_id = uuid.uuid4()
    created = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    delivery = WebhookDelivery(
        job_id=job_id,
        client_id=uuid.uuid4(),
        event="job.succeeded",
        url="https://hooks.example/",
        created_at=created,
        job_snapshot={
            "id": str(job_id),
            "status": "succeeded",
            "url": "https://media.example/a.mp4",
            "metadata": {"ref": 7},
            "error_class": None,
            "error_message": None,
            "lease_owner": "never shown",
        },
    )
    artifact = Artifact(
        job_id=job_id,
        client_id=delivery.client_id,
        path="x/y.mp4",
        filename="y.mp4",
        size=10,
        sha256="ab" * 32,
        mime="video/mp4",
    )

    event = json.loads(signing.event_body(delivery, artifact, None))

    assert event["type"] == "job.succeeded"
    assert event["timestamp"] == created.isoformat()
    assert event["data"]["metadata"] == {"ref": 7}
    assert event["data"]["error"] is None
    assert event["data"]["children"] is None
    assert event["data"]["file"]["url"] == f"/v1/jobs/{job_id}/file"
    assert "path" not in event["data"]["file"]
    assert "lease_owner" not in event["data"]


def test_the_previous_secret_signs_only_during_the_grace_period() -> None:
    rotated = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    client = Client(
        name="c",
        key_prefix="p",
        key_hash="h",
        webhook_secret="whsec_new",
        previous_webhook_secret="whsec_old",
        webhook_secret_rotated_at=rotated,
    )

    during = signing_secrets(client, 3600, now=rotated + timedelta(minutes=59))
    after = signing_secrets(client, 3600, now=rotated + timedelta(minutes=61))

    assert during == ["whsec_new", "whsec_old"]
    assert after == ["whsec_new"]


def _readme_receiver(secret: str) -> dict[str, Any]:
    """The README's "verify it in Python" snippet, run as a receiver would run it."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    after = readme.split("Verify it with any Standard Webhooks library", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    assert code.count('"whsec_…"') == 1, code
    namespace: dict[str, Any] = {}
    exec(code.replace('"whsec_…"', repr(secret)), namespace)
    return namespace


def test_the_readme_receiver_accepts_a_signed_event_once_and_refuses_a_forged_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the README's handler with a client's secret
    secret = signing.new_secret()
    handle = _readme_receiver(secret)["handle"]
    job_id = str(uuid.uuid4())
    body = json.dumps({"type": "job.succeeded", "data": {"id": job_id, "status": "succeeded"}})
    headers = signing.headers("msg_1", int(time.time()), body, [secret])
    # When haul delivers an event, then retries it (same webhook-id, a new timestamp)
    first = handle(body.encode(), headers)
    retry = handle(body.encode(), signing.headers("msg_1", int(time.time()), body, [secret]))
    # Then the first is handled and the retry acknowledged without handling it again
    assert (first, retry) == (204, 204)
    assert capsys.readouterr().out == f"job.succeeded {job_id} succeeded\n"
    # and a body signed with another secret, or altered, is refused
    forged = signing.headers("msg_2", int(time.time()), body, [signing.new_secret()])
    assert handle(body.encode(), forged) == 400
    assert handle(body.replace("succeeded", "failed").encode(), headers) == 400


def test_the_headers_are_exactly_the_standard_ones_for_a_known_vector() -> None:
    # Given the Standard Webhooks specification's published example
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    # When haul signs it with that secret, and with a second one
    one = signing.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, [secret])
    two = signing.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, [secret, secret])
    # Then the headers are exactly the specification's, signature included
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert one == {
        "content-type": "application/json",
        "user-agent": "haul-webhooks/1",
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": expected,
    }
    assert two["webhook-signature"] == f"{expected} {expected}"


def test_a_secret_that_is_not_base64_is_refused() -> None:
    # (without validation, base64 would drop the "*" and read the rest as a valid key)
    with pytest.raises(ValueError, match="base64"):
        signing.secret_key("whsec_AA*EC")
    assert signing.secret_key("whsec_AAEC") == b"\x00\x01\x02"
    assert signing.secret_key("AAEC") == b"\x00\x01\x02"


def test_the_grace_period_ends_at_its_last_second_and_needs_a_rotation() -> None:
    rotated = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    base = {"name": "c", "key_prefix": "p", "key_hash": "h", "previous_webhook_secret": "whsec_old"}
    client = Client(**base, webhook_secret="whsec_new", webhook_secret_rotated_at=rotated)
    never_rotated = Client(**base, webhook_secret="whsec_new", webhook_secret_rotated_at=None)
    no_current = Client(**base, webhook_secret=None, webhook_secret_rotated_at=rotated)

    at_end = signing_secrets(client, 3600, now=rotated + timedelta(seconds=3600))
    just_before = signing_secrets(client, 3600, now=rotated + timedelta(seconds=3599))

    assert at_end == ["whsec_new"]
    assert just_before == ["whsec_new", "whsec_old"]
    assert signing_secrets(never_rotated, 3600, now=rotated) == ["whsec_new"]
    assert signing_secrets(no_current, 3600, now=rotated) == ["whsec_old"]
    # now defaults to the clock, and 2026-11-25 is long past
    assert signing_secrets(client, 3600) == ["whsec_new"]


def test_an_event_about_a_subscription_has_the_same_envelope_as_a_jobs() -> None:
    # Given a delivery about a subscription, made now
    made = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
    delivery = WebhookDelivery(
        client_id=uuid.uuid4(),
        subject_kind="subscription",
        subject_id=uuid.uuid4(),
        event="subscription.check_failed",
        url="https://hooks.example/s",
        created_at=made,
    )

    # When its body is made
    body = json.loads(signing.subject_body(delivery, {"error": "http_404: gone", "n": 3}))

    # Then it is type, timestamp and the data as given
    assert body == {
        "type": "subscription.check_failed",
        "timestamp": made.isoformat(),
        "data": {"error": "http_404: gone", "n": 3},
    }
