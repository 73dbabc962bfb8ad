"""Presets and user options (service/domain/options.py): what each preset means, how user
options combine with it, and what validation refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.domain.options import JobOptions, Preset, normalize
from service.media.options import download_params

WORKDIR = Path("/srv/haul/tmp/attempt-1")


# --- presets -------------------------------------------------------------------------------


def test_no_preset_means_best() -> None:
    assert normalize(None, None) == normalize(Preset.BEST, None)
    assert normalize(None, None).preset is Preset.BEST


def test_best_is_video_without_a_height_limit() -> None:
    options = normalize(Preset.BEST, None)

    assert options.audio_only is False
    assert options.audio_codec is None
    assert options.height is None


def test_best_merges_into_mp4() -> None:
    params = download_params(normalize(Preset.BEST, None), WORKDIR)

    assert params["merge_output_format"] == "mp4"


def test_720p_limits_height_to_720() -> None:
    options = normalize(Preset.P720, None)

    assert options.height == 720
    assert options.audio_only is False
    assert "height<=720" in download_params(options, WORKDIR)["format"]


def test_audio_preset_is_audio_only_m4a() -> None:
    options = normalize(Preset.AUDIO, None)

    assert options.audio_only is True
    assert options.audio_codec == "m4a"


def test_mp3_preset_is_audio_only_mp3() -> None:
    options = normalize(Preset.MP3, None)

    assert options.audio_only is True
    assert options.audio_codec == "mp3"


# --- user options on top of a preset -------------------------------------------------------


def test_user_options_override_the_preset() -> None:
    # Given the 720p preset and a user who wants 1080p, subtitles and no thumbnail
    user = JobOptions(height=1080, subtitles=["en", "pt-BR"], embed_thumbnail=False)

    # When the two are combined
    options = normalize(Preset.P720, user)

    # Then the user's choices win and the rest keeps the preset's value
    assert options.height == 1080
    assert options.subtitles == ["en", "pt-BR"]
    assert options.embed_thumbnail is False
    assert options.embed_metadata is True
    assert options.preset is Preset.P720


def test_user_codec_overrides_the_audio_preset_codec() -> None:
    options = normalize(Preset.AUDIO, JobOptions(audio_codec="opus"))

    assert options.audio_only is True
    assert options.audio_codec == "opus"


def test_audio_only_without_a_codec_gets_m4a() -> None:
    options = normalize(Preset.BEST, JobOptions(audio_only=True))

    assert options.audio_only is True
    assert options.audio_codec == "m4a"


def test_video_preset_drops_an_audio_codec() -> None:
    # audio_only is unset, so the video preset decides and the codec does not apply
    options = normalize(Preset.BEST, JobOptions(audio_codec="mp3"))

    assert options.audio_only is False
    assert options.audio_codec is None


def test_turning_audio_only_off_on_an_audio_preset_drops_its_codec() -> None:
    options = normalize(Preset.MP3, JobOptions(audio_only=False))

    assert options.audio_only is False
    assert options.audio_codec is None


def test_empty_user_options_keep_the_preset() -> None:
    for preset in Preset:
        assert normalize(preset, JobOptions()) == normalize(preset, None)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"exec": "rm -rf /"},
        {"external_downloader": "aria2c"},
        {"cookiefile": "/etc/passwd"},
        {"format": "best"},
        {"paths": {"home": "/"}},
    ],
    ids=lambda f: next(iter(f)),
)
def test_unknown_fields_are_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        JobOptions.model_validate(fields)


@pytest.mark.parametrize("height", [144, 720, 4320])
def test_heights_within_bounds_are_accepted(height: int) -> None:
    assert JobOptions(height=height).height == height


@pytest.mark.parametrize("height", [0, 143, 4321, -720])
def test_heights_out_of_bounds_are_rejected(height: int) -> None:
    with pytest.raises(ValidationError, match="height"):
        JobOptions(height=height)


def test_audio_codec_with_audio_only_false_is_rejected() -> None:
    with pytest.raises(ValidationError, match="audio_codec applies only to audio_only"):
        JobOptions(audio_only=False, audio_codec="mp3")


def test_unknown_audio_codec_is_rejected() -> None:
    with pytest.raises(ValidationError, match="audio_codec"):
        JobOptions.model_validate({"audio_codec": "wav"})


@pytest.mark.parametrize("language", ["en", "pt-BR", "zh-Hant", "fil"])
def test_subtitle_language_codes_are_accepted(language: str) -> None:
    assert JobOptions(subtitles=[language]).subtitles == [language]


@pytest.mark.parametrize("language", ["", "e", "english", "en_US", "en-", "../en", "en;rm"])
def test_bad_subtitle_language_is_rejected(language: str) -> None:
    with pytest.raises(ValidationError, match="not a language code"):
        JobOptions(subtitles=["en", language])


def test_more_than_ten_subtitle_languages_are_rejected() -> None:
    with pytest.raises(ValidationError, match="subtitles"):
        JobOptions(subtitles=["en"] * 11)


def test_options_are_immutable() -> None:
    options = normalize(Preset.BEST, None)

    with pytest.raises(ValidationError, match="frozen"):
        options.height = 480  # type: ignore[misc]
