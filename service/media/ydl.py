"""A ``YoutubeDL`` per job, without yt-dlp's per-instance cost of listing its extractors.

``YoutubeDL()`` orders its ~1,900 extractor classes with a quadratic de-duplication
on every construction: about 40 ms of CPU, paid twice per job (probe and download)
and most of haul's own CPU on a small file (found by ``bench/scenarios/small_files.py``).
The list never changes within a process, so it is worked out once here; every
instance still gets its own extractor registry, in yt-dlp's order, exactly as
``add_default_info_extractors`` builds it (a unit test compares the two).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yt_dlp
from yt_dlp.extractor import gen_extractor_classes


@cache
def _default_extractors() -> tuple[Any, ...]:
    """The classes yt-dlp enables by default, in its order (``add_default_info_extractors``)."""
    by_name = {ie.IE_NAME.lower(): ie for ie in gen_extractor_classes()}
    return tuple(ie for ie in by_name.values() if ie._ENABLED)


def new_ydl(params: dict[str, Any]) -> Any:
    """``yt_dlp.YoutubeDL(params)`` with its default extractors, built cheaply.

    Honours haul's two ``allowed_extractors`` settings (all, or all but generic);
    anything else takes yt-dlp's own slow path.
    """
    allowed = params.get("allowed_extractors", ["default"])
    if allowed not in (["default"], ["default", "-generic"]):
        return yt_dlp.YoutubeDL(params)
    ydl = yt_dlp.YoutubeDL(params, auto_init=False)
    for ie in _default_extractors():
        if "-generic" in allowed and ie.IE_NAME.lower() == "generic":
            continue
        ydl.add_info_extractor(ie)
    return ydl
