"""deliveries by client: an index for a client's newest webhook deliveries

The dashboard's webhooks page lists a client's newest deliveries of any subject; without
this index that read scanned every delivery of every client.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_client",
        "webhook_deliveries",
        ["client_id", sa.text("created_at DESC"), "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_client", table_name="webhook_deliveries")
