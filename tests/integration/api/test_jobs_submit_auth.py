"""Authentication on ``POST /v1/jobs``, the hot route: every key that does not
authenticate gets the one 401 and stores nothing, a revocation holds from the next
submission, authentication comes before the body's checks, and a job is its key's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db import clients as client_rows
from service.db.models import Job
from service.intake.clients import create_client
from tests.support.api import SOURCE, problem, submit
from tests.support.jobs import must

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime

pytestmark = pytest.mark.integration


def _jobs(runtime: Runtime) -> int:
    with runtime.db.session() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(Job)).scalar_one())


def test_a_submit_with_any_key_that_does_not_authenticate_is_the_same_401_and_stores_nothing(
    api: TestClient[Litestar], runtime: Runtime, auth: dict[str, str]
) -> None:
    # Given a working key, and a revoked one
    submit(api, auth)
    key = auth["Authorization"].removeprefix("Bearer ")
    former, revoked_key = create_client(runtime, "former")
    with runtime.db.session() as session:
        assert client_rows.revoke(session, former.id)
    stored = _jobs(runtime)
    attempts = {
        "missing": {},
        "malformed": {"Authorization": "Bearer not-a-haul-key"},
        "unknown": {"Authorization": "Bearer haul_" + "A" * 43},
        # the working key's prefix (what finds its row) with another secret after it
        "wrong secret": {"Authorization": f"Bearer {key[:15]}{'B' * (len(key) - 15)}"},
        "revoked": {"Authorization": f"Bearer {revoked_key}"},
    }
    # When each submits a plain job
    bodies = {}
    for name, headers in attempts.items():
        response = api.post("/v1/jobs", json={"url": SOURCE}, headers=headers)
        bodies[name] = problem(response, 401)
    # Then every answer is the same 401, and no job was stored
    assert len({json.dumps(b, sort_keys=True) for b in bodies.values()}) == 1
    assert _jobs(runtime) == stored


def test_a_revoked_key_cannot_submit_on_its_very_next_request(
    api: TestClient[Litestar], runtime: Runtime
) -> None:
    # Given a client whose key submits
    client, key = create_client(runtime, "leaving")
    headers = {"Authorization": f"Bearer {key}"}
    submit(api, headers)
    # When the operator revokes it
    with runtime.db.session() as session:
        assert client_rows.revoke(session, client.id)
    # Then its next submission is refused
    problem(api.post("/v1/jobs", json={"url": SOURCE}, headers=headers), 401)


def test_without_a_valid_key_a_bad_body_is_still_a_401(api: TestClient[Litestar]) -> None:
    # When a request with an unknown key submits an address haul refuses
    response = api.post(
        "/v1/jobs",
        json={"url": "file:///etc/passwd"},
        headers={"Authorization": "Bearer haul_" + "A" * 43},
    )
    # Then it learns that its key is wrong, not what is wrong with its job
    problem(response, 401)


def test_a_job_submitted_with_a_key_belongs_to_that_keys_client(
    api: TestClient[Litestar], runtime: Runtime
) -> None:
    # Given two clients
    alice, alice_key = create_client(runtime, "alice")
    bob, bob_key = create_client(runtime, "bob")
    # When each submits
    mine = submit(api, {"Authorization": f"Bearer {alice_key}"})
    theirs = submit(api, {"Authorization": f"Bearer {bob_key}"})
    # Then each job is its submitter's, and only its submitter sees it
    owners = (must(runtime, mine["id"]).client_id, must(runtime, theirs["id"]).client_id)
    assert owners == (alice.id, bob.id)
    other = api.get(f"/v1/jobs/{mine['id']}", headers={"Authorization": f"Bearer {bob_key}"})
    problem(other, 404)
