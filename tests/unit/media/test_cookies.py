"""What yt-dlp is told of cookies and what it may not hand back (service/media/cookies.py)."""

from __future__ import annotations

from pathlib import Path

from service.media.cookies import params, scrub


def test_a_cookie_file_is_named_to_yt_dlp_and_none_means_none() -> None:
    assert params(Path("/w/cookies.txt")) == {"cookiefile": "/w/cookies.txt"}
    assert params(None) == {}


def test_scrub_takes_cookies_out_of_every_level_of_an_info_dict() -> None:
    # Given an info dict as yt-dlp fills it when it sent cookies
    info = {
        "title": "t",
        "cookies": "SID=secret; Domain=.youtube.com",
        "http_headers": {"User-Agent": "ua", "Cookie": "SID=secret"},
        "formats": [
            {"url": "u", "cookies": "SID=secret", "http_headers": {"cookie": "SID=secret"}}
        ],
        "entries": [{"requested_formats": [{"http_headers": {"Set-Cookie": "a=secret"}}]}],
    }

    # When it is scrubbed
    clean = scrub(info)

    # Then nothing of the cookies is left, and everything else is
    assert "secret" not in repr(clean)
    assert clean["title"] == "t"
    assert clean["http_headers"] == {"User-Agent": "ua"}
    assert clean["formats"][0] == {"url": "u", "http_headers": {}}
