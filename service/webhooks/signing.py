"""Standard Webhooks signing, and the event haul sends when a job ends.

The shape follows https://www.standardwebhooks.com: three headers,

* ``webhook-id``: the delivery's id, the same on every attempt (receivers dedupe on it);
* ``webhook-timestamp``: Unix seconds of this attempt (receivers refuse old ones);
* ``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 over ``{id}.{timestamp}.{body}``,
  keyed with the bytes of the client's ``whsec_<base64>`` secret. Several signatures,
  space-separated, let a receiver move to a rotated secret without missing a delivery.

The body is fixed at a delivery's first attempt, so every retry sends the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from service.db.models import Artifact, Client, WebhookDelivery
    from service.domain.playlists import Children

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SECRET_BYTES = 32
USER_AGENT = "haul-webhooks/1"

#: The job fields an event carries, as the API names them (``metadata``, not the column).
_JOB_FIELDS = ("id", "url", "status", "metadata", "info", "attempts", "created_at", "finished_at")


def new_secret() -> str:
    """A fresh signing secret in Standard Webhooks' form: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_…`` secret stands for (the bytes its base64 encodes)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """One ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(msg_id: str, timestamp: int, body: str, signing: Sequence[str]) -> dict[str, str]:
    """The request headers of one attempt, signed with every secret in ``signing``."""
    if not signing:
        raise ValueError("a delivery needs at least one signing secret")
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in signing),
    }


def event_body(
    delivery: WebhookDelivery, artifact: Artifact | None, children: Children | None
) -> str:
    """The JSON event: ``{"type": "job.succeeded", "timestamp": …, "data": {the job}}``.

    ``data`` is the job as the terminal transition left it (the row snapshot the
    trigger took), with its file and, for a playlist, its children as the API shows them.
    """
    job = delivery.job_snapshot
    data: dict[str, Any] = {name: job.get(name) for name in _JOB_FIELDS}
    error_class, message = job.get("error_class"), job.get("error_message")
    data["error"] = (
        {"error_class": error_class, "message": message} if error_class or message else None
    )
    data["file"] = _file(artifact) if artifact is not None else None
    data["children"] = children.as_dict() if children is not None else None
    data["links"] = {"job": f"/v1/jobs/{job.get('id')}"}
    event = {
        "type": delivery.event,
        "timestamp": delivery.created_at.isoformat() if delivery.created_at else None,
        "data": data,
    }
    return json.dumps(event, separators=(",", ":"))


def subject_body(delivery: WebhookDelivery, data: dict[str, Any]) -> str:
    """The JSON event about a subscription or a site, in the same envelope as a job's:
    ``{"type": …, "timestamp": …, "data": {…}}``; fixed when the delivery is made."""
    event = {
        "type": delivery.event,
        "timestamp": delivery.created_at.isoformat() if delivery.created_at else None,
        "data": data,
    }
    return json.dumps(event, separators=(",", ":"), default=str)


def _file(artifact: Artifact) -> dict[str, Any]:
    return {
        "filename": artifact.filename,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "mime": artifact.mime,
        "duration": artifact.duration,
        "title": artifact.title,
        "url": f"/v1/jobs/{artifact.job_id}/file",
    }


def signing_secrets(client: Client, grace_s: int, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    while the grace period after a rotation lasts."""
    current = [client.webhook_secret] if client.webhook_secret else []
    rotated = client.webhook_secret_rotated_at
    in_grace = rotated is not None and (now or datetime.now(UTC)) < rotated + timedelta(
        seconds=grace_s
    )
    if client.previous_webhook_secret and in_grace:
        return [*current, client.previous_webhook_secret]
    return current
