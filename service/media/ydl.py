"""A ``YoutubeDL`` per job, without yt-dlp's per-instance cost of listing its extractors.

``YoutubeDL()`` orders its ~1,900 extractor classes with a quadratic de-duplication
on every construction: about 40 ms of CPU, paid twice per job (probe and download)
and most of haul's own CPU on a small file (found by ``bench/scenarios/small_files.py``).
The list never changes within a process, so it is worked out once here; every
instance still gets its own extractor registry, in yt-dlp's order, exactly as
``add_default_info_extractors`` builds it (a unit test compares the two).

Every instance is a :class:`HaulYDL`, which refuses inside yt-dlp what haul does not
allow (``service/media/refusals.py``): media only another program could fetch, a page
or manifest larger than ``HAUL_MAX_PAGE_BYTES`` (``service/media/pages.py``) and, for a
download step, a playlist.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yt_dlp
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.networking.exceptions import HTTPError

from service.media.limits import MAX_PAGE_BYTES
from service.media.pages import Capped
from service.media.refusals import check_download, keep_native_formats, refuse_playlist
from service.media.tls import share_contexts


class HaulYDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """``YoutubeDL`` that fetches natively only, reads no response whole past
    ``max_page_bytes`` and, when ``single_item``, downloads one item only.

    The overrides are yt-dlp's own funnels: every extraction result passes
    ``process_ie_result`` (playlists go on from there to their entries), every item's
    formats ``process_video_result`` (before one is chosen), every download ``dl``,
    every request (extractors', downloaders', post-processors') ``urlopen``; and its
    request handlers share one TLS context per configuration (``service/media/tls.py``).
    """

    single_item = False
    max_page_bytes = MAX_PAGE_BYTES

    def urlopen(self, req: Any) -> Any:
        try:
            return Capped(super().urlopen(req), self.max_page_bytes)
        except HTTPError as exc:  # an extractor may read the error's body (expected_status)
            exc.response = Capped(exc.response, self.max_page_bytes)
            raise

    def process_ie_result(
        self, ie_result: dict[str, Any], download: bool = True, extra_info: Any = None
    ) -> Any:
        if self.single_item:
            refuse_playlist(ie_result)
        return super().process_ie_result(ie_result, download, extra_info)

    def process_video_result(self, info_dict: dict[str, Any], download: bool = True) -> Any:
        keep_native_formats(info_dict)
        return super().process_video_result(info_dict, download)

    def dl(
        self, name: str, info: dict[str, Any], subtitle: bool = False, test: bool = False
    ) -> Any:
        check_download(info, self.params, to_stdout=name == "-")
        return super().dl(name, info, subtitle, test)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        # One TLS context per configuration and process, not per handler (service/media/tls.py).
        return share_contexts(super().build_request_director(handlers, preferences))


class _OneItemYDL(HaulYDL):
    single_item = True


@cache
def _default_extractors() -> tuple[Any, ...]:
    """The classes yt-dlp enables by default, in its order (``add_default_info_extractors``)."""
    by_name = {ie.IE_NAME.lower(): ie for ie in gen_extractor_classes()}
    return tuple(ie for ie in by_name.values() if ie._ENABLED)


def new_ydl(
    params: dict[str, Any], *, single_item: bool = False, max_page_bytes: int = MAX_PAGE_BYTES
) -> Any:
    """``HaulYDL(params)`` with yt-dlp's default extractors, built cheaply.

    ``single_item`` refuses a playlist (a download step's); ``max_page_bytes`` bounds
    every response read whole. Honours haul's two ``allowed_extractors`` settings (all,
    or all but generic); anything else takes yt-dlp's own slow path.
    """
    kind = _OneItemYDL if single_item else HaulYDL
    allowed = params.get("allowed_extractors", ["default"])
    if allowed not in (["default"], ["default", "-generic"]):
        ydl = kind(params)
        ydl.max_page_bytes = max_page_bytes
        return ydl
    ydl = kind(params, auto_init=False)
    ydl.max_page_bytes = max_page_bytes
    ydl._ies.update(_registry(without_generic="-generic" in allowed))
    return ydl


@cache
def _registry(*, without_generic: bool) -> dict[str, Any]:
    """What ``add_info_extractor`` leaves in ``_ies`` for each default class, in order (key
    to class; no instance until one is used), built once: a copy per ``YoutubeDL`` instead
    of ~1,900 calls."""
    return {
        ie.ie_key(): ie
        for ie in _default_extractors()
        if not (without_generic and ie.IE_NAME.lower() == "generic")
    }
