"""Request and response bodies of the API, as pydantic models (they make the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.domain.control import PAUSABLE_QUEUES, Hold
from service.domain.options import JobOptions, Preset
from service.domain.states import DeliveryStatus, Kind, Phase, Status

if TYPE_CHECKING:
    from service.db.models import Artifact, Client, JobAttempt, WebhookAttempt
    from service.domain.playlists import Children
    from service.fleet.admin import QueueView
    from service.intake.jobs import JobView
    from service.webhooks.endpoints import DeliveryView


class SubmitJob(BaseModel):
    """``POST /v1/jobs``: what to download and how."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="An http(s) URL of a media page, file or feed, on a public address.",
    )
    preset: Preset | None = Field(None, description="best (default), 720p, audio or mp3.")
    options: JobOptions | None = Field(None, description="Overrides on top of the preset.")
    priority: int = Field(0, ge=0, le=9, description="Higher starts first when there is a backlog.")
    metadata: dict[str, Any] | None = Field(None, description="Yours to keep; returned as given.")
    callback_url: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="An http(s) URL on a public address that receives the job's signed "
        "terminal event (Standard Webhooks); unset uses your default endpoint, if any.",
    )
    dedupe: bool = Field(
        False,
        description="If one of your jobs already succeeded for the same URL and options "
        "(after normalization), answer 200 with it instead of downloading again.",
    )

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """PostgreSQL's jsonb cannot hold a NUL character; refuse it up front."""
        if value is not None and _has_nul(value):
            raise ValueError("metadata must not contain NUL (\\u0000) characters")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RetryFilter(BaseModel):
    """``POST /v1/jobs/retry``: which ended jobs to queue again."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["failed", "cancelled"] = Field("failed", description="Which ended jobs.")
    error_class: str | None = Field(None, max_length=64, description="Only this error class.")
    since: datetime | None = Field(None, description="Only jobs that ended at or after this time.")
    client_id: uuid.UUID | None = Field(
        None, description="Admin keys only: another client's jobs (default: every client's)."
    )


class RetryResult(BaseModel):
    requeued: int


class ProgressOut(BaseModel):
    fraction: float | None
    bytes_done: int | None
    bytes_total: int | None
    speed: float | None = Field(description="Bytes per second.")
    eta: int | None = Field(description="Seconds left.")


class ErrorOut(BaseModel):
    error_class: str | None
    message: str | None


class FileOut(BaseModel):
    filename: str
    size: int
    sha256: str
    mime: str
    duration: float | None
    title: str | None
    url: str


class ChildrenOut(BaseModel):
    """A playlist's entries: how many stand in each state, and how far they have got."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(ge=0, description="How many entries the playlist has.")
    progress: float = Field(
        ge=0,
        le=1,
        description="The playlist's overall progress: an ended entry (succeeded, failed or "
        "cancelled) counts as done, a running one by its own progress, a waiting one as 0.",
    )
    queued: int = Field(ge=0)
    running: int = Field(ge=0)
    retrying: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    cancelled: int = Field(ge=0)

    @classmethod
    def of(cls, children: Children) -> ChildrenOut:
        return cls.model_validate(children.as_dict())


class JobOut(BaseModel):
    """A job as its owner sees it."""

    id: uuid.UUID
    url: str
    status: Status
    phase: Phase | None
    step: str
    kind: Kind = Field(
        Kind.DOWNLOAD, description="download, or check: a subscription's check of its feed."
    )
    subscription_id: uuid.UUID | None = Field(None, description="A check's subscription.")
    priority: int
    parent_id: uuid.UUID | None
    options: dict[str, Any]
    metadata: dict[str, Any]
    info: dict[str, Any]
    progress: ProgressOut
    attempts: int
    max_attempts: int
    error: ErrorOut | None
    last_error: str | None
    next_attempt_at: datetime | None
    dead_lettered_at: datetime | None
    held: Hold | None = Field(
        None,
        description="Why a waiting job may not start yet: its queue or client is paused, "
        "or its queue or site is at its limit of running jobs.",
    )
    children: ChildrenOut | None = Field(
        description="For a playlist: its entries by status and its overall progress."
    )
    file: FileOut | None
    callback_url: str | None = Field(None, description="Where this job's terminal event goes.")
    callback_status: DeliveryStatus | None = Field(
        None, description="Its latest webhook delivery's status; null when none was made."
    )
    created_at: datetime
    queued_at: datetime
    published_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, view: JobView) -> JobOut:
        job = view.job
        return cls(
            id=job.id,
            url=job.url,
            status=Status(job.status),
            phase=Phase(job.phase) if job.phase else None,
            step=job.step,
            kind=Kind(job.kind),
            subscription_id=job.subscription_id,
            priority=job.priority,
            parent_id=job.parent_id,
            options=job.options,
            metadata=job.user_metadata,
            info=job.info,
            progress=ProgressOut(
                fraction=job.progress,
                bytes_done=job.bytes_done,
                bytes_total=job.bytes_total,
                speed=job.speed,
                eta=job.eta,
            ),
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            error=ErrorOut(error_class=job.error_class, message=job.error_message)
            if job.error_class or job.error_message
            else None,
            last_error=job.last_error,
            next_attempt_at=job.next_attempt_at,
            dead_lettered_at=job.dead_lettered_at,
            held=Hold(job.held) if job.held else None,
            children=ChildrenOut.of(view.children) if view.children is not None else None,
            file=_file(view.artifact) if view.artifact else None,
            callback_url=job.callback_url,
            callback_status=DeliveryStatus(view.callback_status) if view.callback_status else None,
            created_at=job.created_at,
            queued_at=job.queued_at,
            published_at=job.published_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
        )


def _file(artifact: Artifact) -> FileOut:
    return FileOut(
        filename=artifact.filename,
        size=artifact.size,
        sha256=artifact.sha256,
        mime=artifact.mime,
        duration=artifact.duration,
        title=artifact.title,
        url=f"/v1/jobs/{artifact.job_id}/file",
    )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    number: int
    step: str
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error_class: str | None
    error_message: str | None
    ytdlp_version: str | None

    @classmethod
    def of(cls, attempt: JobAttempt) -> AttemptOut:
        return cls.model_validate(attempt, from_attributes=True)


class AttemptList(BaseModel):
    items: list[AttemptOut]


class Health(BaseModel):
    status: str
    checks: dict[str, str]


class QueueDepth(BaseModel):
    """One RabbitMQ queue as a passive declare sees it."""

    ready: int = Field(description="Messages waiting for a consumer (not those being worked on).")
    consumers: int = Field(description="Consumers attached: worker processes listening.")


class Readiness(Health):
    """``/health/ready``: the checks decide readiness; the queue depths are information."""

    queues: dict[str, QueueDepth | None] | None = Field(
        None,
        description="Each haul queue (with its .DQ delay and .XQ dead-letter queue) by name; "
        "null for a queue not declared yet. Null as a whole when RabbitMQ was not asked or "
        "did not answer in time (see queues_error).",
    )
    queues_error: str | None = Field(None, description="Why the queue depths are missing.")


class DeliveryAttemptOut(BaseModel):
    """One HTTP attempt of a webhook delivery."""

    number: int
    url: str
    started_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null if none came.")
    latency_ms: int | None
    outcome: str = Field(description="delivered, retry or failed.")
    error: str | None

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> DeliveryAttemptOut:
        return cls.model_validate(attempt, from_attributes=True)


class DeliveryOut(BaseModel):
    """One event (a job's end, or a subscription's) sent to one URL; ``id`` is its
    ``webhook-id``."""

    id: uuid.UUID
    event: str = Field(
        description="job.succeeded, job.failed or job.cancelled; subscription.entries_found, "
        "subscription.check_failed or subscription.paused."
    )
    url: str
    from_default: bool = Field(description="Sent to the client's default endpoint.")
    status: DeliveryStatus
    max_attempts: int | None
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[DeliveryAttemptOut]

    @classmethod
    def of(cls, view: DeliveryView) -> DeliveryOut:
        d = view.delivery
        return cls(
            id=d.id,
            event=d.event,
            url=d.url,
            from_default=d.from_default,
            status=DeliveryStatus(d.status),
            max_attempts=d.max_attempts,
            next_attempt_at=d.next_attempt_at,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            attempts=[DeliveryAttemptOut.of(a) for a in view.attempts],
        )


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class EndpointIn(BaseModel):
    """``PUT /v1/webhook``: the default endpoint for jobs without their own callback_url."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2048, description="An http(s) URL on a public address."
    )


class EndpointOut(BaseModel):
    url: str | None
    disabled_at: datetime | None = Field(
        description="When it answered 410 Gone and was disabled; PUT it again to re-enable."
    )

    @classmethod
    def of(cls, client: Client) -> EndpointOut:
        return cls(url=client.default_callback_url, disabled_at=client.default_callback_disabled_at)


class QueueOut(BaseModel):
    """A queue as an admin controls it (``GET /v1/queues``)."""

    name: str = Field(description=f"One of {', '.join(PAUSABLE_QUEUES)}.")
    paused: bool
    paused_at: datetime | None
    max_running: int | None = Field(description="Fleet-wide limit of running jobs; null: none.")
    running: int = Field(description="Jobs (or webhook attempts) running now, fleet-wide.")
    waiting: int = Field(description="Jobs (or deliveries) waiting to start.")
    depth: dict[str, int] = Field(
        description="Waiting work by state (queued, retrying) and by hold reason "
        "(queue_paused, client_paused, queue_full, site_full, client_busy, client_full), "
        "and running."
    )

    @classmethod
    def of(cls, view: QueueView) -> QueueOut:
        running = view.depth.get("running", 0)
        return cls(
            name=view.name,
            paused=view.paused_at is not None,
            paused_at=view.paused_at,
            max_running=view.max_running,
            running=running,
            waiting=sum(view.depth.values()) - running,
            depth=view.depth,
        )


class QueueList(BaseModel):
    items: list[QueueOut]


class QueueLimitIn(BaseModel):
    """``PATCH /v1/queues/{name}``: the queue's fleet-wide limit of running jobs."""

    model_config = ConfigDict(extra="forbid")

    max_running: int | None = Field(
        ge=1, le=100_000, description="At most this many run at once, fleet-wide; null: no limit."
    )


class ClientStateOut(BaseModel):
    """A client as queue control sees it."""

    id: uuid.UUID
    name: str
    tier: str
    paused_at: datetime | None

    @classmethod
    def of(cls, client: Client) -> ClientStateOut:
        return cls(id=client.id, name=client.name, tier=client.tier, paused_at=client.paused_at)
