"""Dashboard sessions and form tokens (``intake.sessions``), and the dashboard's doors, in-process
on a real database: what a cookie opens and what it does not."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from service.db import clients as client_rows
from service.errors import Unauthorized
from service.intake import sessions
from service.intake.clients import create_client

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime

pytestmark = pytest.mark.integration


def _token(html: str) -> str:
    found = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def _sign_in(api: TestClient[Litestar], key: str) -> None:
    token = _token(api.get("/signin").text)
    answer = api.post("/signin", data={"key": key, "_csrf": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/jobs"


def test_a_session_stands_for_its_client_until_revoked(runtime: Runtime) -> None:
    # Given a client signed in with its key
    client, key = create_client(runtime, "viewer")
    signed_in, cookie = sessions.sign_in(runtime, key)

    # Then the cookie names the client and holds no part of the key
    assert signed_in.id == client.id
    assert sessions.client_of(runtime, cookie).id == client.id
    assert key not in cookie and key[5:20] not in cookie

    # And once the key is revoked, the cookie opens nothing
    with runtime.db.session() as session:
        client_rows.revoke(session, client.id)
    with pytest.raises(Unauthorized):
        sessions.client_of(runtime, cookie)


@pytest.mark.parametrize(
    "forge",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # another signature
        lambda c: c.replace(c.split(".")[1], str(int(c.split(".")[1]) + 1)),  # another time
        lambda c: "",
        lambda c: "not-a-cookie",
        lambda c: "a.b.c",
    ],
    ids=["signature", "issued", "empty", "garbage", "parts"],
)
def test_a_forged_cookie_opens_nothing(runtime: Runtime, forge: object) -> None:
    _, key = create_client(runtime, "target")
    _, cookie = sessions.sign_in(runtime, key)

    with pytest.raises(Unauthorized):
        sessions.client_of(runtime, forge(cookie))  # type: ignore[operator]


def test_a_session_expires(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cookie issued longer ago than a session lasts
    _, key = create_client(runtime, "old")
    _, cookie = sessions.sign_in(runtime, key)
    later = time.time() + runtime.settings.session_max_age_s + 5
    monkeypatch.setattr(sessions.time, "time", lambda: later)

    # Then it no longer opens anything
    with pytest.raises(Unauthorized):
        sessions.client_of(runtime, cookie)


def test_the_secret_is_made_once_and_shared(runtime: Runtime) -> None:
    # Given no HAUL_SECRET_KEY: the first process to need one makes it in PostgreSQL
    first = sessions.secret(runtime)
    sessions._cache.clear()  # another process: nothing in its memory

    # Then another process reads the same one, and a configured key wins over it
    assert sessions.secret(runtime) == first
    runtime.settings.secret_key = SecretStr("k" * 40)
    assert sessions.secret(runtime) == b"k" * 40


def test_a_form_token_belongs_to_its_browser_and_its_session(runtime: Runtime) -> None:
    token = sessions.csrf_token(runtime, "browser-a", "session-a")

    assert sessions.csrf_valid(runtime, token, "browser-a", "session-a")
    assert not sessions.csrf_valid(runtime, token, "browser-b", "session-a")
    assert not sessions.csrf_valid(runtime, token, "browser-a", "session-b")
    assert not sessions.csrf_valid(runtime, None, "browser-a", "session-a")
    assert not sessions.csrf_valid(runtime, token, None, "session-a")


def test_the_dashboard_signs_in_and_out(api: TestClient[Litestar], runtime: Runtime) -> None:
    # Given a key
    _, key = create_client(runtime, "person")

    # When it is typed into the sign-in form
    _sign_in(api, key)

    # Then the session cookie is HttpOnly and SameSite=Strict, and the jobs page opens
    assert api.get("/jobs").status_code == 200
    page = api.get("/jobs")
    assert key not in page.text
    assert "Nothing here yet" in page.text

    # And signing out ends it
    api.post("/signout", data={"_csrf": _token(page.text)}, follow_redirects=False)
    assert api.get("/jobs", follow_redirects=False).headers["location"] == "/signin"


def test_the_session_cookie_is_strict(api: TestClient[Litestar], runtime: Runtime) -> None:
    _, key = create_client(runtime, "cookie")
    token = _token(api.get("/signin").text)

    answer = api.post("/signin", data={"key": key, "_csrf": token}, follow_redirects=False)

    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("haul_session=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


def test_a_form_without_its_token_is_refused(api: TestClient[Litestar], runtime: Runtime) -> None:
    _, key = create_client(runtime, "csrf")
    _sign_in(api, key)

    refused = api.post("/jobs", data={"url": "http://127.0.0.1:9/a.mp4"})

    assert refused.status_code == 403
    listed = api.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["items"] == []  # nothing was submitted


def test_the_cookie_opens_no_json_write_route(api: TestClient[Litestar], runtime: Runtime) -> None:
    _, key = create_client(runtime, "api")
    _sign_in(api, key)

    assert api.post("/v1/jobs", json={"url": "http://127.0.0.1:9/a.mp4"}).status_code == 401
    assert api.get("/v1/jobs").status_code == 401
    assert api.get("/v1/queues").status_code == 401


def test_operator_pages_are_404_for_other_keys(api: TestClient[Litestar], runtime: Runtime) -> None:
    _, key = create_client(runtime, "plain")
    _sign_in(api, key)

    for path in ("/ops/queues", "/ops/sites", "/ops/clients"):
        assert api.get(path).status_code == 404, path


def test_an_admin_sees_the_operator_pages(api: TestClient[Litestar], runtime: Runtime) -> None:
    _, key = create_client(runtime, "root", admin=True)
    _sign_in(api, key)

    for path in ("/ops/queues", "/ops/sites", "/ops/clients"):
        assert api.get(path).status_code == 200, path


def test_static_files_are_cached_for_a_year(api: TestClient[Litestar]) -> None:
    answer = api.get("/static/htmx-2.0.11.min.js")

    assert answer.status_code == 200
    assert "max-age=31536000" in answer.headers["cache-control"]
    assert "immutable" in answer.headers["cache-control"]
