"""Ask yt-dlp what a URL is without downloading it: one item, or a playlist of entries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yt_dlp

from service import egress
from service.domain.errors import ErrorClass
from service.errors import Permanent
from service.media import cookies
from service.media.errors import check_duration, guard_or_classify, refused
from service.media.options import base_params
from service.media.ydl import new_ydl

if TYPE_CHECKING:
    from pathlib import Path

    from service.media.limits import Limits

#: The largest info dict (as JSON) kept for the download step; a larger one (a site that
#: lists hundreds of formats and captions) is extracted again instead.
MAX_KEPT_INFO_BYTES = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One item of a playlist or feed, to become a child job."""

    url: str
    title: str | None


@dataclass(frozen=True)
class ProbeResult:
    """What the probe found; ``entries`` is empty for a single item."""

    is_playlist: bool
    title: str | None
    extractor: str | None
    duration: float | None = None
    webpage_url: str | None = None
    entries: list[Entry] = field(default_factory=list)
    #: True when the playlist had more entries than the cap allowed.
    capped: bool = False
    #: A single item's info dict, sanitized and scrubbed of cookies, for the download step
    #: to reuse (``media/download.py``); None for a playlist or an info too large to keep.
    info: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """The part worth keeping on the job row (``info``)."""
        data: dict[str, Any] = {
            "title": self.title,
            "extractor": self.extractor,
            "duration": self.duration,
            "webpage_url": self.webpage_url,
        }
        if self.is_playlist:
            data["playlist"] = {"entries_queued": len(self.entries), "capped": self.capped}
        return {k: v for k, v in data.items() if v is not None}


def probe(
    url: str, *, max_entries: int, limits: Limits, cookiefile: Path | None = None
) -> ProbeResult:
    """Extract metadata only; playlists are listed flat, capped at ``max_entries``.

    An item already known to be longer than the duration limit fails here, before
    anything is downloaded. ``cookiefile`` is the attempt's cookie file, if any.
    """
    params = base_params(generic_extractor=limits.generic_extractor, proxy=limits.proxy) | {
        "skip_download": True,
        "extract_flat": "in_playlist",
        "playlistend": max_entries + 1,
        **cookies.params(cookiefile),
    }
    with egress.guarded(limits.egress) as guard:
        try:
            with new_ydl(params, max_page_bytes=limits.max_page_bytes) as ydl:
                info = ydl.extract_info(url, download=False)
        except yt_dlp.utils.YoutubeDLError as exc:
            raise guard_or_classify(guard, exc) from exc
    refused(guard)
    if not isinstance(info, dict):
        raise Permanent(
            "yt-dlp returned nothing for this URL", error_class=ErrorClass.UNSUPPORTED_URL
        )
    result = _result(cookies.scrub(info), max_entries)
    check_duration(result.duration, limits)
    return result


def _reusable(info: dict[str, Any]) -> dict[str, Any] | None:
    """The item's info as ``--load-info-json`` would read it (private keys and the probe's
    own format choice dropped), or None when it is too large to be worth keeping."""
    clean = yt_dlp.YoutubeDL.sanitize_info(info, remove_private_keys=True)
    if len(json.dumps(clean, separators=(",", ":"))) > MAX_KEPT_INFO_BYTES:
        return None
    return clean  # type: ignore[no-any-return]


def _result(info: dict[str, Any], max_entries: int) -> ProbeResult:
    kind = info.get("_type", "video")
    title = info.get("title")
    extractor = info.get("extractor_key") or info.get("extractor")
    webpage_url = info.get("webpage_url")
    if kind not in ("playlist", "multi_video"):
        return ProbeResult(
            is_playlist=False,
            title=title,
            extractor=extractor,
            webpage_url=webpage_url,
            duration=info.get("duration"),
            info=_reusable(info),
        )
    entries = [e for e in _entries(info.get("entries") or []) if e is not None]
    if not entries:
        raise Permanent("the playlist has no entries", error_class=ErrorClass.EMPTY_PLAYLIST)
    return ProbeResult(
        is_playlist=True,
        entries=entries[:max_entries],
        capped=len(entries) > max_entries,
        title=title,
        extractor=extractor,
        webpage_url=webpage_url,
    )


def _entries(raw: Any) -> list[Entry | None]:
    out: list[Entry | None] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        url = item.get("url") or item.get("webpage_url")
        if not isinstance(url, str):
            continue
        # Flat entries may carry yt-dlp's private "smuggle" fragment; it is not part of the URL.
        url = url.split("#__youtubedl_smuggle", 1)[0]
        out.append(Entry(url=url, title=item.get("title")))
    return out
