"""The admin API of queue control (service/api/control.py) in-process: who may use it, limits
set, shown and removed, and bad input as problems.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from service.db import sites as site_rows
from tests.support.api import problem

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime


pytestmark = pytest.mark.integration


# --- the admin API ------------------------------------------------------------------------------


def test_queue_control_needs_an_admin_key(api: TestClient[Litestar], auth: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/v1/queues"),
        ("POST", "/v1/queues/download/pause"),
        ("PATCH", "/v1/queues/download"),
        ("GET", "/v1/sites"),
        ("PUT", "/v1/sites/example.com"),
    ]:
        body = {"max_running": 2} if method in {"PATCH", "PUT"} else None
        problem(api.request(method, path, headers=auth, json=body), 403)


def test_limits_are_set_shown_and_removed(api: TestClient[Litestar], admin: dict[str, str]) -> None:
    limited = api.patch("/v1/queues/download", headers=admin, json={"max_running": 3})
    assert limited.status_code == 200, limited.text
    assert limited.json()["max_running"] == 3
    queues = {q["name"]: q for q in api.get("/v1/queues", headers=admin).json()["items"]}
    assert set(queues) == {"probe", "download", "callbacks"}
    assert queues["download"]["max_running"] == 3
    assert queues["probe"]["max_running"] is None

    site = api.put("/v1/sites/WWW.Example.COM", headers=admin, json={"max_running": 2})
    assert site.status_code == 200, site.text
    assert {k: site.json()[k] for k in ("site", "max_running", "running", "breakers")} == {
        "site": "example.com",
        "max_running": 2,
        "running": 0,
        "breakers": [],
    }
    assert api.get("/v1/sites", headers=admin).json()["items"] == [site.json()]
    assert api.delete("/v1/sites/example.com", headers=admin).status_code == 204
    assert api.get("/v1/sites", headers=admin).json()["items"] == []
    problem(api.delete("/v1/sites/example.com", headers=admin), 404)

    cleared = api.patch("/v1/queues/download", headers=admin, json={"max_running": None})
    assert cleared.json()["max_running"] is None


def test_bad_control_input_is_a_problem(api: TestClient[Litestar], admin: dict[str, str]) -> None:
    problem(api.post("/v1/queues/nope/pause", headers=admin), 404)
    problem(api.patch("/v1/queues/callbacks", headers=admin, json={"max_running": 1}), 422)
    problem(api.patch("/v1/queues/download", headers=admin, json={"max_running": 0}), 422)
    problem(api.put("/v1/sites/user@host", headers=admin, json={"max_running": 1}), 422)
    problem(api.put("/v1/sites/a..b", headers=admin, json={"max_running": 1}), 422)
    problem(api.put("/v1/sites/example.com", headers=admin, json={"min_interval_s": -1}), 422)
    problem(api.put("/v1/sites/example.com", headers=admin, json={"jitter": "lots"}), 422)
    problem(api.put("/v1/sites/example.com", headers=admin, json={"pace": 3}), 422)
    problem(api.post("/v1/sites/host:80/reset", headers=admin), 422)


def test_a_site_is_its_family_and_its_pacing_is_set_field_by_field(
    api: TestClient[Litestar], admin: dict[str, str]
) -> None:
    # Given YouTube, paced by default, named by one of its other hosts
    youtube = api.get("/v1/sites/youtu.be", headers=admin).json()
    assert (youtube["site"], youtube["own_min_interval_s"]) == ("youtube.com", None)
    assert youtube["min_interval_s"] > 0

    # When an admin sets its pacing through another host of the family, then its limit
    paced = api.put(
        "/v1/sites/music.youtube.com", headers=admin, json={"min_interval_s": 12, "jitter": 0.25}
    )
    assert paced.status_code == 200, paced.text
    limited = api.put("/v1/sites/www.youtube.com", headers=admin, json={"max_running": 2})

    # Then one site holds both, and a field left out kept its value
    body = limited.json()
    assert (body["site"], body["max_running"]) == ("youtube.com", 2)
    assert (body["min_interval_s"], body["jitter"]) == (12, 0.25)
    back = api.put("/v1/sites/youtube.com", headers=admin, json={"min_interval_s": None})
    assert back.json()["own_min_interval_s"] is None
    assert back.json()["min_interval_s"] == youtube["min_interval_s"]


def test_reset_closes_a_site_breaker(
    api: TestClient[Litestar], admin: dict[str, str], runtime: Runtime
) -> None:
    # Given a site whose breaker opened for guests
    with runtime.db.session() as session:
        for _ in range(runtime.settings.breaker_threshold):
            site_rows.throttled(
                session,
                "example.com",
                "guest",
                runtime.settings.breaker_policy,
                "rate_limited: 429",
            )
    listed = api.get("/v1/sites", headers=admin).json()["items"]
    (breaker,) = [b for s in listed if s["site"] == "example.com" for b in s["breakers"]]
    assert (breaker["identity"], breaker["state"]) == ("guest", "open")
    assert breaker["retry_at"] is not None and breaker["reason"] == "rate_limited: 429"
    assert breaker["failures"] == runtime.settings.breaker_threshold

    # When an admin resets it
    reset = api.post("/v1/sites/www.example.com/reset", headers=admin)

    # Then it is closed and clean (and no longer listed as a breaker to watch)
    assert reset.status_code == 200, reset.text
    assert reset.json()["breakers"] == []
    with runtime.db.session() as session:
        assert site_rows.breakers(session) == []
    problem(api.post(f"/v1/clients/{uuid.uuid4()}/pause", headers=admin), 404)
