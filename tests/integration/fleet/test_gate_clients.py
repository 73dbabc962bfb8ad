"""A client's fair share of the fleet (service/db/control.py: gate, release; settings
HAUL_CLIENT_MAX_RUNNING and ``clients.max_running``): one tenant cannot take every
worker thread. Claims run in threads of this process, as in test_gate.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from service.db import transitions
from service.domain.states import Status, Step
from service.fleet.gate import release_held
from service.intake.clients import set_limits
from service.runtime import build_runtime
from tests.integration.fleet.test_gate import claim_in_threads, held_of, waiting_jobs
from tests.support.jobs import must
from tests.support.rabbitmq import take_messages

if TYPE_CHECKING:
    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def test_a_clients_own_running_cap_holds_across_concurrent_claims(runtime: Runtime) -> None:
    # Given a client allowed 2 running jobs, with 8 waiting, and another client with 2
    ids = waiting_jobs(runtime, 8)
    owner = must(runtime, ids[0]).client_id
    set_limits(runtime, str(owner), max_running=2)
    others = waiting_jobs(runtime, 2)
    # When all ten are claimed at once
    claimed = [j for j in claim_in_threads(runtime, [*ids, *others], Step.DOWNLOAD) if j]
    # Then the capped client runs 2 and waits with 6 held client_busy; the other is not held
    assert sum(1 for j in claimed if j.client_id == owner) == 2
    assert held_of(runtime, ids) == {None: 2, "client_busy": 6}
    assert held_of(runtime, others) == {None: 2}
    assert all(must(runtime, i).attempts == 0 for i in ids if must(runtime, i).held)


def test_a_freed_place_releases_a_busy_clients_job(runtime: Runtime, settings: Settings) -> None:
    # Given a client at its cap of 1, with 2 jobs held client_busy
    ids = waiting_jobs(runtime, 3)
    set_limits(runtime, str(must(runtime, ids[0]).client_id), max_running=1)
    first = claim_in_threads(runtime, ids[:1], Step.DOWNLOAD)[0]
    assert first is not None
    claim_in_threads(runtime, ids[1:], Step.DOWNLOAD)
    assert held_of(runtime, ids[1:]) == {"client_busy": 2}
    assert release_held(runtime) == 0  # its place is still taken
    # When its running job ends
    with runtime.db.session() as session:
        transitions.end_job(session, first.id, Status.SUCCEEDED)
    # Then exactly one waiting job is released and published
    assert release_held(runtime) == 1
    assert len(take_messages(f"{settings.queue_prefix}.download")) == 1
    assert held_of(runtime, ids[1:]) == {None: 1, "client_busy": 1}


def test_haul_client_max_running_is_every_clients_default(settings: Settings) -> None:
    # Given HAUL_CLIENT_MAX_RUNNING=3 and a client without a cap of its own
    rt = build_runtime(settings.model_copy(update={"client_max_running": 3}))
    try:
        ids = waiting_jobs(rt, 7)
        # When its seven jobs are claimed at once
        claim_in_threads(rt, ids, Step.DOWNLOAD)
        # Then three run and four wait
        assert held_of(rt, ids) == {None: 3, "client_busy": 4}
    finally:
        rt.broker.close()
        rt.db.dispose()
