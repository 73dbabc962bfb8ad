"""client limits: per-client quota overrides, idempotency keys, request rates, dedupe index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 14:00:00

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SUCCEEDED = "status = 'succeeded'"
LIMITS_VALID = (
    "(max_active_jobs IS NULL OR max_active_jobs >= 0) AND "
    "(storage_quota_bytes IS NULL OR storage_quota_bytes >= 0) AND "
    "(requests_per_minute IS NULL OR requests_per_minute >= 1)"
)


def upgrade() -> None:
    op.add_column("clients", sa.Column("max_active_jobs", sa.Integer(), nullable=True))
    op.add_column("clients", sa.Column("storage_quota_bytes", sa.BigInteger(), nullable=True))
    op.add_column("clients", sa.Column("requests_per_minute", sa.Integer(), nullable=True))
    op.create_check_constraint("clients_limits_valid", "clients", LIMITS_VALID)

    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], ondelete="CASCADE", deferrable=True, initially="DEFERRED"
        ),
        sa.PrimaryKeyConstraint("client_id", "key"),
    )
    op.create_index("ix_idempotency_keys_expires", "idempotency_keys", ["expires_at"])
    op.create_index("ix_idempotency_keys_job", "idempotency_keys", ["job_id"])

    op.create_table(
        "client_rates",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id"),
    )

    op.create_index(
        "ix_jobs_client_succeeded_url",
        "jobs",
        ["client_id", sa.text("md5(url)")],
        postgresql_where=sa.text(SUCCEEDED),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_jobs_client_succeeded_url", table_name="jobs", postgresql_where=sa.text(SUCCEEDED)
    )
    op.drop_table("client_rates")
    op.drop_index("ix_idempotency_keys_job", table_name="idempotency_keys")
    op.drop_index("ix_idempotency_keys_expires", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_constraint("clients_limits_valid", "clients", type_="check")
    op.drop_column("clients", "requests_per_minute")
    op.drop_column("clients", "storage_quota_bytes")
    op.drop_column("clients", "max_active_jobs")
