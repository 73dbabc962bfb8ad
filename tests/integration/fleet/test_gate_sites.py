"""Pacing and site breakers at claim time (service/db/control.py: gate, release;
service/fleet/gate.py) on a real database and RabbitMQ: a cooling site holds its jobs
without spending attempts and leaves other sites alone, a due breaker lets one trial
go, the trial's success frees the rest, and a paced site starts one job per interval.
Claims run in threads of this process, as in test_gate.py.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import jobs as job_rows
from service.db import sites as site_rows
from service.db.models import Job, SiteBreaker
from service.domain.states import Step
from service.fleet.gate import release_held, release_paced
from service.intake.clients import create_client
from service.work.outcomes import site_answered
from tests.integration.fleet.test_gate import claim_in_threads, held_of
from tests.support.jobs import must
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def jobs_on(runtime: Runtime, *urls: str) -> list[uuid.UUID]:
    client, _ = create_client(runtime, f"sites-{uuid.uuid4().hex[:6]}")
    jobs = [Job(client_id=client.id, url=url, step="download") for url in urls]
    with runtime.db.session() as session:
        job_rows.insert_many(session, jobs)
    return [j.id for j in jobs]


def open_breaker(runtime: Runtime, site: str) -> None:
    with runtime.db.session() as session:
        for _ in range(runtime.settings.breaker_threshold):
            site_rows.throttled(session, site, "guest", runtime.settings.breaker_policy, "429")


def cooling_over(runtime: Runtime, site: str) -> None:
    with runtime.db.session() as session:
        session.execute(
            sa.update(SiteBreaker).where(SiteBreaker.site == site).values(retry_at=sa.func.now())
        )


def test_an_open_breaker_holds_its_family_without_spending_attempts_and_spares_others(
    runtime: Runtime,
) -> None:
    # Given YouTube's breaker open for guests
    open_breaker(runtime, "youtube.com")
    youtube = jobs_on(
        runtime,
        "https://www.youtube.com/watch?v=1",
        "https://youtu.be/2",
        "https://music.youtube.com/watch?v=3",
    )
    vimeo = jobs_on(runtime, "https://media.example/1.mp4")

    # When all are claimed
    claimed = [j for j in claim_in_threads(runtime, [*youtube, *vimeo], Step.DOWNLOAD) if j]

    # Then every host of the family waits site_cooling, untouched; the other site runs
    assert [j.id for j in claimed] == vimeo
    assert held_of(runtime, youtube) == {"site_cooling": 3}
    assert all(must(runtime, i).attempts == 0 for i in youtube)
    assert all(must(runtime, i).published_at is None for i in youtube)


def test_a_due_breaker_releases_one_trial_whose_success_frees_the_rest(
    runtime: Runtime, settings: Settings
) -> None:
    open_breaker(runtime, "youtube.com")
    ids = jobs_on(runtime, *(f"https://youtu.be/{n}" for n in range(4)))
    claim_in_threads(runtime, ids, Step.DOWNLOAD)
    assert held_of(runtime, ids) == {"site_cooling": 4}
    assert release_held(runtime) == 0  # still cooling

    # When the cooling is over: one job is released, and its claim is the trial
    cooling_over(runtime, "youtube.com")
    assert release_held(runtime) == 1
    (message,) = take_messages(f"{settings.queue_prefix}.download")
    trial_id = uuid.UUID(message[0]["args"][0])
    (trial,) = claim_in_threads(runtime, [trial_id], Step.DOWNLOAD)
    assert trial is not None
    with runtime.db.session() as session:
        breaker = session.get(SiteBreaker, ("youtube.com", "guest"))
        assert breaker is not None and (breaker.state, breaker.trial_job_id) == (
            "half_open",
            trial_id,
        )
    assert release_held(runtime) == 0  # the trial runs: the rest wait for its outcome

    # When the trial succeeds, the breaker closes and the others are released
    with runtime.db.session() as session:
        site_answered(runtime, session, trial_id)
    assert release_held(runtime) == 3
    assert held_of(runtime, [i for i in ids if i != trial_id]) == {None: 3}


def test_a_trial_whose_worker_died_lets_another_go_whatever_else_runs(
    runtime: Runtime, settings: Settings
) -> None:
    # Given a half-open breaker whose trial runs, three jobs cooling behind it, and a
    # job of another site running
    open_breaker(runtime, "youtube.com")
    ids = jobs_on(runtime, *(f"https://youtu.be/{n}" for n in range(4)))
    claim_in_threads(runtime, ids, Step.DOWNLOAD)
    cooling_over(runtime, "youtube.com")
    assert release_held(runtime) == 1
    (message,) = take_messages(f"{settings.queue_prefix}.download")
    trial_id = uuid.UUID(message[0]["args"][0])
    assert claim_in_threads(runtime, [trial_id], Step.DOWNLOAD)[0] is not None
    other = jobs_on(runtime, "https://media.example/1.mp4")
    assert claim_in_threads(runtime, other, Step.DOWNLOAD)[0] is not None
    assert release_held(runtime) == 0  # the trial runs
    # When the trial's worker dies (its lease expires)
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == trial_id)
            .values(lease_expires_at=sa.func.now() - sa.text("interval '1 second'"))
        )
    # Then one more trial goes: the other site's running job is not a trial of this one
    assert release_held(runtime) == 1
    assert held_of(runtime, [i for i in ids if i != trial_id]) == {None: 1, "site_cooling": 2}


def test_a_paced_site_starts_one_job_per_interval_and_each_start_releases_the_next(
    runtime: Runtime, settings: Settings
) -> None:
    # Given a site paced at one start per 0.6 s, without jitter, and four jobs at once
    with runtime.db.session() as session:
        site_rows.put_site(session, "media.example", {"min_interval_s": 0.6, "jitter": 0.0})
    ids = jobs_on(runtime, *(f"https://media.example/{n}.mp4" for n in range(4)))

    began = time.monotonic()
    claimed = [j for j in claim_in_threads(runtime, ids, Step.DOWNLOAD) if j]
    took = time.monotonic() - began

    # Then one starts now, one waits for the next start (its claim sleeps until then), and
    # the others were held site_paced with no attempt spent
    assert len(claimed) == 2
    assert took >= 0.55
    waiting = [i for i in ids if i not in {j.id for j in claimed}]
    assert all(must(runtime, i).attempts == 0 for i in waiting)
    # ... and a start released a held job to come and reserve the start after it (the
    # first start may have come before the others were held; the second came after)
    released = {
        uuid.UUID(m["args"][0]) for m, _ in take_messages(f"{settings.queue_prefix}.download")
    }
    assert 1 <= len(released) <= 2
    assert released <= set(waiting)
    expected = {None: len(released), "site_paced": 2 - len(released)}
    assert held_of(runtime, waiting) == {k: n for k, n in expected.items() if n}


def test_a_paced_sites_held_jobs_wait_for_their_start_then_go_one_at_a_time(
    runtime: Runtime,
) -> None:
    # Given a paced site whose next start is reserved a minute from now, three jobs held
    # site_paced behind it
    with runtime.db.session() as session:
        site_rows.put_site(session, "media.example", {"min_interval_s": 60.0, "jitter": 0.0})
    ids = jobs_on(runtime, *(f"https://media.example/{n}.mp4" for n in range(3)))

    def next_start(at: Any) -> None:
        with runtime.db.session() as session:
            session.execute(
                sa.update(site_rows.SiteLimit)
                .where(site_rows.SiteLimit.site == "media.example")
                .values(next_start_at=at)
            )

    next_start(sa.func.now() + sa.text("interval '1 minute'"))
    with runtime.db.session() as session:
        session.execute(sa.update(Job).where(Job.id.in_(ids)).values(held="site_paced"))
    # When held jobs are released: none goes before its start
    assert release_held(runtime) == 0
    assert held_of(runtime, ids) == {"site_paced": 3}
    # When the start is due: one goes, the others wait for the start after it
    next_start(sa.func.now() - sa.text("interval '1 second'"))
    assert release_held(runtime) == 1
    assert held_of(runtime, ids) == {None: 1, "site_paced": 2}


def test_a_release_of_a_paced_site_with_nothing_held_is_harmless(runtime: Runtime) -> None:
    release_paced(runtime, "nothing.example")
