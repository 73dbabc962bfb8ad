"""Which new entries a subscription downloads: its filters and its backfill, as pure rules.

Title patterns are compiled with RE2 (``google-re2``), whose matching time is linear in
the title's length: a hostile title cannot make a check backtrack for minutes, whatever
the pattern. RE2 has no backreferences or lookaround; a pattern that uses them is refused
when the subscription is created (422), not at check time.

**Unknown values pass.** A listing may not say an entry's duration or date (a generic
page, an RSS item without ``itunes:duration``); the duration and date filters only
leave out what they know to be outside. An unknown title matches as the empty string.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003  (pydantic reads annotations at run time)
from typing import TYPE_CHECKING, Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from service.media.feed import FeedEntry

#: Longest title pattern accepted.
MAX_PATTERN = 200

Backfill = Literal["none", "all"] | int


def compile_pattern(pattern: str) -> Any:
    """The pattern compiled for RE2; ``ValueError`` says why one is refused."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 1 << 20  # a pattern whose program needs more is refused
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise ValueError(f"not a usable regular expression (RE2 syntax): {exc}") from exc


class Filters(BaseModel):
    """What a subscription's new entries must satisfy to be downloaded."""

    model_config = ConfigDict(extra="forbid")

    title_include: str | None = Field(
        None, min_length=1, max_length=MAX_PATTERN, description="RE2 pattern the title must match."
    )
    title_exclude: str | None = Field(
        None, min_length=1, max_length=MAX_PATTERN, description="RE2 pattern it must not match."
    )
    min_duration_s: float | None = Field(None, ge=0, description="Shortest duration kept.")
    max_duration_s: float | None = Field(None, gt=0, description="Longest duration kept.")
    published_after: datetime | None = Field(
        None, description="Only entries published after this time (timezone required)."
    )

    @field_validator("title_include", "title_exclude")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)
        return value

    @field_validator("published_after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("published_after needs a timezone (e.g. 2026-01-01T00:00:00Z)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Filters:
        low, high = self.min_duration_s, self.max_duration_s
        if low is not None and high is not None and low > high:
            raise ValueError("min_duration_s is above max_duration_s")
        return self


def refusal(filters: Filters, entry: FeedEntry) -> str | None:
    """Why ``entry`` is left out, or None when it passes every filter."""
    title = entry.title or ""
    if filters.title_include and not compile_pattern(filters.title_include).search(title):
        return "title does not match title_include"
    if filters.title_exclude and compile_pattern(filters.title_exclude).search(title):
        return "title matches title_exclude"
    duration, low, high = entry.duration_s, filters.min_duration_s, filters.max_duration_s
    if duration is not None and low is not None and duration < low:
        return f"shorter than min_duration_s ({duration:g} s)"
    if duration is not None and high is not None and duration > high:
        return f"longer than max_duration_s ({duration:g} s)"
    published, after = entry.published_at, filters.published_after
    if published is not None and after is not None and published <= after:
        return "published before published_after"
    return None


def parse_backfill(raw: str) -> Backfill:
    """The stored text form (``none``, ``all`` or digits) back to its meaning."""
    if raw in ("none", "all"):
        return raw  # type: ignore[return-value]
    return int(raw)


def backfilled(entries: Sequence[FeedEntry], backfill: Backfill) -> set[int]:
    """Of the entries listed at a subscription's first check, the positions to download.

    ``none``: nothing (what is there now is seen; only later entries download); ``all``:
    every one; N: the newest N, by publication time when every entry has one, else the
    first N of the listing (feeds and channels list newest first).
    """
    if backfill == "none":
        return set()
    if backfill == "all":
        return set(range(len(entries)))
    order = list(range(len(entries)))
    if all(e.published_at is not None for e in entries):
        order.sort(key=lambda i: entries[i].published_at, reverse=True)  # type: ignore[arg-type,return-value]
    return set(order[:backfill])
