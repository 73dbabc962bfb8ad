"""delivery subjects: a webhook delivery belongs to a job, a subscription or (later) a site

``webhook_deliveries.job_id`` becomes nullable and every delivery names its subject's
kind (``subject_kind``). Job deliveries are exactly as before: the
``jobs_terminal_callback`` trigger leaves the new columns to their defaults (kind
``job``, subject in ``job_id``, which keeps its foreign key and cascade). Any other
subject (``subscription``; ``site`` for the circuit breaker) is named by
``subject_id``, with no foreign key (the event outlives what it is about), and its
delivery carries its body from the start, so the worker never needs a job to build it.

``subscriptions.last_due_at`` is when the check now running fell due (the lag metric).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SUBJECT_VALID = (
    "(subject_kind = 'job' AND job_id IS NOT NULL AND subject_id IS NULL)"
    " OR (subject_kind <> 'job' AND job_id IS NULL AND subject_id IS NOT NULL AND body IS NOT NULL)"
)


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("subject_kind", sa.String(length=16), server_default="job", nullable=False),
    )
    op.add_column("webhook_deliveries", sa.Column("subject_id", sa.Uuid(), nullable=True))
    op.alter_column("webhook_deliveries", "job_id", existing_type=sa.Uuid(), nullable=True)
    op.create_check_constraint(
        "webhook_deliveries_subject_kind_valid",
        "webhook_deliveries",
        "subject_kind IN ('job', 'subscription', 'site')",
    )
    op.create_check_constraint(
        "webhook_deliveries_subject_valid", "webhook_deliveries", SUBJECT_VALID
    )
    op.create_index(
        "ix_webhook_deliveries_subject",
        "webhook_deliveries",
        ["subject_kind", "subject_id", sa.text("created_at DESC")],
        unique=False,
        postgresql_where=sa.text("subject_id IS NOT NULL"),
    )
    op.add_column(
        "subscriptions", sa.Column("last_due_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("subscriptions", "last_due_at")
    op.drop_index("ix_webhook_deliveries_subject", table_name="webhook_deliveries")
    op.drop_constraint("webhook_deliveries_subject_valid", "webhook_deliveries")
    op.drop_constraint("webhook_deliveries_subject_kind_valid", "webhook_deliveries")
    op.execute("DELETE FROM webhook_deliveries WHERE job_id IS NULL")
    op.alter_column("webhook_deliveries", "job_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("webhook_deliveries", "subject_id")
    op.drop_column("webhook_deliveries", "subject_kind")
