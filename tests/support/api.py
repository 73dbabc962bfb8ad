"""The API as a client sees it in-process: RFC 9457 problems, a submission, and the client
behind a key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.intake.clients import authenticate

if TYPE_CHECKING:
    import httpx
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.db.models import Client
    from service.runtime import Runtime

#: Never fetched: no worker runs in the API tests.
SOURCE = "https://media.example/watch/clip.mp4"
PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return dict(body)


def submit(api: TestClient[Litestar], auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = api.post("/v1/jobs", json={"url": SOURCE, **body}, headers=auth)
    assert response.status_code == 202, response.text
    return dict(response.json())


def client_of(runtime: Runtime, headers: dict[str, str]) -> Client:
    """The client whose key is in ``headers`` (as the API would find it)."""
    return authenticate(runtime, headers["Authorization"])
