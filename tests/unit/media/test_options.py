"""The yt-dlp parameters a job's options become (service/media/options.py): what each preset
asks of the extractor, and what no option can ever set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from service.domain.options import JobOptions, Preset, normalize
from service.media.options import base_params, download_params

WORKDIR = Path("/srv/haul/tmp/attempt-1")


# --- yt-dlp parameters ---------------------------------------------------------------------

#: Every preset, alone and with the user options that change the parameters the most.
CASES: list[tuple[Preset, JobOptions | None]] = [
    *((preset, None) for preset in Preset),
    (Preset.BEST, JobOptions(subtitles=["en"], embed_metadata=False, embed_thumbnail=False)),
    (Preset.P720, JobOptions(height=1080, subtitles=["pt-BR"])),
    (Preset.AUDIO, JobOptions(audio_codec="flac", subtitles=["en"])),
    (Preset.MP3, JobOptions(audio_only=False)),
]
CASE_IDS = [f"{p.value}-{'options' if o else 'plain'}" for p, o in CASES]


def _params(preset: Preset, user: JobOptions | None) -> dict[str, Any]:
    return download_params(normalize(preset, user), WORKDIR)


def _extract_audio(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [pp for pp in params["postprocessors"] if pp["key"] == "FFmpegExtractAudio"]


@pytest.mark.parametrize(("preset", "codec"), [(Preset.AUDIO, "m4a"), (Preset.MP3, "mp3")])
def test_audio_presets_extract_audio_with_their_codec(preset: Preset, codec: str) -> None:
    params = _params(preset, None)

    assert _extract_audio(params) == [{"key": "FFmpegExtractAudio", "preferredcodec": codec}]
    assert "merge_output_format" not in params


def test_user_audio_codec_reaches_the_extractor() -> None:
    params = _params(Preset.AUDIO, JobOptions(audio_codec="flac"))

    assert _extract_audio(params)[0]["preferredcodec"] == "flac"


@pytest.mark.parametrize("preset", [Preset.BEST, Preset.P720])
def test_video_presets_merge_to_mp4_without_extracting_audio(preset: Preset) -> None:
    params = _params(preset, None)

    assert params["merge_output_format"] == "mp4"
    assert _extract_audio(params) == []


def test_subtitles_are_requested_for_video() -> None:
    params = _params(Preset.BEST, JobOptions(subtitles=["en", "pt-BR"]))

    assert params["writesubtitles"] is True
    assert params["subtitleslangs"] == ["en", "pt-BR"]


FORBIDDEN_KEYS = {
    "exec",
    "exec_cmd",
    "cookiefile",
    "cookiesfrombrowser",
    "usenetrc",
    "netrc_cmd",
    "username",
    "password",
    "ffmpeg_location",
    "download_archive",
    "load_info_filename",
    "batchfile",
}


@pytest.mark.parametrize(("preset", "user"), CASES, ids=CASE_IDS)
def test_no_dangerous_parameter_is_ever_set(preset: Preset, user: JobOptions | None) -> None:
    params = _params(preset, user)

    assert FORBIDDEN_KEYS.isdisjoint(params), FORBIDDEN_KEYS & set(params)
    assert not params.get("enable_file_urls")
    assert all(pp["key"] != "Exec" for pp in params["postprocessors"])
    # Every fetch stays in yt-dlp (where the egress policy sees it); ffmpeg gets no network
    assert params["external_downloader"] == {"default": "native"}
    assert params["hls_prefer_native"] is True
    local_only = ["-protocol_whitelist", "file,pipe"]
    assert params["external_downloader_args"] == {"ffmpeg_i": local_only}
    for pp in params["postprocessors"]:
        assert params["postprocessor_args"][f"{pp['key'].lower()}+ffmpeg_i"] == local_only


@pytest.mark.parametrize(("preset", "user"), CASES, ids=CASE_IDS)
def test_every_path_is_inside_the_workdir(preset: Preset, user: JobOptions | None) -> None:
    params = _params(preset, user)

    for name, path in params["paths"].items():
        assert Path(os.path.normpath(path)).is_relative_to(WORKDIR), f"paths[{name!r}] = {path!r}"
    for name, template in params["outtmpl"].items():
        assert not Path(template).is_absolute(), f"outtmpl[{name!r}] = {template!r}"
        assert ".." not in Path(template).parts, f"outtmpl[{name!r}] = {template!r}"


@pytest.mark.parametrize(("preset", "user"), CASES, ids=CASE_IDS)
def test_single_item_with_safe_filenames(preset: Preset, user: JobOptions | None) -> None:
    params = _params(preset, user)

    assert params["noplaylist"] is True
    assert params["restrictfilenames"] is True


def test_params_follow_the_workdir_given() -> None:
    # Two attempts get two directories; nothing is shared between them
    first = download_params(normalize(Preset.BEST, None), Path("/tmp/a"))
    second = download_params(normalize(Preset.BEST, None), Path("/tmp/b"))

    assert first["paths"] == {"home": "/tmp/a", "temp": "/tmp/a"}
    assert second["paths"] == {"home": "/tmp/b", "temp": "/tmp/b"}


@pytest.mark.parametrize(("preset", "user"), CASES, ids=CASE_IDS)
def test_no_proxy_unless_the_operator_names_one(preset: Preset, user: JobOptions | None) -> None:
    # "" is yt-dlp's "no proxy": unset, it would take one from HTTP(S)_PROXY/ALL_PROXY
    assert _params(preset, user)["proxy"] == ""
    assert base_params()["proxy"] == ""
    named = download_params(normalize(preset, user), WORKDIR, proxy="http://proxy.internal:3128")
    assert named["proxy"] == "http://proxy.internal:3128"
