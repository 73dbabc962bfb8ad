"""job_events and the trigger that records state changes and notifies listeners

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:20:00

Every insert or update of a job sends ``NOTIFY haul_jobs`` with the fields a live
view shows; a change of status or phase is also appended to ``job_events``, whose
ids are the SSE event ids a client resumes from. Doing it in the database means no
writer (worker, sweep, API, a person with psql) can forget to announce a change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TRIGGER_FUNCTION = """
CREATE FUNCTION haul_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.status IS DISTINCT FROM OLD.status
       OR NEW.phase IS DISTINCT FROM OLD.phase THEN
        INSERT INTO job_events (job_id, client_id, status, phase)
        VALUES (NEW.id, NEW.client_id, NEW.status, NEW.phase)
        RETURNING id INTO event_id;
    END IF;
    PERFORM pg_notify('haul_jobs', json_build_object(
        'event_id', event_id,
        'job_id', NEW.id,
        'client_id', NEW.client_id,
        'parent_id', NEW.parent_id,
        'status', NEW.status,
        'phase', NEW.phase,
        'progress', NEW.progress,
        'bytes_done', NEW.bytes_done,
        'bytes_total', NEW.bytes_total,
        'speed', NEW.speed,
        'eta', NEW.eta,
        'error_class', NEW.error_class,
        'updated_at', NEW.updated_at
    )::text);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_job_events_job_id"), "job_events", ["job_id"], unique=False)
    op.create_index("ix_job_events_client_id", "job_events", ["client_id", "id"], unique=False)
    op.execute(TRIGGER_FUNCTION)
    op.execute(
        "CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE ON jobs "
        "FOR EACH ROW EXECUTE FUNCTION haul_job_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER jobs_changed ON jobs")
    op.execute("DROP FUNCTION haul_job_changed()")
    op.drop_index("ix_job_events_client_id", table_name="job_events")
    op.drop_index(op.f("ix_job_events_job_id"), table_name="job_events")
    op.drop_table("job_events")
