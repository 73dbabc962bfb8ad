"""Turn a job's normalized options into yt-dlp parameters, server-side only.

Paths, output template and everything that touches the machine are fixed here;
nothing a user sends reaches yt-dlp except the choices of ``NormalizedOptions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from service.media.toolchain import js_params

if TYPE_CHECKING:
    from pathlib import Path

    from service.domain.options import NormalizedOptions

_log = structlog.get_logger("yt_dlp")


#: yt-dlp's own output, for our logs rather than stdout.
class YtDlpLogger:
    """Routes yt-dlp messages into structlog instead of stdout."""

    def debug(self, msg: str) -> None:
        if msg.startswith("[debug] "):
            return
        _log.debug(msg)

    def info(self, msg: str) -> None:
        _log.debug(msg)

    def warning(self, msg: str) -> None:
        _log.warning(msg)

    def error(self, msg: str) -> None:
        _log.warning(msg)


#: Post-processors that may run ffmpeg on a downloaded file; each reads its input with
#: network protocols switched off, so a "video" that is really a playlist of URLs
#: cannot make ffmpeg fetch them past the egress policy.
_FFMPEG_PPS = (
    "ffmpegextractaudio",
    "ffmpegvideoremuxer",
    "ffmpegvideoconvertor",
    "ffmpegembedsubtitle",
    "ffmpegmetadata",
    "ffmpegmerger",
    "ffmpegfixupm3u8",
    "ffmpegfixupm4a",
    "ffmpegfixupstretched",
    "ffmpegfixuptimestamp",
    "ffmpegfixupduration",
    "ffmpegfixupduplicatemoov",
    "ffmpegthumbnailsconvertor",
    "ffmpegsubtitlesconvertor",
    "embedthumbnail",
)
_LOCAL_ONLY = ["-protocol_whitelist", "file,pipe"]


def base_params(*, generic_extractor: bool = True, proxy: str | None = None) -> dict[str, Any]:
    """What every yt-dlp run in haul shares: quiet, no config, no files of the user's,
    every fetch made by yt-dlp itself (where the egress policy sees it), never by ffmpeg,
    through the operator's proxy or none, and the JavaScript runtime it was installed with."""
    return {
        # Never a proxy from the environment: with `proxy` unset yt-dlp reads
        # HTTP(S)_PROXY/ALL_PROXY, and the guard would only ever see the proxy's address.
        # "" makes yt-dlp connect directly (its "__noproxy__").
        "proxy": proxy or "",
        "logger": YtDlpLogger(),
        "quiet": True,
        "noprogress": True,
        "cachedir": False,
        "restrictfilenames": True,
        "windowsfilenames": True,
        "socket_timeout": 15,
        "retries": 2,
        "fragment_retries": 3,
        "extractor_retries": 1,
        "enable_file_urls": False,
        "ignoreerrors": False,
        "color": {"stdout": "never", "stderr": "never"},
        "allowed_extractors": ["default"] if generic_extractor else ["default", "-generic"],
        # Native downloaders only: an external one (ffmpeg for HLS) would connect
        # outside this process, where the egress policy cannot judge it.
        "external_downloader": {"default": "native"},
        "hls_prefer_native": True,
        "concurrent_fragment_downloads": 1,
        # If yt-dlp still falls back to ffmpeg (a live or unusual HLS stream), it may not
        # use the network: the download fails instead of bypassing the policy.
        "external_downloader_args": {"ffmpeg_i": _LOCAL_ONLY},
        "postprocessor_args": {f"{pp}+ffmpeg_i": _LOCAL_ONLY for pp in _FFMPEG_PPS},
        # The Deno of the `deno` package, never one from PATH; no solver scripts
        # fetched from the network (service/media/toolchain.py).
        **js_params(),
    }


def _format(options: NormalizedOptions) -> str:
    if options.audio_only:
        return "bestaudio/best"
    if options.height:
        h = options.height
        return f"bestvideo*[height<={h}]+bestaudio/best[height<={h}]/best"
    return "bestvideo*+bestaudio/best"


def download_params(
    options: NormalizedOptions,
    workdir: Path,
    *,
    generic_extractor: bool = True,
    proxy: str | None = None,
) -> dict[str, Any]:
    """Parameters for one download into ``workdir`` (a fresh temp dir per attempt)."""
    params = base_params(generic_extractor=generic_extractor, proxy=proxy)
    postprocessors: list[dict[str, Any]] = []
    if options.audio_only:
        postprocessors.append(
            {"key": "FFmpegExtractAudio", "preferredcodec": options.audio_codec or "m4a"}
        )
    else:
        params["merge_output_format"] = "mp4"
        postprocessors.append({"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"})
    if options.subtitles and not options.audio_only:
        params.update({"writesubtitles": True, "subtitleslangs": list(options.subtitles)})
        postprocessors.append({"key": "FFmpegEmbedSubtitle", "already_have_subtitle": False})
    if options.embed_metadata:
        postprocessors.append({"key": "FFmpegMetadata", "add_metadata": True, "add_chapters": True})
    if options.embed_thumbnail:
        params["writethumbnail"] = True
        postprocessors.append({"key": "EmbedThumbnail", "already_have_thumbnail": False})
    params.update(
        {
            "format": _format(options),
            "noplaylist": True,
            "paths": {"home": str(workdir), "temp": str(workdir)},
            "outtmpl": {"default": "%(title).80B [%(id).40B].%(ext)s"},
            "overwrites": True,
            "continuedl": False,
            "postprocessors": postprocessors,
        }
    )
    return params
