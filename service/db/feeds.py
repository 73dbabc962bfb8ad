"""The subscription tables: a followed feed, and every entry it was ever seen to list.

Kept apart from ``models.py`` (which re-exports them) so that file stays one screenful
per concept. What the schema guarantees: an entry is recorded once per subscription
(unique on its stable key), so two checks racing cannot both decide about it; an
entry's state is one of :class:`EntryState`; deleting a subscription deletes its entries,
deleting a job only clears the entry's link (the entry stays seen, so it never
downloads again by itself).
"""

from __future__ import annotations

import uuid
from datetime import datetime  # noqa: TC003  (SQLModel reads annotations at run time)
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)


class EntryState(StrEnum):
    """What a check decided about an entry."""

    #: Admitted: a job was made (``job_id``, unless that job was deleted since).
    QUEUED = "queued"
    #: Waiting for admission (a quota or the active-jobs limit refused it); tried each check.
    PENDING = "pending"
    #: A filter left it out (``reason`` says which).
    FILTERED = "filtered"
    #: Listed at the first check and outside the backfill.
    BEFORE_BACKFILL = "before_backfill"
    #: The client already had a succeeded job for this URL and options (``job_id`` is it).
    DUPLICATE = "duplicate"


def _now(**kwargs: Any) -> Any:
    return Field(sa_type=_TIMESTAMP, sa_column_kwargs={"server_default": sa.func.now(), **kwargs})


class Subscription(SQLModel, table=True):
    """A feed, channel or playlist a client follows, and when it is next checked."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.CheckConstraint("interval_s >= 1", name="subscriptions_interval_valid"),
        sa.CheckConstraint("keep_last IS NULL OR keep_last >= 1", name="subscriptions_keep_valid"),
        sa.Index(
            "ix_subscriptions_client_created",
            "client_id",
            sa.text("created_at DESC"),
            sa.text("id DESC"),
        ),
        # The scheduler's tick: due subscriptions that are not paused.
        sa.Index(
            "ix_subscriptions_due", "next_check_at", postgresql_where=sa.text("paused_at IS NULL")
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], nullable=False
    )
    url: str = Field(sa_type=sa.Text)
    options: dict[str, Any] = Field(default_factory=dict, sa_type=_JSON)
    user_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_type=_JSON, sa_column_kwargs={"name": "metadata"}
    )
    callback_url: str | None = Field(default=None, sa_type=sa.Text)
    interval_s: int = 3600
    #: title_include, title_exclude, min_duration_s, max_duration_s, published_after.
    filters: dict[str, Any] = Field(default_factory=dict, sa_type=_JSON)
    #: "none", "all" or a number as text: what the first check downloads.
    backfill: str = Field(default="none", sa_type=sa.String(16))
    keep_last: int | None = None

    next_check_at: datetime | None = _now(nullable=False)
    last_checked_at: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    #: When the check rung last fell due (the tick's claim, or a "check now"): the lag metric.
    last_due_at: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    #: "ok" or "failed"; None before the first check.
    last_outcome: str | None = Field(default=None, sa_type=sa.String(16))
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    consecutive_failures: int = 0
    paused_at: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    paused_reason: str | None = Field(default=None, sa_type=sa.Text)

    created_at: datetime | None = _now(nullable=False)
    updated_at: datetime | None = _now(nullable=False)


class SubscriptionEntry(SQLModel, table=True):
    """One entry a subscription's checks have listed, and what became of it."""

    __tablename__ = "subscription_entries"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "key", name="uq_subscription_entries_key"),
        sa.CheckConstraint(
            "state IN (" + ", ".join(f"'{s.value}'" for s in EntryState) + ")",
            name="subscription_entries_state_valid",
        ),
        sa.Index("ix_subscription_entries_job", "job_id"),
        sa.Index(
            "ix_subscription_entries_pending",
            "subscription_id",
            "seen_at",
            postgresql_where=sa.text("state = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, sa_type=sa.BigInteger, primary_key=True)
    subscription_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("subscriptions.id", ondelete="CASCADE")], nullable=False
    )
    #: Stable across checks: the extractor and id, the feed's guid, or the normalized URL.
    key: str = Field(sa_type=sa.Text)
    url: str = Field(sa_type=sa.Text)
    title: str | None = Field(default=None, sa_type=sa.Text)
    duration_s: float | None = None
    published_at: datetime | None = Field(default=None, sa_type=_TIMESTAMP)
    state: str = Field(sa_type=sa.String(16))
    reason: str | None = Field(default=None, sa_type=sa.Text)
    job_id: uuid.UUID | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("jobs.id", ondelete="SET NULL")]
    )
    seen_at: datetime | None = _now(nullable=False)
