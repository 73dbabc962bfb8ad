"""The application as a whole (service/api/app.py): the OpenAPI schema it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from litestar.testing import TestClient

if TYPE_CHECKING:
    from litestar import Litestar


pytestmark = pytest.mark.integration


def test_the_openapi_schema_is_served_and_lists_the_jobs_api(api: TestClient[Litestar]) -> None:
    # When a client fetches the OpenAPI document
    response = api.get("/schema/openapi.json")
    # Then it describes the jobs endpoints
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/v1/jobs" in paths
    assert {"get", "post"} <= paths["/v1/jobs"].keys()
    assert "/v1/jobs/{job_id}/file" in paths
