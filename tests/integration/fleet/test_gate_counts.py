"""Each switch and count of the gate is about its own queue, site or client: pausing or
limiting one leaves the others alone. Each test here fails when the condition that names
the queue, site or client is dropped from its statement (``db/control.py``; the guard
harness, docs/testing.md).
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from service.db import control as control_rows
from service.db import jobs as job_rows
from service.db import sites as site_rows
from service.db import transitions
from service.db.cookies import SiteCookies
from service.db.models import Job
from service.db.outbox import WebhookDelivery
from service.domain.control import Hold
from service.domain.states import Phase, Status, Step
from service.fleet.gate import release_held
from service.intake.clients import create_client
from tests.integration.fleet.test_gate_guards import claimed, held
from tests.support.jobs import blocked_on_a_lock
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from service.db.control import Verdict
    from service.db.models import Client
    from service.runtime import Runtime

pytestmark = pytest.mark.integration


def a_client(runtime: Runtime) -> Client:
    made, _ = create_client(runtime, f"c-{uuid.uuid4().hex[:6]}")
    return made


def queued(runtime: Runtime, client: Client, url: str, **values: Any) -> uuid.UUID:
    """A queued row, as if submitted and published (its site from its URL)."""
    values.setdefault("step", Step.DOWNLOAD.value)
    job = Job(client_id=client.id, url=url, **values)
    with runtime.db.session() as session:
        job_rows.insert(session, job)
    return job.id


def verdict(runtime: Runtime, job_id: uuid.UUID) -> Verdict:
    with runtime.db.session() as session:
        return control_rows.gate(session, job_id, Step.DOWNLOAD.value, None)


def test_a_queue_limit_counts_only_that_queues_running_jobs(runtime: Runtime) -> None:
    client = a_client(runtime)
    with runtime.db.session() as session:
        control_rows.set_max_running(session, Step.DOWNLOAD.value, 1)
    probing = queued(runtime, client, "https://a.example/1", step=Step.PROBE.value)
    assert claimed(runtime, probing, Step.PROBE)
    assert claimed(runtime, queued(runtime, client, "https://a.example/2")), (
        "a probe is not a download"
    )
    third = queued(runtime, client, "https://a.example/3")
    assert not claimed(runtime, third)
    assert held(runtime, third) == Hold.QUEUE_FULL.value


def test_a_site_limit_counts_only_that_sites_running_jobs(runtime: Runtime) -> None:
    client = a_client(runtime)
    with runtime.db.session() as session:
        control_rows.put_site_limit(session, "a.example", 1)
    assert claimed(runtime, queued(runtime, client, "https://b.example/1"))
    assert claimed(runtime, queued(runtime, client, "https://a.example/1")), "b's job is not a's"
    second = queued(runtime, client, "https://a.example/2")
    assert not claimed(runtime, second)
    assert held(runtime, second) == Hold.SITE_FULL.value


def test_a_paused_client_holds_only_its_own_jobs(runtime: Runtime) -> None:
    paused, active = a_client(runtime), a_client(runtime)
    with runtime.db.session() as session:
        assert control_rows.set_client_paused(session, paused.id, True) is not None
    theirs, its = (
        queued(runtime, paused, "https://a.example/1"),
        queued(runtime, active, "https://a.example/2"),
    )
    with runtime.db.session() as session:
        assert control_rows.pause_reason(session, Step.DOWNLOAD.value, active.id) is None
        assert (
            control_rows.pause_reason(session, Step.DOWNLOAD.value, paused.id) is Hold.CLIENT_PAUSED
        )
    assert claimed(runtime, its)
    assert not claimed(runtime, theirs)
    assert held(runtime, theirs) == Hold.CLIENT_PAUSED.value


def test_a_paused_or_limited_queue_leaves_the_other_queue_alone(runtime: Runtime) -> None:
    client = a_client(runtime)
    with runtime.db.session() as session:
        control_rows.set_paused(session, Step.DOWNLOAD.value, True)
        control_rows.set_max_running(session, Step.DOWNLOAD.value, 1)
        controls = control_rows.controls(session)
    states = {c.queue: (c.paused_at is not None, c.max_running) for c in controls}
    assert states[Step.DOWNLOAD.value] == (True, 1)
    assert states[Step.PROBE.value] == (False, None)
    probe = queued(runtime, client, "https://a.example/1", step=Step.PROBE.value)
    assert claimed(runtime, probe, Step.PROBE)


def test_removing_a_sites_limit_leaves_the_other_sites_limits(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        control_rows.put_site_limit(session, "a.example", 1)
        control_rows.put_site_limit(session, "b.example", 2)
    with runtime.db.session() as session:
        assert control_rows.delete_site_limit(session, "a.example")
    with runtime.db.session() as session:
        limits = {s.site: s.max_running for s in site_rows.site_rows(session)}
    assert limits == {"b.example": 2}


def test_only_the_clients_own_entries_waiting_for_room_make_its_claims_limited(
    runtime: Runtime,
) -> None:
    # A claim is "limited" (its end releases held jobs) when the client has entries held
    # for want of room: another client's such entries, or its own held for another
    # reason, do not make it so.
    client, other = a_client(runtime), a_client(runtime)
    job_id = queued(runtime, client, "https://a.example/1")
    queued(runtime, other, "https://a.example/2", held=Hold.CLIENT_FULL.value)
    queued(runtime, client, "https://a.example/3", held=Hold.QUEUE_PAUSED.value)
    assert not verdict(runtime, job_id).limited
    queued(runtime, client, "https://a.example/4", held=Hold.CLIENT_FULL.value)
    assert verdict(runtime, job_id).limited


def test_only_the_clients_own_cookies_make_its_attempt_look_for_them(runtime: Runtime) -> None:
    client, other = a_client(runtime), a_client(runtime)
    job_id = queued(runtime, client, "https://a.example/1")
    with runtime.db.session() as session:
        session.add(SiteCookies(client_id=other.id, site="a.example", sealed="x", count=1))
    assert not verdict(runtime, job_id).has_cookies
    with runtime.db.session() as session:
        session.add(SiteCookies(client_id=client.id, site="b.example", sealed="x", count=1))
    assert verdict(runtime, job_id).has_cookies


# --- holding and releasing touch only the rows they are about ----------------------------------


def test_a_hold_never_lands_on_a_job_that_moved_on(runtime: Runtime) -> None:
    running = queued(runtime, a_client(runtime), "https://a.example/1")
    assert claimed(runtime, running)
    with runtime.db.session() as session:
        assert control_rows.hold(session, running, Hold.QUEUE_PAUSED) is None
    assert held(runtime, running) is None


def test_entries_waiting_for_their_clients_room_are_not_released_with_the_queue(
    runtime: Runtime,
) -> None:
    # A client_full entry goes when its own client has room (db/room.py), never with a
    # free slot of the queue.
    client = a_client(runtime)
    entry = queued(runtime, client, "https://a.example/1", held=Hold.CLIENT_FULL.value)
    full = queued(runtime, client, "https://a.example/2", held=Hold.QUEUE_FULL.value)
    with runtime.db.session() as session:
        released = control_rows.release(session, Step.DOWNLOAD.value, None)
    assert [j.id for j in released] == [full]
    assert held(runtime, entry) == Hold.CLIENT_FULL.value


def test_a_job_released_meanwhile_by_another_release_is_not_released_twice(
    runtime: Runtime,
) -> None:
    # Given a held job with room, and another transaction that releases it and has not
    # yet committed when this release chooses it
    job_id = queued(runtime, a_client(runtime), "https://a.example/1", held=Hold.QUEUE_FULL.value)
    other = runtime.db.session()
    with other as session:
        session.execute(sa.update(Job).where(Job.id == job_id).values(held=None))
        outcome: list[list[Job]] = []

        def release() -> None:
            with runtime.db.session() as mine:
                outcome.append(control_rows.release(mine, Step.DOWNLOAD.value, None))

        racing = threading.Thread(target=release)
        racing.start()
        wait_for(lambda: blocked_on_a_lock(runtime), timeout=10, what="the release to wait")
    # When the other commits, this release's update reads the row again
    racing.join(timeout=10)
    # Then it releases nothing: the job's message goes out once
    assert outcome == [[]]


def test_a_release_with_nothing_held_stops_after_one_statement(runtime: Runtime) -> None:
    queued(runtime, a_client(runtime), "https://a.example/1")  # waiting, not held
    before = runtime.db.counts.statements
    assert release_held(runtime) == 0
    assert runtime.db.counts.statements - before == 1


# --- what an operator sees of each queue -------------------------------------------------------


def test_a_queues_depth_counts_only_the_jobs_waiting_or_running_in_it_now(
    runtime: Runtime,
) -> None:
    client = a_client(runtime)
    queued(runtime, client, "https://a.example/1")
    queued(runtime, client, "https://a.example/2", held=Hold.QUEUE_FULL.value)
    queued(runtime, client, "https://a.example/3", status=Status.SUCCEEDED.value)
    queued(
        runtime,
        client,
        "https://a.example/list",
        step=Step.PROBE.value,
        status=Status.RUNNING.value,
        phase=Phase.AWAITING_CHILDREN.value,
    )
    with runtime.db.session() as session:
        depths = control_rows.job_depths(session)
    assert depths == {Step.DOWNLOAD.value: {"queued": 1, Hold.QUEUE_FULL.value: 1}}


def test_the_callbacks_depth_counts_only_pending_deliveries(runtime: Runtime) -> None:
    client = a_client(runtime)
    ended = [
        queued(runtime, client, f"https://a.example/{n}", callback_url="https://hooks.example/")
        for n in range(2)
    ]
    with runtime.db.session() as session:
        for job_id in ended:
            assert transitions.end_job(session, job_id, Status.CANCELLED) is not None
    with runtime.db.session() as session:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.job_id == ended[0])
            .values(status="delivered")
        )
    with runtime.db.session() as session:
        assert control_rows.delivery_depths(session) == {"queued": 1}
