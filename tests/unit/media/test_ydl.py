"""``new_ydl`` must build what ``yt_dlp.YoutubeDL`` builds, only cheaper."""

from __future__ import annotations

import time

import yt_dlp

from service.media.ydl import new_ydl


def _registry(ydl: object) -> list[tuple[str, str]]:
    return [(key, type(ie).__name__) for key, ie in ydl._ies.items()]  # type: ignore[attr-defined]


def test_the_same_extractors_in_the_same_order() -> None:
    # Given yt-dlp's own construction and haul's
    plain = yt_dlp.YoutubeDL({"quiet": True})
    cheap = new_ydl({"quiet": True})
    # Then both know the same extractors, in the order yt-dlp tries them
    assert _registry(cheap) == _registry(plain)
    assert len(_registry(cheap)) > 1000


def test_it_is_cheaper_than_yt_dlp_s_own_construction() -> None:
    # Given both warmed up
    new_ydl({})
    yt_dlp.YoutubeDL({})
    # When each builds ten instances
    began = time.process_time()
    for _ in range(10):
        new_ydl({})
    cheap = time.process_time() - began
    began = time.process_time()
    for _ in range(10):
        yt_dlp.YoutubeDL({})
    plain = time.process_time() - began
    # Then haul's takes well under half the CPU
    assert cheap < plain / 2, (cheap, plain)
