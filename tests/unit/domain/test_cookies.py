"""Netscape cookie files (service/domain/cookies.py): strict for uploads, lenient for what
yt-dlp wrote back, and written in the one form Python's cookie jar loads."""

from __future__ import annotations

import http.cookiejar
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from yt_dlp.cookies import YoutubeDLCookieJar

from service.domain.cookies import MAX_COOKIES, CookieFileInvalid, parse

if TYPE_CHECKING:
    from pathlib import Path

NOW = 1_800_000_000
LATER = NOW + 3_600
SECRET = "v4lue-not-to-leak"


def f(*lines: str) -> str:
    return "# Netscape HTTP Cookie File\n\n" + "\n".join(lines) + "\n"


def row(domain: str, name: str, value: str = SECRET, expires: int = LATER, sub: str = "") -> str:
    flag = sub or ("TRUE" if domain.startswith(".") else "FALSE")
    return "\t".join([domain, flag, "/", "TRUE", str(expires), name, value])


def test_a_browser_export_is_read_with_expired_cookies_dropped() -> None:
    # Given a file with an HttpOnly cookie, a session cookie, an expired one and CRLF endings
    text = f(
        row(".youtube.com", "SID"),
        "#HttpOnly_" + row(".youtube.com", "HSID"),
        row("music.youtube.com", "PREF", "x", expires=0),
        row(".youtube.com", "OLD", expires=NOW - 1),
    ).replace("\n", "\r\n")

    # When it is parsed for youtube.com
    jar = parse(text, family="youtube.com", now=NOW)

    # Then three are kept, one dropped, and the earliest expiry ignores the session cookie
    assert (jar.count, jar.dropped_expired) == (3, 1)
    assert jar.earliest_expiry == datetime.fromtimestamp(LATER, UTC)
    assert [c.name for c in jar.cookies] == ["SID", "HSID", "PREF"]
    assert jar.cookies[1].http_only


def test_the_same_cookie_twice_is_kept_once_the_last_wins() -> None:
    jar = parse(f(row(".a.com", "n", "1"), row(".a.com", "n", "2")), family="a.com", now=NOW)

    assert [(c.name, c.value) for c in jar.cookies] == [("n", "2")]


def test_a_subdomain_flag_without_a_dot_gets_the_dot_the_jar_needs() -> None:
    jar = parse(f(row("youtube.com", "SID", sub="TRUE")), family="youtube.com", now=NOW)

    assert jar.cookies[0].domain == ".youtube.com"


def test_what_is_written_loads_in_yt_dlps_jar_unchanged(tmp_path: Path) -> None:
    # Given the cookies of an upload, in every shape the parser accepts
    text = f(
        row("youtube.com", "A", sub="TRUE"),
        row("www.youtube.com", "B"),
        "#HttpOnly_" + row(".youtube.com", "C", expires=0),
    )
    jar = parse(text, family="youtube.com", now=NOW)
    path = tmp_path / "cookies.txt"
    path.write_text(jar.text())

    # When yt-dlp's jar loads the file and saves it again
    ytdlp = YoutubeDLCookieJar(str(path))
    ytdlp.load()
    ytdlp.save()

    # Then it read every cookie, and reading its file back gives the same cookies
    assert sorted(c.name for c in ytdlp) == ["A", "B", "C"]
    again = parse(path.read_text(), family="youtube.com", now=NOW, strict=False)
    assert set(again.cookies) == set(jar.cookies)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f(row(".youtube.com", "SID"), row(".google.com", "SID")), "other sites than"),
        (f("youtube.com\tTRUE\t/\tFALSE\t" + SECRET), "line 3: expected 7 tab-separated fields"),
        ('[{"domain": ".youtube.com", "value": "' + SECRET + '"}]', "a JSON export"),
        (f(row(".youtube.com", "SID", sub="MAYBE")), "TRUE or FALSE"),
        (f(row(".youtube.com", "SID").replace(str(LATER), "tomorrow")), "Unix time"),
        (f(row(".youtube.com", "SID").replace("\t/\t", "\tnoslash\t")), "path starting with /"),
        (f(row(".youtube.com", "S ID")), "characters a cookie cannot have"),
        (f(row(".youtube.com", "SID", SECRET + ";x")), "characters a cookie cannot have"),
        (f(row(".youtube.com", "SID", SECRET * 300)), "longer than 4096 bytes"),
        (f(), "holds no cookies"),
        (f(row(".youtube.com", "SID", expires=NOW)), "all 1 cookies in the file have expired"),
    ],
    ids=[
        "foreign",
        "fields",
        "json",
        "flag",
        "expiry",
        "path",
        "name",
        "value",
        "long",
        "empty",
        "expired",
    ],
)
def test_a_bad_upload_is_refused_without_showing_a_value(text: str, words: str) -> None:
    with pytest.raises(CookieFileInvalid, match=words) as refused:
        parse(text, family="youtube.com", now=NOW)

    assert SECRET not in str(refused.value)


def test_many_bad_lines_are_summed_up() -> None:
    text = f(*["bad line"] * 8)

    with pytest.raises(CookieFileInvalid, match=r"line 7: .*\(and 3 more\)$"):
        parse(text, family="youtube.com", now=NOW)


def test_too_many_cookies_are_refused() -> None:
    text = f(*[row(".youtube.com", f"c{i}") for i in range(MAX_COOKIES + 1)])

    with pytest.raises(CookieFileInvalid, match=f"at most {MAX_COOKIES}"):
        parse(text, family="youtube.com", now=NOW)


def test_lenient_reading_skips_what_strict_reading_refuses() -> None:
    # Given what yt-dlp saved after an attempt: another site's cookie, a nameless one,
    # an expired one, next to the family's
    text = f(
        row(".youtube.com", "SID"),
        row(".doubleclick.net", "IDE"),
        "\t".join([".youtube.com", "TRUE", "/", "FALSE", "0", "", "bare"]),
        row(".youtube.com", "OLD", expires=NOW - 5),
    )

    jar = parse(text, family="youtube.com", now=NOW, strict=False)

    assert [c.name for c in jar.cookies] == ["SID"]


def test_the_stdlib_refuses_a_file_with_a_mismatched_dot_so_ours_never_has_one(
    tmp_path: Path,
) -> None:
    # Why the dot matters: Python's jar refuses the line, and says so with the value in it
    path = tmp_path / "raw.txt"
    path.write_text(f(row("youtube.com", "SID", sub="TRUE")))
    with (
        pytest.warns(UserWarning, match="cookiejar bug"),
        pytest.raises(http.cookiejar.LoadError) as refused,
    ):
        http.cookiejar.MozillaCookieJar(str(path)).load(ignore_discard=True)
    assert SECRET in str(refused.value)
