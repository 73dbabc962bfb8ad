"""yt-dlp releases: what `haul ytdlp update` installs, and how versions' attempts are folded."""

from __future__ import annotations

from datetime import date

import pytest

from service.domain.ytdlp import (
    BadTarget,
    Channel,
    Target,
    fold,
    is_nightly,
    release_date,
    same_version,
)


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        ("stable", ["--upgrade", "yt-dlp[default]"]),
        ("Nightly", ["--upgrade", "--pre", "yt-dlp[default]"]),
        ("2026.10.26", ["yt-dlp[default]==2026.10.26"]),
        ("2026.10.26.1", ["yt-dlp[default]==2026.10.26.1"]),
        ("2026.11.02.233024.dev0", ["yt-dlp[default]==2026.11.02.233024.dev0"]),
        ("2025.11.12", ["yt-dlp[default]==2025.11.12"]),
    ],
)
def test_a_channel_or_a_version_becomes_pip_arguments(text: str, arguments: list[str]) -> None:
    assert Target.parse(text).pip_arguments() == arguments


def test_a_channel_is_named_as_such() -> None:
    assert Target.parse("stable") == Target(channel=Channel.STABLE)
    assert str(Target.parse("nightly")) == "nightly"
    assert str(Target.parse("2026.10.26")) == "2026.10.26"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("latest", "neither a channel"),
        ("2026.13.01", "neither a channel"),
        ("2026.10.26; rm -rf /", "neither a channel"),
        ("yt-dlp==2026.10.26", "neither a channel"),
        ("--index-url=http://evil", "neither a channel"),
        ("2025.10.22", "older than 2025.11.12"),
    ],
)
def test_anything_else_is_refused_with_why(text: str, says: str) -> None:
    with pytest.raises(BadTarget, match=says):
        Target.parse(text)


def test_versions_are_release_dates() -> None:
    assert release_date("2026.10.26") == date(2026, 10, 26)
    assert release_date("2026.10.26.232809") == date(2026, 10, 26)
    assert release_date("2026.11.02.233024.dev0") == date(2026, 11, 2)
    assert release_date("1.0") is None
    assert release_date("unknown") is None
    assert is_nightly("2026.11.02.233024.dev0") and not is_nightly("2026.10.26")


def test_attempts_are_folded_per_version_with_a_success_rate_that_ignores_hand_backs() -> None:
    # Given attempts of two versions, and of one recorded without a version
    counts = [
        ("2026.10.26", "succeeded", None, 8),
        ("2026.10.26", "retry", "rate_limited", 1),
        ("2026.10.26", "failed", "http_404", 1),
        ("2026.10.26", "handed_back", None, 5),
        ("2026.11.02.233024.dev0", "succeeded", None, 1),
        ("2026.11.02.233024.dev0", "failed", "extractor", 3),
        ("2026.11.02.233024.dev0", "abandoned", "lease_expired", 1),
        (None, "succeeded", None, 2),
    ]
    hosts = [("b", "2026.11.02.233024.dev0"), ("a", "2026.10.26"), ("c", "2026.10.26")]

    # When they are folded
    stats = fold(counts, hosts)

    # Then the newest version comes first, each with its outcomes, error classes and hosts
    assert [s.version for s in stats] == ["2026.11.02.233024.dev0", "2026.10.26", "unknown"]
    nightly, stable, unknown = stats
    assert stable.outcomes == {"succeeded": 8, "retry": 1, "failed": 1, "handed_back": 5}
    assert stable.attempts == 15
    assert stable.success_rate == 0.8  # 8 of 10: hand-backs say nothing about the version
    assert stable.error_classes == {"rate_limited": 1, "http_404": 1}
    assert stable.hosts == ["a", "c"]
    assert nightly.success_rate == 0.25
    assert list(nightly.error_classes) == ["extractor", "lease_expired"]  # most frequent first
    assert unknown.hosts == [] and unknown.success_rate == 1.0


def test_a_version_a_host_runs_is_listed_before_it_ran_anything() -> None:
    (only,) = fold([], [("a", "2026.10.26")])

    assert (only.version, only.attempts, only.success_rate, only.hosts) == (
        "2026.10.26",
        0,
        None,
        ["a"],
    )


def test_versions_sort_newest_first_by_their_numbers_as_pip_orders_them() -> None:
    versions = ["2026.10.26", "2026.10.26.1", "2026.10.26.232809.dev0", "2026.9.30"]
    stats = fold([(v, "succeeded", None, 1) for v in versions])

    assert [s.version for s in stats] == [
        "2026.10.26.232809.dev0",
        "2026.10.26.1",
        "2026.10.26",
        "2026.9.30",
    ]


def test_yt_dlps_and_pips_spellings_of_one_release_are_the_same_version() -> None:

    assert same_version("2025.12.08", "2025.12.8")
    assert same_version("2025.12.08.220202", "2025.12.8.220202.dev0")
    assert not same_version("2025.12.08", "2025.12.08.220202")
    assert not same_version("2026.10.26", "2026.10.26.1")
    assert not same_version("2026.10.26", None) and same_version(None, None)
