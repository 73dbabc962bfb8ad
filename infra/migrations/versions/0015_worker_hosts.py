"""worker hosts: the yt-dlp each worker machine runs; attempts indexed by when they ended

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 04:00:00

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_hosts",
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("ytdlp_version", sa.String(length=32), nullable=False),
        sa.Column("ytdlp_installed", sa.String(length=32), nullable=True),
        sa.Column("ejs_version", sa.String(length=32), nullable=True),
        sa.Column("deno_version", sa.String(length=32), nullable=True),
        sa.Column(
            "since", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("host"),
    )
    op.create_index("ix_job_attempts_finished_at", "job_attempts", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_job_attempts_finished_at", table_name="job_attempts")
    op.drop_table("worker_hosts")
