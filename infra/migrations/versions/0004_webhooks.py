"""webhooks: callback URLs, per-client signing secrets, the delivery outbox and its attempts

The ``jobs_terminal_callback`` trigger writes a ``webhook_deliveries`` row in the
same transaction as any move of a top-level job into a terminal state, so no code
path that ends a job (worker, dead letter, sweep, cancel, a playlist closing) can
forget its callback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

# 32 bytes from two random UUIDs (244 random bits, PostgreSQL's strong random source),
# so rows inserted by SQL alone (and clients that existed before) get a secret too.
NEW_SECRET = """
CREATE FUNCTION haul_new_webhook_secret() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT 'whsec_' || encode(
    decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'),
    'base64')
$$
"""  # noqa: S105  (the SQL that makes secrets, not a secret)

TERMINAL_CALLBACK = """
CREATE FUNCTION haul_job_terminal_callback() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  target text := NEW.callback_url;
  from_default boolean := false;
BEGIN
  IF NEW.parent_id IS NOT NULL THEN
    RETURN NULL;  -- a playlist's entries: the parent's event reports them
  END IF;
  IF target IS NULL THEN
    SELECT default_callback_url INTO target FROM clients
     WHERE id = NEW.client_id AND default_callback_disabled_at IS NULL;
    from_default := target IS NOT NULL;
  END IF;
  IF target IS NOT NULL THEN
    INSERT INTO webhook_deliveries
      (id, job_id, client_id, event, url, from_default, job_snapshot, status, attempts,
       created_at, updated_at)
    VALUES
      (gen_random_uuid(), NEW.id, NEW.client_id, 'job.' || NEW.status, target, from_default,
       to_jsonb(NEW), 'pending', 0, now(), now());
  END IF;
  RETURN NULL;
END
$$
"""

TRIGGER = """
CREATE TRIGGER jobs_terminal_callback AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION haul_job_terminal_callback()
"""


def upgrade() -> None:
    op.execute(NEW_SECRET)
    op.add_column(
        "clients",
        sa.Column(
            "webhook_secret",
            sa.String(length=100),
            server_default=sa.text("haul_new_webhook_secret()"),
            nullable=False,
        ),
    )
    op.add_column("clients", sa.Column("previous_webhook_secret", sa.String(length=100)))
    op.add_column("clients", sa.Column("webhook_secret_rotated_at", sa.DateTime(timezone=True)))
    op.add_column("clients", sa.Column("default_callback_url", sa.Text()))
    op.add_column("clients", sa.Column("default_callback_disabled_at", sa.DateTime(timezone=True)))
    op.add_column("jobs", sa.Column("callback_url", sa.Text()))

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("from_default", sa.Boolean(), nullable=False),
        sa.Column("job_snapshot", JSON, nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="webhook_deliveries_status_valid"
        ),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_deliveries_job",
        "webhook_deliveries",
        ["job_id", sa.text("created_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_pending",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_attempts_delivery_id"), "webhook_attempts", ["delivery_id"], unique=False
    )
    op.execute(TERMINAL_CALLBACK)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS jobs_terminal_callback ON jobs")
    op.execute("DROP FUNCTION IF EXISTS haul_job_terminal_callback()")
    op.drop_index(op.f("ix_webhook_attempts_delivery_id"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index(
        "ix_webhook_deliveries_pending",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_webhook_deliveries_job", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_column("jobs", "callback_url")
    for column in (
        "default_callback_disabled_at",
        "default_callback_url",
        "webhook_secret_rotated_at",
        "previous_webhook_secret",
        "webhook_secret",
    ):
        op.drop_column("clients", column)
    op.execute("DROP FUNCTION IF EXISTS haul_new_webhook_secret()")
