"""What yt-dlp is told of a job's cookies, and what it must not hand back with them.

yt-dlp reads and rewrites the cookie file an attempt lends it (``cookiefile``; it
saves its jar there when the ``YoutubeDL`` closes, so cookies the site rotated come
back). It also copies the cookies it sends into its info dicts (``cookies``, and
``Cookie`` in ``http_headers``, per format too); :func:`scrub` takes them out of
every info dict before anything of it goes further.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def params(cookiefile: Path | None) -> dict[str, Any]:
    """yt-dlp's parameters for an attempt's cookie file (none: no cookies at all)."""
    return {"cookiefile": str(cookiefile)} if cookiefile is not None else {}


def scrub(info: Any) -> Any:
    """``info`` without the cookies yt-dlp copied into it, at any depth (formats, entries)."""
    if isinstance(info, dict):
        return {
            key: _headers(value) if key == "http_headers" else scrub(value)
            for key, value in info.items()
            if key != "cookies"
        }
    if isinstance(info, list):
        return [scrub(item) for item in info]
    return info


def _headers(headers: Any) -> Any:
    if not isinstance(headers, dict):
        return headers
    return {k: v for k, v in headers.items() if k.lower() not in ("cookie", "set-cookie")}
