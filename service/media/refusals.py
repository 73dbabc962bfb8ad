"""What yt-dlp may not do for a job, refused inside yt-dlp before it happens.

* **Another program.** yt-dlp hands some protocols to other programs: RTMP to
  ``rtmpdump``, ``rtmp_ffmpeg`` and live HLS or DASH to ``ffmpeg``, and with other
  settings anything to ``curl`` or ``aria2c``. Those open their own sockets, where the
  egress guard (an audit hook in *this* process) cannot judge them. So formats on any
  protocol but :data:`NATIVE` are dropped before yt-dlp chooses one, and each download
  yt-dlp starts is checked again, protocol and downloader, as the last wall.
* **More than one item.** A download step fetches exactly one media item. If what it
  extracts is a playlist (a feed inside a feed, a page of several videos, a site that
  answered the probe with a file and the download with a feed), it stops before any
  entry is resolved.
* **A response too large to hold.** Extractors and manifest readers read a page, an
  API answer or an HLS/DASH manifest whole, into memory; one read past
  ``HAUL_MAX_PAGE_BYTES`` stops there (``service/media/pages.py``).

Each refusal is a :class:`Refused`, a ``DownloadCancelled``, the one kind of error
yt-dlp lets through its own handling untouched; the media layer turns it into a
:class:`~service.errors.Permanent` with its error class.
"""

from __future__ import annotations

from typing import Any

from yt_dlp.downloader import get_suitable_downloader
from yt_dlp.downloader.external import ExternalFD
from yt_dlp.utils import DownloadCancelled, determine_protocol

from service.domain.errors import ErrorClass

#: The protocols yt-dlp downloads itself, in this process: plain HTTP(S), HLS and DASH.
NATIVE = frozenset(
    {"http", "https", "m3u8", "m3u8_native", "http_dash_segments", "http_dash_segments_generator"}
)

#: Result types whose entries yt-dlp would resolve and download one by one.
PLAYLISTS = frozenset({"playlist", "multi_video", "compat_list"})


class Refused(DownloadCancelled):  # type: ignore[misc]
    """yt-dlp was about to do something haul does not allow."""

    error_class: ErrorClass = ErrorClass.PERMANENT


class UnsupportedProtocol(Refused):
    """The media is offered only over a protocol haul does not download."""

    error_class = ErrorClass.UNSUPPORTED_PROTOCOL


class NestedPlaylist(Refused):
    """A download step met a playlist where one media item was expected."""

    error_class = ErrorClass.NESTED_PLAYLIST


class PageTooLarge(Refused):
    """One response read whole (a page, a manifest) was larger than ``HAUL_MAX_PAGE_BYTES``."""

    error_class = ErrorClass.PAGE_TOO_LARGE


def protocols_of(fmt: dict[str, Any]) -> list[str]:
    """The protocols a format (or a merge of formats, ``https+m3u8_native``) is fetched over."""
    if fmt.get("protocol") is None and not fmt.get("url"):
        return []  # nothing to fetch yet: yt-dlp judges such a format itself
    return str(determine_protocol(fmt)).split("+")


def is_native(fmt: dict[str, Any]) -> bool:
    return all(p in NATIVE for p in protocols_of(fmt))


def keep_native_formats(info: dict[str, Any]) -> None:
    """Drop the formats of ``info`` that only another program could fetch, so yt-dlp
    chooses among the rest; refuse the item when nothing is left."""
    formats = info.get("formats")
    offered = formats if isinstance(formats, list) else [info] if info.get("url") else []
    kept = [f for f in offered if isinstance(f, dict) and is_native(f)]
    if offered and not kept:
        raise UnsupportedProtocol(_unsupported(offered))
    if isinstance(formats, list):
        info["formats"] = kept


def check_download(info: dict[str, Any], params: dict[str, Any], *, to_stdout: bool) -> None:
    """Refuse a download (a format, a merge, a subtitle) that yt-dlp would not do itself."""
    if not is_native(info):
        raise UnsupportedProtocol(_unsupported([info]))
    downloader = get_suitable_downloader(dict(info), params, to_stdout=to_stdout)
    if downloader is not None and issubclass(downloader, ExternalFD):
        raise UnsupportedProtocol(
            f"yt-dlp would hand this download to {downloader.get_basename()} (a live stream, "
            "or one yt-dlp cannot fetch itself); haul downloads only what yt-dlp fetches "
            "in its own process"
        )


def refuse_playlist(result: dict[str, Any]) -> None:
    """Refuse a playlist met by a download step, before any of its entries is resolved."""
    if result.get("_type") in PLAYLISTS:
        raise NestedPlaylist(
            "the URL turned out to be a playlist where one media item was expected, and none "
            "of its entries was downloaded (a playlist inside a playlist is not expanded: "
            "submit its URL as a job of its own)"
        )


def _unsupported(formats: list[dict[str, Any]]) -> str:
    refused = sorted({p for f in formats for p in protocols_of(f) if p not in NATIVE})
    return (
        f"the media is offered only over {', '.join(refused) or 'an unknown protocol'}, "
        "which haul does not download (it fetches HTTP(S), HLS and DASH itself, never "
        "through another program)"
    )
