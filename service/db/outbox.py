"""The webhook outbox's tables: one delivery per event and URL, and its HTTP attempts.

A delivery's subject is a job (``job_id``, written by the ``jobs_terminal_callback``
trigger of migration 0004) or, since migration 0016, a subscription or a site
(``subject_kind``/``subject_id``, body fixed when the row is made). The queries are
in ``deliveries.py``; ``models`` re-exports these tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime  # noqa: TC003  (SQLModel reads annotations at run time)
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from service.domain.states import DeliveryStatus, DeliverySubject

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)


def _in(column: str, values: type[DeliveryStatus] | type[DeliverySubject]) -> str:
    listed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({listed})"


def _now(**kwargs: Any) -> Any:
    return Field(sa_type=_TIMESTAMP, sa_column_kwargs={"server_default": sa.func.now(), **kwargs})


class WebhookDelivery(SQLModel, table=True):
    """One terminal event of a job to send to one URL: the outbox row and its state.

    Created by the ``jobs_terminal_callback`` trigger (migration 0004) in the same
    transaction as the terminal transition, so no path that ends a job can forget it.
    Its ``id`` is the ``webhook-id`` header, the same on every attempt.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint(_in("status", DeliveryStatus), name="webhook_deliveries_status_valid"),
        sa.CheckConstraint(
            _in("subject_kind", DeliverySubject), name="webhook_deliveries_subject_kind_valid"
        ),
        sa.CheckConstraint(
            "(subject_kind = 'job' AND job_id IS NOT NULL AND subject_id IS NULL)"
            " OR (subject_kind <> 'job' AND job_id IS NULL AND subject_id IS NOT NULL"
            " AND body IS NOT NULL)",
            name="webhook_deliveries_subject_valid",
        ),
        sa.Index("ix_webhook_deliveries_job", "job_id", sa.text("created_at DESC")),
        # A client's newest deliveries (the dashboard's webhooks page).
        sa.Index("ix_webhook_deliveries_client", "client_id", sa.text("created_at DESC"), "id"),
        sa.Index(
            "ix_webhook_deliveries_subject",
            "subject_kind",
            "subject_id",
            sa.text("created_at DESC"),
            postgresql_where=sa.text("subject_id IS NOT NULL"),
        ),
        # The sweep: pending deliveries whose message was never sent or was lost.
        sa.Index(
            "ix_webhook_deliveries_pending",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    #: The job whose end this reports; None for any other subject.
    job_id: uuid.UUID | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("jobs.id", ondelete="CASCADE")]
    )
    #: What the event is about (:class:`DeliverySubject`); a job is named by ``job_id``.
    subject_kind: str = Field(
        default=DeliverySubject.JOB.value,
        sa_type=sa.String(16),
        sa_column_kwargs={"server_default": DeliverySubject.JOB.value},
    )
    #: The subscription (or site) the event is about; None for a job's.
    subject_id: uuid.UUID | None = None
    client_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], nullable=False
    )
    event: str = Field(sa_type=sa.String(32))
    url: str = Field(sa_type=sa.Text)
    from_default: bool = False
    #: The job row as the terminal transition left it (``to_jsonb`` of the row).
    job_snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=_JSON)
    #: The exact body, fixed at the first attempt so every retry sends the same bytes.
    body: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(default=DeliveryStatus.PENDING.value, sa_type=sa.String(16))
    attempts: int = 0
    #: None until the first attempt fixes it from ``HAUL_WEBHOOK_MAX_ATTEMPTS``.
    max_attempts: int | None = None
    claimed_by: str | None = Field(default=None, sa_type=sa.String(200))
    claimed_until: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    next_attempt_at: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    published_at: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    delivered_at: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    created_at: datetime | None = _now(nullable=False)
    updated_at: datetime | None = _now(nullable=False)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery: what the receiver answered, how fast, or what failed."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    delivery_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE")],
        nullable=False,
        index=True,
    )
    number: int
    url: str = Field(sa_type=sa.Text)
    started_at: datetime | None = _now(nullable=False)
    status_code: int | None = None
    latency_ms: int | None = None
    outcome: str = Field(sa_type=sa.String(16))
    error: str | None = Field(default=None, sa_type=sa.Text)
