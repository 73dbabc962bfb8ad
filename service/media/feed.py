"""List a feed, channel or playlist flat for a subscription's check: no media is fetched.

Each entry carries what the filters may need (title, duration, publication time) when
the listing gives it, and a stable key: the extractor and the entry's id, else the
feed item's guid, else the URL (the caller normalizes it). A generic web page or an RSS
feed without ``itunes:duration`` gives no duration and maybe no date; those are None.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yt_dlp
from yt_dlp.utils import unsmuggle_url

from service import egress
from service.domain.errors import ErrorClass
from service.errors import Permanent
from service.media.errors import guard_or_classify, refused
from service.media.options import base_params
from service.media.ydl import new_ydl

if TYPE_CHECKING:
    from service.media.limits import Limits


#: Redirects (``url`` results) followed to reach the listing.
_MAX_HOPS = 3


@dataclass(frozen=True)
class FeedEntry:
    """One listed entry, newest first as far as the listing says."""

    url: str
    #: ``extractor:id`` or ``guid:…``; None when only the URL identifies it.
    key: str | None
    title: str | None
    duration_s: float | None
    published_at: datetime | None


@dataclass(frozen=True)
class Listing:
    title: str | None
    entries: list[FeedEntry]
    #: True when the listing had more entries than were read.
    capped: bool


def list_entries(url: str, *, max_entries: int, limits: Limits) -> Listing:
    """The entries of a playlist-like URL, in the order the site lists them, at most
    ``max_entries`` from the top. A URL that is a single item is :class:`Permanent`
    (``not_a_feed``): a subscription follows something that grows."""
    params = base_params(generic_extractor=limits.generic_extractor, proxy=limits.proxy) | {
        "skip_download": True,
        "extract_flat": "in_playlist",
    }
    with egress.guarded(limits.egress) as guard:
        try:
            with new_ydl(params, max_page_bytes=limits.max_page_bytes) as ydl:
                info = _unprocessed(ydl, url)
                listed = _first(info.get("entries"), max_entries + 1) if info else []
        except yt_dlp.utils.YoutubeDLError as exc:
            raise guard_or_classify(guard, exc) from exc
    refused(guard)
    if not isinstance(info, dict):
        raise Permanent(
            "yt-dlp returned nothing for this URL", error_class=ErrorClass.UNSUPPORTED_URL
        )
    if info.get("_type") not in ("playlist", "multi_video"):
        raise Permanent(
            "the URL is a single item, not a feed, channel or playlist",
            error_class=ErrorClass.NOT_A_FEED,
        )
    entries = [e for e in map(_entry, listed) if e is not None]
    return Listing(
        title=info.get("title"), entries=entries[:max_entries], capped=len(listed) > max_entries
    )


def _unprocessed(ydl: Any, url: str) -> dict[str, Any] | None:
    """The extractor's own result, without yt-dlp's per-entry processing (output
    templates, pre-processors, printing: ~9 ms an entry, most of a 500-entry check).
    A page that redirects to its listing (a channel's home to its videos) is followed."""
    info = ydl.extract_info(url, download=False, process=False)
    for _ in range(_MAX_HOPS):
        if not isinstance(info, dict) or info.get("_type") not in ("url", "url_transparent"):
            break
        info = ydl.extract_info(
            info["url"], download=False, process=False, ie_key=info.get("ie_key")
        )
    return info if isinstance(info, dict) else None


def _first(entries: Any, n: int) -> list[Any]:
    """The first ``n`` entries of a list, a lazy list, a paged list or a generator."""
    if entries is None:
        return []
    if isinstance(entries, yt_dlp.utils.PagedList):
        return list(entries.getslice(0, n))
    return list(itertools.islice(entries, n))


def _entry(item: Any) -> FeedEntry | None:
    if not isinstance(item, dict):
        return None
    raw = item.get("url") or item.get("webpage_url")
    if not isinstance(raw, str):
        return None
    url, smuggled = unsmuggle_url(raw, {})
    key = None
    if item.get("id") and (item.get("ie_key") or item.get("extractor_key")):
        key = f"{item.get('ie_key') or item.get('extractor_key')}:{item['id']}"
    elif isinstance(smuggled, dict) and smuggled.get("force_videoid"):
        key = f"guid:{smuggled['force_videoid']}"
    stamp = item.get("timestamp")
    duration = item.get("duration")
    return FeedEntry(
        url=url,
        key=key,
        title=item.get("title") if isinstance(item.get("title"), str) else None,
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        published_at=datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int | float) else None,
    )
