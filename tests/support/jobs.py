"""Job rows and what they left behind, read straight from the database and the disk, the
way a test checks what one use case did."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db import attempts as attempt_rows
from service.db import jobs as job_rows
from service.db.models import Artifact, Job, JobAttempt
from service.domain.options import normalize
from service.domain.states import Step

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from service.db.models import Client
    from service.runtime import Runtime


def row(runtime: Runtime, job_id: uuid.UUID | str) -> Job | None:
    with runtime.db.session() as session:
        return job_rows.get(session, uuid.UUID(str(job_id)))


def must(runtime: Runtime, job_id: uuid.UUID) -> Job:
    job = row(runtime, job_id)
    assert job is not None, f"job {job_id} is gone"
    return job


def insert(runtime: Runtime, *jobs: Job) -> list[uuid.UUID]:
    """Store rows directly, all in one transaction (so they share ``created_at``)."""
    with runtime.db.session() as session:
        session.add_all(jobs)
        session.flush()
        return [job.id for job in jobs]


def job_maker(runtime: Runtime, client: Client) -> Callable[..., uuid.UUID]:
    """Stores one job row of ``client`` per call with the given fields (queued for its
    download by default). A field ending in ``_in`` or ``_ago`` becomes a time that long
    after or before the insert (``lease_expires_in=…``, ``lease_expires_at_ago=…``): a
    time fixed when a parametrized case is collected may be minutes old when it runs."""

    def make(**fields: Any) -> uuid.UUID:
        fields.setdefault("step", Step.DOWNLOAD.value)
        fields.setdefault("url", "https://media.example/v.mp4")
        now = datetime.now(UTC)
        for name in [f for f in fields if f.endswith("_in")]:
            fields[name.removesuffix("_in") + "_at"] = now + fields.pop(name)
        for name in [f for f in fields if f.endswith("_ago")]:
            fields[name.removesuffix("_ago")] = now - fields.pop(name)
        made = Job(
            client_id=client.id,
            options=normalize(None, None).model_dump(mode="json"),
            **fields,
        )
        return insert(runtime, made)[0]

    return make


def artifacts_of(runtime: Runtime, job_id: uuid.UUID) -> list[Artifact]:
    with runtime.db.session() as session:
        return list(session.execute(sa.select(Artifact).where(Artifact.job_id == job_id)).scalars())


def attempts_of(runtime: Runtime, job_id: uuid.UUID) -> list[JobAttempt]:
    with runtime.db.session() as session:
        return attempt_rows.for_job(session, job_id)


def children_of(runtime: Runtime, parent_id: uuid.UUID) -> list[Job]:
    with runtime.db.session() as session:
        stmt = sa.select(Job).where(Job.parent_id == parent_id).order_by(Job.url)
        return list(session.execute(stmt).scalars())


def leftovers(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*")) if directory.exists() else []


def blocked_on_a_lock(runtime: Runtime) -> bool:
    """Whether a session of this test's database is waiting on a lock (a concurrency
    test's sign that its second transaction has reached the first one's rows)."""
    with runtime.db.session() as session:
        waiting = session.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def client_row_locked(runtime: Runtime, client_id: uuid.UUID) -> bool:
    """Whether another transaction holds the client's row as a submission or a retry locks
    it (``FOR NO KEY UPDATE``, ``db/clients.py: lock``): ``FOR SHARE NOWAIT`` fails on
    that, not on the share lock a pause check takes."""
    with runtime.db.engine.connect() as conn:
        try:
            conn.execute(
                sa.text("SELECT id FROM clients WHERE id = :id FOR SHARE NOWAIT"), {"id": client_id}
            )
        except sa.exc.OperationalError as exc:
            assert "could not obtain lock" in str(exc)
            return True
    return False
