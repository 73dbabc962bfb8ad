"""``/v1/cookies`` in-process against real PostgreSQL: upload, list, delete, and every
refusal as RFC 9457 problem+json that names lines and domains, never a value."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from service.intake.clients import create_client
from tests.support.cookies import line, netscape, places_holding

if TYPE_CHECKING:
    from collections.abc import Iterator

    from litestar import Litestar
    from litestar.testing import TestClient

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration

VALUE = "do-not-show-me-4f1c9e"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with a HAUL_SECRET_KEY, which storing cookies needs."""
    return settings.model_copy(
        update={"secret_key": SecretStr("s" * 40), "cookie_file_max_bytes": 2_048}
    )


def youtube_file() -> bytes:
    return netscape(
        line(".youtube.com", "SID", VALUE),
        "#HttpOnly_" + line(".youtube.com", "HSID", VALUE + "-2"),
        line("music.youtube.com", "PREF", "f6=40000000", expires=0),
        line(".youtube.com", "OLD", VALUE + "-old", expires=time.time() - 60),
    )


def put(api: TestClient[Litestar], auth: dict[str, str], site: str, body: bytes) -> Any:
    return api.put(
        f"/v1/cookies/{site}", content=body, headers={**auth, "Content-Type": "text/plain"}
    )


def test_an_upload_is_kept_under_its_family_and_listed_without_values(
    api: TestClient[Litestar], auth: dict[str, str], settings: Settings
) -> None:
    # Given a cookies.txt of youtube.com with an expired cookie and a session cookie
    # When it is uploaded under www.youtube.com
    answer = put(api, auth, "www.youtube.com", youtube_file())

    # Then it is kept for the family, the expired one dropped, and no value comes back
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["site"], body["count"], body["dropped_expired"]) == ("youtube.com", 3, 1)
    assert body["earliest_expiry"] is not None
    listing = api.get("/v1/cookies", headers=auth)
    assert listing.status_code == 200
    assert [(s["site"], s["count"]) for s in listing.json()["items"]] == [("youtube.com", 3)]
    assert VALUE not in answer.text + listing.text
    # And the database holds the values only sealed
    assert places_holding(settings.database_url, VALUE) == []
    assert places_holding(settings.database_url, "youtube.com") == ["site_cookies.site"]


def test_another_name_of_the_family_replaces_the_same_cookies(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # Given youtube.com's cookies kept
    put(api, auth, "youtube.com", youtube_file())
    # When youtu.be's are uploaded (one cookie of youtube.com)
    answer = put(api, auth, "youtu.be", netscape(line(".youtube.com", "SID", "other")))
    # Then they replaced the family's cookies
    assert answer.status_code == 200, answer.text
    items = api.get("/v1/cookies", headers=auth).json()["items"]
    assert [(s["site"], s["count"]) for s in items] == [("youtube.com", 1)]


def test_each_client_sees_only_its_own_cookies(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given alice's cookies kept
    put(api, auth, "youtube.com", youtube_file())
    # When another client lists and deletes
    _, key = create_client(runtime, "bob")
    bob = {"Authorization": f"Bearer {key}"}
    # Then it sees none and cannot delete alice's
    assert api.get("/v1/cookies", headers=bob).json()["items"] == []
    assert api.delete("/v1/cookies/youtube.com", headers=bob).status_code == 404
    assert len(api.get("/v1/cookies", headers=auth).json()["items"]) == 1


def test_delete_removes_them(api: TestClient[Litestar], auth: dict[str, str]) -> None:
    put(api, auth, "youtube.com", youtube_file())

    gone = api.delete("/v1/cookies/music.youtube.com", headers=auth)

    assert gone.status_code == 204
    assert api.get("/v1/cookies", headers=auth).json()["items"] == []
    again = api.delete("/v1/cookies/youtube.com", headers=auth)
    assert again.status_code == 404
    assert again.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("site", "body", "status", "words"),
    [
        (
            "youtube.com",
            netscape(line(".youtube.com", "SID", VALUE), line(".google.com", "SID", VALUE)),
            422,
            "other sites than youtube.com: .google.com",
        ),
        ("youtube.com", netscape("youtube.com\tTRUE\t/\t" + VALUE), 422, "line 3: expected 7"),
        ("youtube.com", b'[{"name": "SID", "value": "x"}]', 422, "a JSON export"),
        ("youtube.com", netscape(), 422, "holds no cookies"),
        (
            "youtube.com",
            netscape(line(".youtube.com", "SID", VALUE, expires=1_000)),
            422,
            "all 1 cookies in the file have expired",
        ),
        ("youtube.com", b"\xff\xfe not text", 400, "not UTF-8"),
        ("not_a_host!", netscape(line(".youtube.com", "SID", VALUE)), 422, "site:"),
        (
            "youtube.com",
            netscape(*[line(".youtube.com", f"c{i}", VALUE) for i in range(40)]),
            413,
            "larger than 2048 bytes",
        ),
    ],
    ids=["foreign", "malformed", "json", "empty", "expired", "binary", "bad-site", "too-large"],
)
def test_bad_files_are_refused_as_problems_without_values(
    api: TestClient[Litestar], auth: dict[str, str], site: str, body: bytes, status: int, words: str
) -> None:
    answer = put(api, auth, site, body)

    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert words in answer.json()["detail"]
    assert VALUE not in answer.text
    assert api.get("/v1/cookies", headers=auth).json()["items"] == []


def test_a_streamed_body_past_the_limit_is_refused(
    api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    # Given a body sent in chunks, without a Content-Length to judge it by
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"#" * 1_000 + b"\n"

    answer = api.put(
        "/v1/cookies/youtube.com", content=chunks(), headers={**auth, "Content-Type": "text/plain"}
    )

    assert answer.status_code == 413, answer.text
    assert answer.json()["limit"] == "cookie_file_max_bytes"


def test_without_a_secret_key_nothing_is_stored(
    settings: Settings, runtime: Runtime, auth: dict[str, str]
) -> None:
    from litestar.testing import TestClient

    from service.api.app import create_app
    from service.runtime import Runtime as Rt

    # Given an API without HAUL_SECRET_KEY
    keyless = settings.model_copy(update={"secret_key": None})
    with TestClient(create_app(keyless, Rt(keyless, runtime.db, runtime.broker))) as api:
        # When a client uploads cookies
        answer = put(api, auth, "youtube.com", youtube_file())
    # Then they are refused, saying what is missing
    assert answer.status_code == 409, answer.text
    assert "HAUL_SECRET_KEY" in answer.json()["detail"]


def test_the_routes_need_a_key(api: TestClient[Litestar]) -> None:
    assert api.get("/v1/cookies").status_code == 401
    assert api.put("/v1/cookies/youtube.com", content=youtube_file()).status_code == 401
