"""Cookies as a user meets them: the API and a worker as processes, a site behind a sign-in
wall (the media server's ``/members/…``: 403 without the member cookie, the file with it,
and a new session cookie set as sites rotate theirs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.cookies import member_file, places_holding
from tests.support.media_server import MEMBER_COOKIE, ROTATED_COOKIE
from tests.support.postgres import db_url
from tests.support.stack import TERMINAL, Stack, submit, wait_status

if TYPE_CHECKING:
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

#: Storing cookies needs a key; debug logs, so yt-dlp's own messages are searched too.
STACK_ENV = {
    "HAUL_SECRET_KEY": "e2e-secret-key-0123456789-0123456789-abcdef",
    "HAUL_LOG_LEVEL": "DEBUG",
}


def test_a_job_behind_a_sign_in_wall_succeeds_once_cookies_are_kept(
    stack: Stack, media: MediaServer
) -> None:
    url = media.url("/members/clip.mp4")
    with stack.http() as http:
        # Given a URL behind a sign-in wall, and no cookies: the job fails at the wall
        guest = wait_status(http, submit(http, url), TERMINAL)
        assert (guest["status"], guest["error"]["error_class"]) == ("failed", "http_403"), guest

        # When the client uploads the site's cookies
        put = http.put(
            "/v1/cookies/127.0.0.1", content=member_file(), headers={"Content-Type": "text/plain"}
        )
        assert put.status_code == 200, put.text
        assert put.json()["count"] == 1

        # Then the same URL downloads
        member = wait_status(http, submit(http, url), TERMINAL)
        assert member["status"] == "succeeded", member

        # And the cookie the site rotated was kept
        (kept,) = http.get("/v1/cookies").json()["items"]
        assert (kept["site"], kept["count"]) == ("127.0.0.1", 2)

        # And a job that says no cookies goes as a guest
        opted_out = submit(http, url, options={"cookies": False})
        assert wait_status(http, opted_out, TERMINAL)["status"] == "failed"

    # And neither value is anywhere in the database but sealed: no row, info, event,
    # attempt or webhook holds it (the search does find the URL, so it reads every row)
    database = db_url(stack.database)
    assert "jobs.url" in places_holding(database, "/members/clip.mp4")
    for secret in (MEMBER_COOKIE[1], ROTATED_COOKIE[1]):
        assert places_holding(database, secret) == [], secret
    # Nor in the API's or the worker's log, which did see the cookies lent and rotated
    logs = stack.log("api") + stack.log("worker")
    assert "cookies lent" in logs
    assert "cookies rotated" in logs
    assert MEMBER_COOKIE[1] not in logs
    assert ROTATED_COOKIE[1] not in logs
    # And no attempt left its cookie file behind
    assert not list(stack.temp.rglob("cookies.txt"))
