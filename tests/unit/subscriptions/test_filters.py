"""The filter and backfill rules of a subscription, as pure code."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from service.media.feed import FeedEntry
from service.subscriptions.filters import Filters, backfilled, refusal

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(
    title: str | None = "Episode", duration: float | None = None, hours: int | None = None
) -> FeedEntry:
    published = T0 + timedelta(hours=hours) if hours is not None else None
    return FeedEntry(
        url="https://x.example/a", key=None, title=title, duration_s=duration,
        published_at=published,
    )  # fmt: skip


def test_title_patterns_include_and_exclude() -> None:
    filters = Filters(title_include="^Episode", title_exclude="(?i)bonus")

    assert refusal(filters, entry("Episode 1")) is None
    assert refusal(filters, entry("Trailer")) == "title does not match title_include"
    assert refusal(filters, entry("Episode 2 BONUS")) == "title matches title_exclude"


def test_unknown_values_pass_the_duration_and_date_filters() -> None:
    # Given filters on duration and date, and an entry whose listing said neither
    filters = Filters(min_duration_s=60, max_duration_s=600, published_after=T0)

    # Then it passes; known values outside the bounds do not
    assert refusal(filters, entry()) is None
    assert "min_duration_s" in (refusal(filters, entry(duration=30)) or "")
    assert "max_duration_s" in (refusal(filters, entry(duration=601)) or "")
    assert refusal(filters, entry(duration=120, hours=-1)) == "published before published_after"
    assert refusal(filters, entry(duration=120, hours=1)) is None


def test_an_unknown_title_matches_as_empty() -> None:
    assert refusal(Filters(title_include="."), entry(title=None)) is not None
    assert refusal(Filters(title_exclude="."), entry(title=None)) is None


@pytest.mark.parametrize(
    "pattern", ["(unclosed", "(?=ahead)", r"(a)\1", "x" * 201, ""]
)  # fmt: skip
def test_patterns_re2_cannot_run_in_linear_time_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError):
        Filters(title_include=pattern)


def test_a_hostile_title_is_matched_in_linear_time() -> None:
    # Given the textbook catastrophic pattern and a title built for it
    filters = Filters(title_include="^(a+)+$")
    title = "a" * 100_000 + "!"

    # When it is matched
    began = time.monotonic()
    verdict = refusal(filters, entry(title))

    # Then it is refused at once (a backtracking engine would not finish)
    assert verdict == "title does not match title_include"
    assert time.monotonic() - began < 1


def test_a_naive_published_after_is_refused() -> None:
    with pytest.raises(ValidationError):
        Filters(published_after=datetime(2026, 1, 1))


def test_backfill_none_all_and_newest_n() -> None:
    # Given a listing oldest first, every entry dated
    listed = [entry(hours=h) for h in (1, 2, 3, 4)]

    assert backfilled(listed, "none") == set()
    assert backfilled(listed, "all") == {0, 1, 2, 3}
    # Then the newest two are the last two of the listing
    assert backfilled(listed, 2) == {2, 3}
    assert backfilled(listed, 10) == {0, 1, 2, 3}


def test_backfill_n_without_dates_takes_the_top_of_the_listing() -> None:
    listed = [entry(), entry(hours=5), entry()]

    assert backfilled(listed, 2) == {0, 1}
