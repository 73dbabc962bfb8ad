"""Site families (service/domain/sites.py): the hosts that share one identity."""

from __future__ import annotations

import pytest

from service.domain.sites import NotASite, family_of_host, family_of_url, in_family


@pytest.mark.parametrize(
    "host",
    ["youtube.com", "www.youtube.com", "youtu.be", "music.youtube.com", "M.YouTube.com."],
)
def test_youtubes_hosts_are_one_family(host: str) -> None:
    assert family_of_host(host) == "youtube.com"


@pytest.mark.parametrize(
    ("host", "family"),
    [
        ("vimeo.com", "vimeo.com"),
        ("player.vimeo.com", "vimeo.com"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("bbc.co.uk", "bbc.co.uk"),
        ("x.com", "twitter.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("localhost", "localhost"),
    ],
)
def test_a_family_is_the_registrable_domain_after_aliases(host: str, family: str) -> None:
    assert family_of_host(host) == family


@pytest.mark.parametrize("host", ["", "not a host", "a..b", "-bad.com", "x" * 64 + ".com", "a/b"])
def test_what_is_not_a_host_name_is_refused(host: str) -> None:
    with pytest.raises(NotASite):
        family_of_host(host)


def test_a_urls_family_is_its_hosts() -> None:
    assert family_of_url("https://youtu.be/abc?t=1") == "youtube.com"
    assert family_of_url("http://127.0.0.1:8080/members/a.mp4") == "127.0.0.1"
    assert family_of_url("not a url") is None


@pytest.mark.parametrize(
    ("domain", "family", "belongs"),
    [
        (".youtube.com", "youtube.com", True),
        ("music.youtube.com", "youtube.com", True),
        (".youtu.be", "youtube.com", True),
        (".google.com", "youtube.com", False),
        ("evilyoutube.com", "youtube.com", False),
        (".com", "youtube.com", False),
        ("", "youtube.com", False),
    ],
)
def test_a_cookie_domain_belongs_to_its_family_only(
    domain: str, family: str, belongs: bool
) -> None:
    assert in_family(domain, family) is belongs


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.YouTube.com/watch?v=1", "youtube.com"),
        ("https://m.youtube.com/watch?v=1", "youtube.com"),
        ("https://music.youtube.com/watch?v=1", "youtube.com"),
        ("https://youtu.be/1", "youtube.com"),
        ("http://[::1]:8080/a.mp4", "::1"),
        ("http://example.com./x", "example.com"),
    ],
)
def test_jobs_of_one_site_family_share_one_site(url: str, site: str) -> None:
    """Per-site limits, pacing and breakers count by family (``jobs.site``)."""
    assert family_of_url(url) == site
