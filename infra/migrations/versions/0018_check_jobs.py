"""check jobs: a subscription's check is a job of kind ``check``

``jobs.kind`` (``download`` for every existing row, ``check`` for a subscription's check)
and ``jobs.subscription_id`` (a check's subscription, deleted with it). A check waits for
the subscriptions queue's actor, so ``step`` may also be ``subscriptions``. At most one
check of a subscription is active at a time (a partial unique index). The job-ended
webhook trigger fires for downloads only: a check's outcome is written on its
subscription, whose own events announce it.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('queued', 'running', 'retrying')"

TRIGGER = """
CREATE TRIGGER jobs_terminal_callback AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status
      AND NEW.kind = 'download')
EXECUTE FUNCTION haul_job_terminal_callback()
"""

OLD_TRIGGER = """
CREATE TRIGGER jobs_terminal_callback AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION haul_job_terminal_callback()
"""


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("kind", sa.String(length=16), server_default="download", nullable=False),
    )
    op.add_column("jobs", sa.Column("subscription_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "jobs_subscription_id_fkey",
        "jobs",
        "subscriptions",
        ["subscription_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_check_constraint("jobs_kind_valid", "jobs", "kind IN ('download', 'check')")
    op.create_check_constraint(
        "jobs_check_subscription", "jobs", "(kind = 'check') = (subscription_id IS NOT NULL)"
    )
    op.drop_constraint("jobs_step_valid", "jobs")
    op.create_check_constraint(
        "jobs_step_valid", "jobs", "step IN ('probe', 'download', 'subscriptions')"
    )
    op.create_index(
        "ix_jobs_client_kind_created",
        "jobs",
        ["client_id", "kind", sa.text("created_at DESC"), sa.text("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_jobs_subscription_created",
        "jobs",
        ["subscription_id", sa.text("created_at DESC")],
        unique=False,
        postgresql_where=sa.text("subscription_id IS NOT NULL"),
    )
    op.create_index(
        "ux_jobs_active_check",
        "jobs",
        ["subscription_id"],
        unique=True,
        postgresql_where=sa.text(f"kind = 'check' AND {ACTIVE}"),
    )
    op.execute("DROP TRIGGER jobs_terminal_callback ON jobs")
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER jobs_terminal_callback ON jobs")
    op.execute(OLD_TRIGGER)
    op.execute("DELETE FROM jobs WHERE kind = 'check'")
    op.drop_index("ux_jobs_active_check", table_name="jobs")
    op.drop_index("ix_jobs_subscription_created", table_name="jobs")
    op.drop_index("ix_jobs_client_kind_created", table_name="jobs")
    op.drop_constraint("jobs_step_valid", "jobs")
    op.create_check_constraint("jobs_step_valid", "jobs", "step IN ('probe', 'download')")
    op.drop_constraint("jobs_check_subscription", "jobs")
    op.drop_constraint("jobs_kind_valid", "jobs")
    op.drop_constraint("jobs_subscription_id_fkey", "jobs", type_="foreignkey")
    op.drop_column("jobs", "subscription_id")
    op.drop_column("jobs", "kind")
