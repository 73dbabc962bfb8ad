"""pause, fleet-wide limits per queue and per site, held jobs

Adds ``queue_controls`` (one row per queue: paused, max_running), ``site_limits``,
``clients.paused_at``, and on ``jobs`` the ``site`` (media host) and ``held``
(why a waiting job may not start now) with the indexes that count live claims.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
LIVE = "status = 'running' AND lease_expires_at IS NOT NULL"
HOLDS = "'queue_paused', 'client_paused', 'queue_full', 'site_full'"
QUEUES = ("probe", "download", "callbacks")
# The host of an http(s) URL, lower-cased, without a leading "www." when more dots follow:
# the same as service.domain.control.site_of, for rows that existed before this migration.
FILL_SITES = (
    "UPDATE jobs SET site = regexp_replace(rtrim(btrim(lower("
    "substring(url from '^[a-zA-Z]+://(\\[[^]]*\\]|[^:/?#]*)')), '[]'), '.'), "
    "'^www\\.(.*\\..*)$', '\\1')"
)


def upgrade() -> None:
    queues = op.create_table(
        "queue_controls",
        sa.Column("queue", sa.String(32), primary_key=True),
        sa.Column("paused_at", TIMESTAMP, nullable=True),
        sa.Column("max_running", sa.Integer(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("max_running IS NULL OR max_running >= 1", name="queue_max_running"),
    )
    op.bulk_insert(queues, [{"queue": q} for q in QUEUES])
    op.create_table(
        "site_limits",
        sa.Column("site", sa.String(253), primary_key=True),
        sa.Column("max_running", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("max_running >= 1", name="site_max_running"),
    )
    op.add_column("clients", sa.Column("paused_at", TIMESTAMP, nullable=True))
    op.add_column("jobs", sa.Column("site", sa.String(253), nullable=True))
    op.add_column("jobs", sa.Column("held", sa.String(16), nullable=True))
    op.create_check_constraint("jobs_held_valid", "jobs", f"held IS NULL OR held IN ({HOLDS})")
    op.execute(FILL_SITES)
    op.create_index(
        "ix_jobs_running_step", "jobs", ["step", "lease_expires_at"], postgresql_where=sa.text(LIVE)
    )
    op.create_index(
        "ix_jobs_running_site", "jobs", ["site", "lease_expires_at"], postgresql_where=sa.text(LIVE)
    )
    op.create_index(
        "ix_jobs_held",
        "jobs",
        ["step", sa.text("priority DESC"), "queued_at"],
        postgresql_where=sa.text("held IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_held", table_name="jobs")
    op.drop_index("ix_jobs_running_site", table_name="jobs")
    op.drop_index("ix_jobs_running_step", table_name="jobs")
    op.drop_constraint("jobs_held_valid", "jobs", type_="check")
    op.drop_column("jobs", "held")
    op.drop_column("jobs", "site")
    op.drop_column("clients", "paused_at")
    op.drop_table("site_limits")
    op.drop_table("queue_controls")
