"""index for the sweep that republishes overdue retries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_retrying_updated",
        "jobs",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text("status = 'retrying'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_jobs_retrying_updated",
        table_name="jobs",
        postgresql_where=sa.text("status = 'retrying'"),
    )
