"""The SQL behind pacing and site breakers (service/db/sites.py) on a real PostgreSQL:
the identity of a job, a breaker's moves and their announcement, one trial at a time,
the free success, and start reservations."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from service.db import jobs as job_rows
from service.db import sites as site_rows
from service.db.models import Job, SiteBreaker
from service.domain.breaker import Admission, BreakerState, Policy
from service.intake.clients import create_client

if TYPE_CHECKING:
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

POLICY = Policy(threshold=2, cooldown=timedelta(minutes=1))


def a_job(
    runtime: Runtime, url: str = "https://www.youtube.com/watch?v=1", **values: object
) -> Job:
    client, _ = create_client(runtime, f"sites-{uuid.uuid4().hex[:6]}")
    job = Job(client_id=client.id, url=url, step="download", **values)
    with runtime.db.session() as session:
        job_rows.insert_many(session, [job])
    return job


def with_cookies(runtime: Runtime, job: Job) -> None:
    with runtime.db.session() as session:
        session.execute(
            sa.text(
                "INSERT INTO site_cookies (client_id, site, sealed, count) "
                "VALUES (:c, :s, 'sealed', 1)"
            ),
            {"c": job.client_id, "s": job.site},
        )


def breaker_row(runtime: Runtime, site: str, identity: str = "guest") -> SiteBreaker | None:
    with runtime.db.session() as session:
        return session.get(SiteBreaker, (site, identity))


def test_a_jobs_identity_is_its_clients_cookies_only_when_an_attempt_would_send_them(
    runtime: Runtime,
) -> None:
    plain = a_job(runtime)
    cookied = a_job(runtime)
    with_cookies(runtime, cookied)
    refused = a_job(runtime, options={"cookies": False})
    with_cookies(runtime, refused)

    with runtime.db.session() as session:
        assert site_rows.identity_of(session, plain.id, True) == ("youtube.com", "guest")
        assert site_rows.identity_of(session, cookied.id, True) == (
            "youtube.com",
            f"client:{cookied.client_id}",
        )
        # without HAUL_SECRET_KEY a worker cannot open them: a guest
        assert site_rows.identity_of(session, cookied.id, False) == ("youtube.com", "guest")
        assert site_rows.identity_of(session, refused.id, True) == ("youtube.com", "guest")


def test_throttles_open_the_breaker_and_every_move_is_announced(runtime: Runtime) -> None:
    url = make_url(runtime.settings.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as listener:
        listener.execute("LISTEN haul_jobs")
        # Given a threshold of two: the first throttle counts, the second opens
        with runtime.db.session() as session:
            first = site_rows.throttled(
                session, "youtube.com", "guest", POLICY, "rate_limited: 429"
            )
        with runtime.db.session() as session:
            second = site_rows.throttled(
                session, "youtube.com", "guest", POLICY, "rate_limited: 429"
            )

        assert (first.state, first.opened) == (BreakerState.CLOSED, False)
        assert (second.state, second.opened) == (BreakerState.OPEN, True)
        row = breaker_row(runtime, "youtube.com")
        assert row is not None and row.opened_at is not None and row.retry_at is not None
        cooling = (row.retry_at - row.opened_at).total_seconds()
        assert cooling == pytest.approx(POLICY.cooldown.total_seconds(), abs=2)
        # Then admins' streams heard both moves
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=2)]
    sites = [n for n in notes if n.get("kind") == "site"]
    assert [(n["site"], n["identity"], n["state"], n["failures"]) for n in sites] == [
        ("youtube.com", "guest", "closed", 1),
        ("youtube.com", "guest", "open", 2),
    ]


def test_a_success_costs_no_write_while_closed_and_closes_an_open_breaker(runtime: Runtime) -> None:
    job = a_job(runtime)
    with runtime.db.session() as session:
        assert site_rows.succeeded(session, job.id, True) is None
    assert breaker_row(runtime, "youtube.com") is None  # nothing was written

    with runtime.db.session() as session:
        for _ in range(POLICY.threshold):
            site_rows.throttled(session, "youtube.com", "guest", POLICY, "429")
    with runtime.db.session() as session:
        assert site_rows.succeeded(session, job.id, True) == ("youtube.com", "guest", "429")
    row = breaker_row(runtime, "youtube.com")
    assert row is not None
    assert (row.state, row.failures, row.opens, row.retry_at) == ("closed", 0, 0, None)


def test_a_due_breaker_lets_exactly_one_of_many_concurrent_claims_through(runtime: Runtime) -> None:
    # Given an open breaker whose cooling is over, and ten jobs that want to start at once
    with runtime.db.session() as session:
        for _ in range(POLICY.threshold):
            site_rows.throttled(session, "youtube.com", "guest", POLICY, "429")
        session.execute(sa.update(SiteBreaker).values(retry_at=sa.func.now()))
    soon = datetime.now(UTC) + timedelta(minutes=1)
    jobs = [
        a_job(runtime, status="running", lease_owner="w/1", lease_expires_at=soon)
        for _ in range(10)
    ]
    start = threading.Barrier(len(jobs))

    def admit(job: Job) -> Admission:
        start.wait(timeout=10)
        with runtime.db.session() as session:
            return site_rows.admit(session, "youtube.com", "guest", job.id)

    with ThreadPoolExecutor(len(jobs)) as pool:
        verdicts = list(pool.map(admit, jobs))

    # Then one is the trial (the breaker's row lock orders them) and the others cool
    assert verdicts.count(Admission.TRIAL) == 1
    assert verdicts.count(Admission.COOL) == 9
    row = breaker_row(runtime, "youtube.com")
    assert row is not None and row.state == "half_open"
    assert row.trial_job_id == jobs[verdicts.index(Admission.TRIAL)].id


def test_a_live_trial_holds_everyone_else_and_a_dead_one_makes_room(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        for _ in range(POLICY.threshold):
            site_rows.throttled(session, "youtube.com", "guest", POLICY, "429")
        session.execute(sa.update(SiteBreaker).values(retry_at=sa.func.now()))
    trial, other = a_job(runtime), a_job(runtime)
    with runtime.db.session() as session:
        assert site_rows.admit(session, "youtube.com", "guest", trial.id) is Admission.TRIAL
        session.execute(
            sa.update(Job)
            .where(Job.id == trial.id)
            .values(
                status="running",
                lease_owner="w/1",
                lease_expires_at=sa.func.now() + timedelta(minutes=1),
            )
        )
    with runtime.db.session() as session:
        assert site_rows.admit(session, "youtube.com", "guest", other.id) is Admission.COOL
    with runtime.db.session() as session:  # the trial's worker died: its lease lapsed
        session.execute(
            sa.update(Job).where(Job.id == trial.id).values(lease_expires_at=sa.func.now())
        )
    with runtime.db.session() as session:
        assert site_rows.admit(session, "youtube.com", "guest", other.id) is Admission.TRIAL


def test_start_reservations_are_spaced_by_the_gap_up_to_the_horizon(runtime: Runtime) -> None:
    gap, horizon = timedelta(seconds=10), timedelta(seconds=15)
    waits = []
    for _ in range(3):
        with runtime.db.session() as session:
            waits.append(site_rows.reserve_start(session, "vimeo.com", gap, horizon))

    assert waits[0] == pytest.approx(0, abs=0.5)
    assert waits[1] == pytest.approx(10, abs=0.5)
    assert waits[2] is None  # the next free start is 20 s away: past the horizon
