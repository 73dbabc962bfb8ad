"""Errors as RFC 9457 problems (service/api/problems.py): what a client sees of a bug."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from litestar.testing import TestClient

from tests.support.api import problem

if TYPE_CHECKING:
    from litestar import Litestar


pytestmark = pytest.mark.integration


def test_an_unexpected_error_is_a_500_problem_without_internals(
    api: TestClient[Litestar], auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bug deep inside, whose message names a path on the server
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom in /srv/haul/service/secret.py line 42")

    monkeypatch.setattr("service.intake.jobs.get", broken)
    # When a client meets it
    response = api.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)
    # Then it gets a plain 500 problem: no traceback, no message, no path
    body = problem(response, 500)
    assert body["detail"] == "an internal error occurred; it was logged"
    assert "boom" not in response.text
    assert "/srv/" not in response.text
    assert "Traceback" not in response.text
