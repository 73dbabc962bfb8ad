"""state machine trigger: the database refuses a move of ``jobs.status`` the table forbids

``jobs_transition_allowed`` runs ``BEFORE UPDATE OF status`` on every row whose status
changes and raises (SQLSTATE 23514, check_violation) unless the move is in
:data:`TRANSITIONS` below. The guarded updates in ``service/db`` already take their
sources from the same table; the trigger makes it hold for any SQL, written by hand
or by the next writer (as procrastinate's ``procrastinate_trigger_status_events`` does).
An update that leaves the status as it is (progress, a lease taken over) passes.

:data:`TRANSITIONS` is a copy of ``service/domain/states.py: TRANSITIONS`` as it stands
at this revision, not an import of it: a migration must keep meaning what it meant
when it ran. ``tests/unit/test_state_trigger.py`` checks that the newest migration's
copy equals the code's table, so a change to the table without a new migration (one
that replaces the function with the new copy) fails.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 20:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Every allowed move of ``jobs.status``: from the key to each of its values.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("running", "cancelled", "failed"),
    "running": ("queued", "retrying", "succeeded", "failed", "cancelled"),
    "retrying": ("running", "cancelled", "failed"),
    "succeeded": (),
    "failed": ("queued", "running"),
    "cancelled": ("queued", "running"),
}


def guard_function(table: dict[str, tuple[str, ...]]) -> str:
    """The trigger function, generated from ``table``."""
    moves = ", ".join(f"'{a}>{b}'" for a, targets in table.items() for b in targets)
    return f"""
CREATE OR REPLACE FUNCTION haul_job_transition_allowed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status || '>' || NEW.status NOT IN ({moves}) THEN
    RAISE EXCEPTION 'job %: % -> % is not a move the state machine allows', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation',
            HINT = 'every allowed move is in service/domain/states.py: TRANSITIONS';
  END IF;
  RETURN NEW;
END
$$
"""


TRIGGER = """
CREATE TRIGGER jobs_transition_allowed BEFORE UPDATE OF status ON jobs FOR EACH ROW
WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION haul_job_transition_allowed()
"""


def upgrade() -> None:
    op.execute(guard_function(TRANSITIONS))
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS jobs_transition_allowed ON jobs")
    op.execute("DROP FUNCTION IF EXISTS haul_job_transition_allowed()")
