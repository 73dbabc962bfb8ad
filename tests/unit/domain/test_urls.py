"""Which source URLs the API accepts, and the canonical form it stores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.urls import MAX_URL_LENGTH, UrlRejected, normalize_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://example.com/watch?v=abc", "https://example.com/watch?v=abc"),
        ("http://example.com", "http://example.com/"),
        ("HTTPS://Example.COM/Path/To?Q=Mixed", "https://example.com/Path/To?Q=Mixed"),
        ("https://example.com/video#t=30", "https://example.com/video"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("http://EXAMPLE.com:8080", "http://example.com:8080/"),
        ("http://[2001:DB8::1]:8443/feed.xml", "http://[2001:db8::1]:8443/feed.xml"),
        ("http://[::1]/x", "http://[::1]/x"),
        ("http://192.0.2.7/media.mp4", "http://192.0.2.7/media.mp4"),
        ("  https://example.com/padded  ", "https://example.com/padded"),
    ],
)
def test_accepted_urls_are_normalized(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


def test_path_and_query_case_is_kept() -> None:
    # Only the scheme and host are case-insensitive; ids in paths are not
    assert normalize_url("https://EXAMPLE.com/AbC?id=XyZ") == "https://example.com/AbC?id=XyZ"


def test_url_of_maximum_length_is_accepted() -> None:
    prefix = "https://example.com/"
    raw = prefix + "a" * (MAX_URL_LENGTH - len(prefix))

    assert normalize_url(raw) == raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "longer than"),
        ("ftp://example.com/file.mp4", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("data:text/html,<script>alert(1)</script>", "scheme"),
        ("example.com/video", "scheme"),
        ("//example.com/video", "scheme"),
        ("http:///path/only", "no host"),
        ("https://", "no host"),
        ("http://user:secret@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http://:secret@example.com/", "credentials"),
        ("http://example.com/a b", "whitespace"),
        ("http://example.com/\tx", "whitespace"),
        ("http://example.com/\nx", "whitespace"),
        ("http://exa\x00mple.com/", "control"),
        ("http://example.com/\x1b[31m", "control"),
        ("http://example.com/v#__youtubedl_smuggle=%7B%22a%22%3A1%7D", "smuggle"),
        ("http://example.com/v?x=1&__youtubedl_smuggle=%7B%7D", "smuggle"),
        ("http://example.com:99999/", "malformed"),
        ("http://example.com:port/", "malformed"),
        ("http://[::1/", "malformed"),
    ],
)
def test_rejected_urls(raw: str, reason: str) -> None:
    with pytest.raises(UrlRejected, match=reason):
        normalize_url(raw)


@pytest.mark.parametrize("char", ["\x7f", "\x9b"], ids=["DEL", "C1-CSI"])
def test_control_characters_above_ascii_space_are_rejected(char: str) -> None:
    # DEL and the C1 controls are control characters too (Unicode category Cc)
    with pytest.raises(UrlRejected, match="control"):
        normalize_url(f"http://example.com/a{char}b")


def test_url_rejected_is_a_value_error() -> None:
    # Callers that catch ValueError for bad input still catch it
    with pytest.raises(ValueError, match="scheme"):
        normalize_url("gopher://example.com/")


_schemes = st.sampled_from(["http", "https", "HTTP", "Https", "ftp", "file", ""])
_hosts = st.one_of(
    st.from_regex(r"[A-Za-z0-9.-]{0,24}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.text(max_size=12),
)
_ports = st.one_of(st.just(""), st.integers(0, 70_000).map(lambda p: f":{p}"))
_tails = st.text(max_size=40)
_urls = st.one_of(
    st.builds(lambda s, h, p, t: f"{s}://{h}{p}{t}", _schemes, _hosts, _ports, _tails),
    st.text(max_size=80),
)


@given(_urls)
def test_accepted_urls_are_http_and_normalize_to_themselves(raw: str) -> None:
    try:
        once = normalize_url(raw)
    except UrlRejected:
        return

    assert once.startswith(("http://", "https://"))
    assert normalize_url(once) == once
