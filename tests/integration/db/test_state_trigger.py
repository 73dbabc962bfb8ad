"""The database refuses a move of ``jobs.status`` the state machine forbids (migration 0008)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Job
from service.domain.states import TRANSITIONS, Status
from service.intake.clients import create_client

if TYPE_CHECKING:
    import uuid

    from service.runtime import Runtime

pytestmark = pytest.mark.integration

SET_STATUS = sa.text("UPDATE jobs SET status = :to WHERE id = :id RETURNING status")


def _job_in(runtime: Runtime, client_id: uuid.UUID, status: Status) -> uuid.UUID:
    """A job inserted straight into ``status`` (an insert is not a move)."""
    job = Job(client_id=client_id, url="https://example.org/v", status=status.value, step="probe")
    with runtime.db.session() as session:
        session.add(job)
    return job.id


def test_the_database_refuses_a_forbidden_move_with_a_clear_error(runtime: Runtime) -> None:
    # Given a job that succeeded
    client, _ = create_client(runtime, "alice")
    job_id = _job_in(runtime, client.id, Status.SUCCEEDED)

    # When SQL written by hand tries to run it again
    with pytest.raises(sa.exc.IntegrityError) as refused, runtime.db.session() as session:
        session.execute(SET_STATUS, {"to": "running", "id": job_id})

    # Then PostgreSQL refuses it, naming the job and the move, and the row is unchanged
    assert refused.value.orig is not None
    assert refused.value.orig.sqlstate == "23514"
    assert f"job {job_id}: succeeded -> running is not a move the state machine allows" in str(
        refused.value.orig
    )
    with runtime.db.session() as session:
        assert session.get(Job, job_id).status == "succeeded"  # type: ignore[union-attr]


def test_the_database_allows_exactly_the_moves_of_the_table(runtime: Runtime) -> None:
    # Given a job in each state, for each target
    client, _ = create_client(runtime, "alice")
    allowed: dict[tuple[Status, Status], bool] = {}
    for current in Status:
        for target in Status:
            job_id = _job_in(runtime, client.id, current)
            # When its status is set straight to the target
            try:
                with runtime.db.session() as session:
                    session.execute(SET_STATUS, {"to": target.value, "id": job_id})
            except sa.exc.IntegrityError:
                allowed[(current, target)] = False
            else:
                allowed[(current, target)] = True

    # Then exactly the table's moves pass, and staying where it is always does
    expected = {(c, t): c == t or t in TRANSITIONS[c] for c in Status for t in Status}
    assert allowed == expected
