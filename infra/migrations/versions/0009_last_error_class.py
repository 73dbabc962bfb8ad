"""last_error_class: the class of a waiting job's last error in a column of its own

Until now the class was the text before the first colon of ``last_error``, parsed
back with ``split_part`` when a job was dead-lettered, and a failed publish was told
apart by a ``publish failed:`` prefix matched with LIKE. The backfill gives every
row that has a ``last_error`` the class those rules read from it; ``last_error``
itself is left as users see it.

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-30 20:30:00

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The prefixes haul wrote in words, with their names now; anything else was
#: ``<error class>: <message>``.
BACKFILL = """
UPDATE jobs SET last_error_class = CASE
    WHEN last_error LIKE 'publish failed:%' THEN 'publish_failed'
    WHEN last_error LIKE 'lease expired:%' THEN 'lease_expired'
    ELSE left(split_part(last_error, ':', 1), 64)
END
WHERE last_error IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("jobs", sa.Column("last_error_class", sa.String(length=64), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_column("jobs", "last_error_class")
