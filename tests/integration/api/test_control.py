"""The admin API of queue control (service/api/control.py) in-process: who may use it, limits
set, shown and removed, and bad input as problems.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from tests.support.api import problem

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient


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
    assert site.json() == {"site": "example.com", "max_running": 2, "running": 0}
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
    problem(api.post(f"/v1/clients/{uuid.uuid4()}/pause", headers=admin), 404)
