"""What yt-dlp may not do for a job (service/media/refusals.py): fetch through another
program, or fetch a playlist's entries in a download step."""

from __future__ import annotations

from typing import Any

import pytest

from service.domain.errors import ErrorClass
from service.media.options import base_params
from service.media.refusals import (
    NestedPlaylist,
    UnsupportedProtocol,
    check_download,
    keep_native_formats,
    refuse_playlist,
)


def fmt(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, **extra}


NATIVE_FORMATS = [
    fmt("https://cdn.example/v.mp4"),
    fmt("http://cdn.example/v.webm"),
    fmt("https://cdn.example/v.m3u8"),
    fmt("https://cdn.example/v.m3u8", protocol="m3u8"),
    fmt("https://cdn.example/manifest.mpd", protocol="http_dash_segments"),
]
FOREIGN_FORMATS = [
    fmt("rtmp://media.example/live/v"),
    fmt("rtmpe://media.example/live/v"),
    fmt("rtsp://media.example/v"),
    fmt("mms://media.example/v"),
    fmt("https://media.example/v", protocol="rtmp_ffmpeg"),
    fmt("https://media.example/v", protocol="websocket_frag"),
    fmt("https://media.example/v.f4m"),
    fmt("ftp://media.example/v.mp4"),
]


@pytest.mark.parametrize("native", NATIVE_FORMATS, ids=lambda f: f.get("protocol") or f["url"])
def test_native_formats_are_kept_and_others_dropped(native: dict[str, Any]) -> None:
    # Given an item offered natively and over every protocol another program would fetch
    info = {"id": "v", "formats": [*FOREIGN_FORMATS, native]}
    # When its formats are filtered, Then only the native one is left to choose from
    keep_native_formats(info)
    assert info["formats"] == [native]


@pytest.mark.parametrize("foreign", FOREIGN_FORMATS, ids=lambda f: f.get("protocol") or f["url"])
def test_an_item_with_no_native_format_is_refused(foreign: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedProtocol) as refused:
        keep_native_formats({"id": "v", "formats": [foreign]})
    assert refused.value.error_class is ErrorClass.UNSUPPORTED_PROTOCOL
    assert "which haul does not download" in str(refused.value)


def test_an_item_that_is_its_own_format_is_judged_too() -> None:
    with pytest.raises(UnsupportedProtocol, match="only over rtmp,"):
        keep_native_formats({"id": "v", "url": "rtmp://media.example/live/v"})
    keep_native_formats({"id": "v", "url": "https://cdn.example/v.mp4"})


PARAMS = base_params()


@pytest.mark.parametrize(
    "info",
    [
        fmt("rtmp://media.example/live/v", ext="flv"),
        fmt("rtsp://media.example/v", ext="mp4"),
        # a merge of a native format and a foreign one
        fmt("https://a\nrtmp://b", protocol="https+rtmp", ext="mp4"),
        # live HLS: yt-dlp hands it to ffmpeg whatever it is told
        fmt("https://cdn.example/live.m3u8", protocol="m3u8_native", is_live=True, ext="mp4"),
    ],
    ids=["rtmp", "rtsp", "merge", "live-hls"],
)
def test_a_download_another_program_would_make_is_refused(info: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedProtocol):
        check_download(info, PARAMS, to_stdout=False)


@pytest.mark.parametrize(
    "info",
    [
        fmt("https://cdn.example/v.mp4", ext="mp4"),
        fmt("https://cdn.example/v.m3u8", protocol="m3u8_native", ext="mp4"),
        fmt("https://a\nhttps://b", protocol="https+https", ext="mp4"),
    ],
    ids=["https", "hls", "merge"],
)
def test_a_download_yt_dlp_makes_itself_passes(info: dict[str, Any]) -> None:
    check_download(info, PARAMS, to_stdout=False)


@pytest.mark.parametrize("kind", ["playlist", "multi_video", "compat_list"])
def test_a_playlist_is_refused_before_its_entries(kind: str) -> None:
    with pytest.raises(NestedPlaylist) as refused:
        refuse_playlist({"_type": kind, "entries": [fmt("https://cdn.example/a.mp4")]})
    assert refused.value.error_class is ErrorClass.NESTED_PLAYLIST


@pytest.mark.parametrize("kind", [None, "video", "url", "url_transparent"])
def test_one_item_or_a_link_to_one_passes(kind: str | None) -> None:
    refuse_playlist({"_type": kind, "url": "https://cdn.example/a.mp4"} if kind else {"id": "a"})
