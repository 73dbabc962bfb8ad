"""The SQLModel tables. Alembic migrations under ``infra/migrations`` must agree with these.

The schema enforces what it can: status values by CHECK constraint, one artifact
per job, cascading deletes, and partial indexes for the sweep queries.
"""

from __future__ import annotations

import uuid
from datetime import datetime  # noqa: TC003  (SQLModel reads annotations at run time)
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from service.domain.control import Hold
from service.domain.states import Kind, Phase, Status, Step

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def _in(
    column: str,
    values: type[Status] | type[Phase] | type[Step] | type[Hold] | type[Kind],
) -> str:
    listed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({listed})"


#: A live claim, as the fleet-wide limits count them (per queue, site and client).
_LIVE = sa.text("status = 'running' AND lease_expires_at IS NOT NULL")
_AWAITING_CHILDREN = "status = 'running' AND phase = 'awaiting_children'"


def _now_column(**kwargs: Any) -> Any:
    return Field(sa_type=TIMESTAMP, sa_column_kwargs={"server_default": sa.func.now(), **kwargs})


class Client(SQLModel, table=True):
    """A caller of the API: one per key. Keys are stored as a SHA-256 hash only."""

    __tablename__ = "clients"
    __table_args__ = (
        sa.CheckConstraint(
            "(max_active_jobs IS NULL OR max_active_jobs >= 0) AND "
            "(storage_quota_bytes IS NULL OR storage_quota_bytes >= 0) AND "
            "(requests_per_minute IS NULL OR requests_per_minute >= 1)",
            name="clients_limits_valid",
        ),
        sa.CheckConstraint("max_running IS NULL OR max_running >= 1", name="clients_max_running"),
        sa.CheckConstraint(
            "max_subscriptions IS NULL OR max_subscriptions >= 0",
            name="clients_max_subscriptions_valid",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_type=sa.String(200))
    key_prefix: str = Field(sa_type=sa.String(32), unique=True)
    key_hash: str = Field(sa_type=sa.String(64))
    scopes: list[str] = Field(default_factory=list, sa_type=JSON)
    tier: str = Field(default="standard", sa_type=sa.String(32))
    created_at: datetime | None = _now_column(nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    #: Signs webhook deliveries (Standard Webhooks ``whsec_…``). Kept readable, unlike the
    #: key: signing needs it. The database fills it for rows inserted without one.
    webhook_secret: str | None = Field(
        default=None,
        sa_type=sa.String(100),
        sa_column_kwargs={
            "server_default": sa.text("haul_new_webhook_secret()"),
            "nullable": False,
        },
    )
    #: The secret before the last rotation; it signs too until the grace period ends.
    previous_webhook_secret: str | None = Field(default=None, sa_type=sa.String(100))
    webhook_secret_rotated_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    #: Where terminal events of jobs without their own ``callback_url`` go.
    default_callback_url: str | None = Field(default=None, sa_type=sa.Text)
    #: Set when that endpoint answered 410 Gone: no more deliveries until it is set again.
    default_callback_disabled_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    #: Set by an admin: none of this client's jobs starts until it is cleared.
    paused_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    #: This client's own limits (``haul clients limits``); None means the deployment's
    #: ``HAUL_CLIENT_*`` default.
    max_active_jobs: int | None = None
    storage_quota_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    requests_per_minute: int | None = None
    max_subscriptions: int | None = None
    #: Jobs of this client running at once, fleet-wide (probe and download together).
    max_running: int | None = None


class Job(SQLModel, table=True):
    """One submitted URL and where it stands; the truth users see."""

    __tablename__ = "jobs"
    __table_args__ = (
        sa.CheckConstraint(_in("status", Status), name="jobs_status_valid"),
        sa.CheckConstraint(f"phase IS NULL OR {_in('phase', Phase)}", name="jobs_phase_valid"),
        sa.CheckConstraint(_in("step", Step), name="jobs_step_valid"),
        sa.CheckConstraint(f"held IS NULL OR {_in('held', Hold)}", name="jobs_held_valid"),
        sa.CheckConstraint(_in("kind", Kind), name="jobs_kind_valid"),
        # A check belongs to a subscription; a download never names one (its entry does).
        sa.CheckConstraint(
            "(kind = 'check') = (subscription_id IS NOT NULL)", name="jobs_check_subscription"
        ),
        # Newest-first keyset pages per client, with and without a status filter.
        sa.Index(
            "ix_jobs_client_created", "client_id", sa.text("created_at DESC"), sa.text("id DESC")
        ),
        # The default list (downloads only) and ``?kind=check``.
        sa.Index(
            "ix_jobs_client_kind_created",
            "client_id",
            "kind",
            sa.text("created_at DESC"),
            sa.text("id DESC"),
        ),
        # A subscription's checks, newest first (and its cascading delete).
        sa.Index(
            "ix_jobs_subscription_created",
            "subscription_id",
            sa.text("created_at DESC"),
            postgresql_where=sa.text("subscription_id IS NOT NULL"),
        ),
        # At most one active check per subscription (the tick and "check now" lock the
        # subscription's row first; this is the schema's word on it).
        sa.Index(
            "ux_jobs_active_check",
            "subscription_id",
            unique=True,
            postgresql_where=sa.text(
                "kind = 'check' AND status IN ('queued', 'running', 'retrying')"
            ),
        ),
        sa.Index(
            "ix_jobs_client_status_created",
            "client_id",
            "status",
            sa.text("created_at DESC"),
            sa.text("id DESC"),
        ),
        sa.Index(
            "ix_jobs_parent",
            "parent_id",
            "status",
            postgresql_where=sa.text("parent_id IS NOT NULL"),
        ),
        # The sweeps: expired leases, and waiting work whose message may be lost.
        sa.Index(
            "ix_jobs_running_lease",
            "lease_expires_at",
            postgresql_where=sa.text("status = 'running' AND lease_expires_at IS NOT NULL"),
        ),
        sa.Index(
            "ix_jobs_waiting_publish",
            "published_at",
            postgresql_where=sa.text("status = 'queued'"),
        ),
        sa.Index(
            "ix_jobs_retrying_updated",
            "updated_at",
            postgresql_where=sa.text("status = 'retrying'"),
        ),
        # Fleet-wide limits: live claims per queue and per site, and held jobs to release.
        sa.Index("ix_jobs_running_step", "step", "lease_expires_at", postgresql_where=_LIVE),
        sa.Index("ix_jobs_running_site", "site", "lease_expires_at", postgresql_where=_LIVE),
        sa.Index("ix_jobs_running_client", "client_id", "lease_expires_at", postgresql_where=_LIVE),
        sa.Index(
            "ix_jobs_client_full",
            "client_id",
            sa.text("priority DESC"),
            "queued_at",
            postgresql_where=sa.text("held = 'client_full'"),
        ),
        sa.Index(
            "ix_jobs_held",
            "step",
            sa.text("priority DESC"),
            "queued_at",
            postgresql_where=sa.text("held IS NOT NULL"),
        ),
        # Playlist parents waiting for their children, and ended top-level jobs by age.
        sa.Index("ix_jobs_awaiting_children", "id", postgresql_where=sa.text(_AWAITING_CHILDREN)),
        sa.Index(
            "ix_jobs_top_finished",
            "finished_at",
            postgresql_where=sa.text("parent_id IS NULL AND finished_at IS NOT NULL"),
        ),
        # Dedupe: a client's succeeded job for a URL (hashed: a URL may outgrow a btree entry).
        sa.Index(
            "ix_jobs_client_succeeded_url",
            "client_id",
            sa.text("md5(url)"),
            postgresql_where=sa.text("status = 'succeeded'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], nullable=False
    )
    parent_id: uuid.UUID | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("jobs.id", ondelete="CASCADE")]
    )
    url: str = Field(sa_type=sa.Text)
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    user_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSON, sa_column_kwargs={"name": "metadata"}
    )
    #: ``download`` (every submitted URL and its entries) or ``check`` (a subscription's).
    kind: str = Field(
        default=Kind.DOWNLOAD.value,
        sa_type=sa.String(16),
        sa_column_kwargs={"server_default": Kind.DOWNLOAD.value},
    )
    #: The subscription a check lists (None for downloads); deleted with it.
    subscription_id: uuid.UUID | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("subscriptions.id", ondelete="CASCADE")]
    )
    status: str = Field(default=Status.QUEUED.value, sa_type=sa.String(16))
    phase: str | None = Field(default=None, sa_type=sa.String(24))
    step: str = Field(default=Step.PROBE.value, sa_type=sa.String(16))
    priority: int = Field(default=0, sa_type=sa.SmallInteger)
    #: The site family (see ``domain/sites.py: family_of_url``), for per-site limits,
    #: pacing and breakers; set on insert.
    site: str | None = Field(default=None, sa_type=sa.String(253))
    #: Why a waiting job may not start now (a pause, a full queue or site); None otherwise.
    #: A held job has no message in the broker: it is published again when released.
    held: str | None = Field(default=None, sa_type=sa.String(16))

    progress: float | None = None
    bytes_done: int | None = Field(default=None, sa_type=sa.BigInteger)
    bytes_total: int | None = Field(default=None, sa_type=sa.BigInteger)
    speed: float | None = None
    eta: int | None = None
    info: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

    attempts: int = 0
    max_attempts: int = 4
    lease_owner: str | None = Field(default=None, sa_type=sa.String(200))
    lease_expires_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    error_class: str | None = Field(default=None, sa_type=sa.String(64))
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    #: What a waiting job last met (``<error class>: <message>``), shown to users.
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    #: The error class of ``last_error``, written with it (an ``ErrorClass``): what a
    #: dead letter fails the job with, and how a failed publish is told apart.
    last_error_class: str | None = Field(default=None, sa_type=sa.String(64))
    next_attempt_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    dead_lettered_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    #: Where this job's terminal event is POSTed; None falls back to the client's default.
    callback_url: str | None = Field(default=None, sa_type=sa.Text)

    created_at: datetime | None = _now_column(nullable=False)
    queued_at: datetime | None = _now_column(nullable=False)
    published_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    started_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    finished_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    updated_at: datetime | None = _now_column(nullable=False)


class QueueControl(SQLModel, table=True):
    """An admin's switches for one queue: paused or not, and its fleet-wide ``max_running``.

    One row per queue, created by the migration. Claims read it ``FOR SHARE``, so a
    pause or resume waits for claims in flight and every later claim sees it.
    """

    __tablename__ = "queue_controls"
    __table_args__ = (
        sa.CheckConstraint("max_running IS NULL OR max_running >= 1", name="queue_max_running"),
    )

    queue: str = Field(sa_type=sa.String(32), primary_key=True)
    paused_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    max_running: int | None = None
    updated_at: datetime | None = _now_column(nullable=False)


class JobAttempt(SQLModel, table=True):
    """One claim of a job by a worker, and how it ended."""

    __tablename__ = "job_attempts"

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    job_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("jobs.id", ondelete="CASCADE")], nullable=False, index=True
    )
    number: int
    step: str = Field(sa_type=sa.String(16))
    worker: str = Field(sa_type=sa.String(200))
    started_at: datetime | None = _now_column(nullable=False)
    finished_at: datetime | None = Field(default=None, sa_type=TIMESTAMP, index=True)
    outcome: str | None = Field(default=None, sa_type=sa.String(16))
    error_class: str | None = Field(default=None, sa_type=sa.String(64))
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    ytdlp_version: str | None = Field(default=None, sa_type=sa.String(32))


class Artifact(SQLModel, table=True):
    """The file a job produced: where it is and what it is."""

    __tablename__ = "artifacts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    job_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("jobs.id", ondelete="CASCADE")], nullable=False, unique=True
    )
    client_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], nullable=False, index=True
    )
    path: str = Field(sa_type=sa.Text)
    filename: str = Field(sa_type=sa.Text)
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str = Field(sa_type=sa.String(64))
    mime: str = Field(sa_type=sa.String(100))
    duration: float | None = None
    title: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime | None = _now_column(nullable=False)


class JobEvent(SQLModel, table=True):
    """A job's change of status or phase, appended by a database trigger on ``jobs``.

    The trigger also sends ``NOTIFY haul_jobs`` for every change (progress too), which
    the API fans out as Server-Sent Events; these rows let a client that reconnects
    with ``Last-Event-ID`` replay every state change it missed.
    """

    __tablename__ = "job_events"
    __table_args__ = (sa.Index("ix_job_events_client_id", "client_id", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    job_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("jobs.id", ondelete="CASCADE")], nullable=False, index=True
    )
    client_id: uuid.UUID = Field(nullable=False)
    status: str = Field(sa_type=sa.String(16))
    phase: str | None = Field(default=None, sa_type=sa.String(32))
    at: datetime | None = _now_column(nullable=False)


class IdempotencyKey(SQLModel, table=True):
    """An ``Idempotency-Key`` a client used, and the job its request made (or found).

    The primary key makes concurrent claims of one key wait for each other, so exactly
    one creates a job. The job reference is checked at commit (deferred): the key is
    claimed before the job row it names is inserted, in the same transaction.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.Index("ix_idempotency_keys_expires", "expires_at"),
        sa.Index("ix_idempotency_keys_job", "job_id"),
    )

    client_id: uuid.UUID = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")]
    )
    key: str = Field(primary_key=True, sa_type=sa.String(255))
    #: SHA-256 of the request's meaning (``domain/idempotency.py: fingerprint``).
    request_hash: str = Field(sa_type=sa.String(64))
    job_id: uuid.UUID = Field(
        sa_column_args=[
            sa.ForeignKey("jobs.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED")
        ],
        nullable=False,
    )
    created_at: datetime | None = _now_column(nullable=False)
    expires_at: datetime = Field(sa_type=TIMESTAMP)


class ClientRate(SQLModel, table=True):
    """A client's request rate: one GCRA timestamp (domain/ratelimit.py) every API shares."""

    __tablename__ = "client_rates"

    client_id: uuid.UUID = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")]
    )
    #: The theoretical arrival time: the quota is whole again once it lies in the past.
    tat: datetime = Field(sa_type=TIMESTAMP)


# Tables that live beside their queries; importing models registers them too.
from service.db.cookies import SiteCookies  # noqa: E402
from service.db.extractions import JobExtraction  # noqa: E402
from service.db.feeds import EntryState, Subscription, SubscriptionEntry  # noqa: E402
from service.db.hosts import WorkerHost as WorkerHost  # noqa: E402  (GET /v1/ytdlp's)
from service.db.outbox import WebhookAttempt, WebhookDelivery  # noqa: E402
from service.db.secrets import AppSecret  # noqa: E402
from service.db.sites import SiteBreaker, SiteLimit  # noqa: E402

__all__ = [
    "AppSecret",
    "Artifact",
    "Client",
    "ClientRate",
    "EntryState",
    "IdempotencyKey",
    "Job",
    "JobAttempt",
    "JobEvent",
    "JobExtraction",
    "QueueControl",
    "SiteBreaker",
    "SiteCookies",
    "SiteLimit",
    "Subscription",
    "SubscriptionEntry",
    "WebhookAttempt",
    "WebhookDelivery",
]
