"""partial indexes for the stranded-parents and retention sweeps

Found by the table-scale benchmark (bench/scenarios/table.py): on a million rows
both sweeps scanned the whole table every minute.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

AWAITING = "status = 'running' AND phase = 'awaiting_children'"
ENDED = "parent_id IS NULL AND finished_at IS NOT NULL"


def upgrade() -> None:
    op.create_index("ix_jobs_awaiting_children", "jobs", ["id"], postgresql_where=sa.text(AWAITING))
    op.create_index(
        "ix_jobs_top_finished", "jobs", ["finished_at"], postgresql_where=sa.text(ENDED)
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_top_finished", table_name="jobs", postgresql_where=sa.text(ENDED))
    op.drop_index(
        "ix_jobs_awaiting_children", table_name="jobs", postgresql_where=sa.text(AWAITING)
    )
