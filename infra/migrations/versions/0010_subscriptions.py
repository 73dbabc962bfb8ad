"""subscriptions: followed feeds and the entries their checks have seen

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 20:15:00

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NOW = sa.text("now()")
STATES = "state IN ('queued', 'pending', 'filtered', 'before_backfill', 'duplicate')"


def upgrade() -> None:
    op.add_column("clients", sa.Column("max_subscriptions", sa.Integer(), nullable=True))
    op.create_check_constraint(
        "clients_max_subscriptions_valid",
        "clients",
        "max_subscriptions IS NULL OR max_subscriptions >= 0",
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("filters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("backfill", sa.String(length=16), nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("interval_s >= 1", name="subscriptions_interval_valid"),
        sa.CheckConstraint("keep_last IS NULL OR keep_last >= 1", name="subscriptions_keep_valid"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_subscriptions_client_created",
        "subscriptions",
        ["client_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_subscriptions_due",
        "subscriptions",
        ["next_check_at"],
        postgresql_where=sa.text("paused_at IS NULL"),
    )
    op.create_table(
        "subscription_entries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(STATES, name="subscription_entries_state_valid"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "key", name="uq_subscription_entries_key"),
    )
    op.create_index("ix_subscription_entries_job", "subscription_entries", ["job_id"])
    op.create_index(
        "ix_subscription_entries_pending",
        "subscription_entries",
        ["subscription_id", "seen_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("subscription_entries")
    op.drop_table("subscriptions")
    op.drop_constraint("clients_max_subscriptions_valid", "clients", type_="check")
    op.drop_column("clients", "max_subscriptions")
