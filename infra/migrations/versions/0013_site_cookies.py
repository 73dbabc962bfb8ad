"""site cookies: a client's cookies per site family, sealed under HAUL_SECRET_KEY

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 10:00:00

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_cookies",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(length=253), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("earliest_expiry", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id", "site"),
    )


def downgrade() -> None:
    op.drop_table("site_cookies")
