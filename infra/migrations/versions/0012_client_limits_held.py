"""client fairness: holds for a full or busy client, a client's own running cap

Adds ``client_full`` (a playlist entry past its client's ``max_active_jobs``) and
``client_busy`` (its client runs its ``max_running`` jobs) to the holds a waiting
job may have, ``clients.max_running``, and the indexes that count a client's live
claims and find its entries waiting for room.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

LIVE = "status = 'running' AND lease_expires_at IS NOT NULL"
HOLDS_BEFORE = "'queue_paused', 'client_paused', 'queue_full', 'site_full'"
HOLDS = f"{HOLDS_BEFORE}, 'client_full', 'client_busy'"


def upgrade() -> None:
    op.drop_constraint("jobs_held_valid", "jobs", type_="check")
    op.create_check_constraint("jobs_held_valid", "jobs", f"held IS NULL OR held IN ({HOLDS})")
    op.add_column("clients", sa.Column("max_running", sa.Integer(), nullable=True))
    op.create_check_constraint(
        "clients_max_running", "clients", "max_running IS NULL OR max_running >= 1"
    )
    op.create_index(
        "ix_jobs_running_client",
        "jobs",
        ["client_id", "lease_expires_at"],
        postgresql_where=sa.text(LIVE),
    )
    op.create_index(
        "ix_jobs_client_full",
        "jobs",
        ["client_id", sa.text("priority DESC"), "queued_at"],
        postgresql_where=sa.text("held = 'client_full'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_client_full", table_name="jobs")
    op.drop_index("ix_jobs_running_client", table_name="jobs")
    op.drop_constraint("clients_max_running", "clients", type_="check")
    op.drop_column("clients", "max_running")
    op.execute("UPDATE jobs SET held = NULL WHERE held IN ('client_full', 'client_busy')")
    op.drop_constraint("jobs_held_valid", "jobs", type_="check")
    op.create_check_constraint(
        "jobs_held_valid", "jobs", f"held IS NULL OR held IN ({HOLDS_BEFORE})"
    )
