"""job extractions: a probed single item's info, kept for its download step

The probe's yt-dlp info dict (sanitized, cookies scrubbed) waits here for the
download, which reuses it instead of extracting the URL a second time. The download's
claim deletes the row as it reads it; deleting the job deletes it too.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_extractions",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("info", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("job_extractions")
