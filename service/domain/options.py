"""Download presets and the small typed option set users may choose from.

Users never pass raw yt-dlp options: a preset plus these fields is all there is,
normalized into one stored shape that ``service.media`` turns into yt-dlp options.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AudioCodec = Literal["m4a", "mp3", "opus", "flac"]
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")


class Preset(StrEnum):
    """Named bundles of options; ``best`` is the default."""

    BEST = "best"
    P720 = "720p"
    AUDIO = "audio"
    MP3 = "mp3"


class JobOptions(BaseModel):
    """What a user may set on top of a preset; unset fields keep the preset's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    height: int | None = Field(None, ge=144, le=4320, description="Highest video height.")
    audio_only: bool | None = Field(None, description="Keep only the audio track.")
    audio_codec: AudioCodec | None = Field(None, description="Audio format when audio_only.")
    subtitles: list[str] | None = Field(
        None, max_length=10, description="Subtitle languages to embed, e.g. ['en', 'pt-BR']."
    )
    embed_metadata: bool | None = Field(None, description="Write title, artist and date tags.")
    embed_thumbnail: bool | None = Field(None, description="Embed the thumbnail as cover art.")
    cookies: bool | None = Field(
        None,
        description="Send your stored cookies for the URL's site (PUT /v1/cookies/{site}); "
        "false downloads as a guest. Default true.",
    )

    @model_validator(mode="after")
    def _codec_needs_audio(self) -> JobOptions:
        if self.audio_codec is not None and self.audio_only is False:
            raise ValueError("audio_codec applies only to audio_only downloads")
        for lang in self.subtitles or []:
            if not _is_language(lang):
                raise ValueError(f"subtitles: {lang!r} is not a language code like 'en' or 'pt-BR'")
        return self


class NormalizedOptions(BaseModel):
    """The fully resolved options stored on a job; every field is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Preset
    height: int | None
    audio_only: bool
    audio_codec: AudioCodec | None
    subtitles: list[str]
    embed_metadata: bool
    embed_thumbnail: bool
    #: Jobs stored before this option existed read as true, as new ones default.
    cookies: bool = True


_BEST = NormalizedOptions(
    preset=Preset.BEST,
    height=None,
    audio_only=False,
    audio_codec=None,
    subtitles=[],
    embed_metadata=True,
    embed_thumbnail=True,
    cookies=True,
)

_PRESETS: dict[Preset, NormalizedOptions] = {
    Preset.BEST: _BEST,
    Preset.P720: _BEST.model_copy(update={"preset": Preset.P720, "height": 720}),
    Preset.AUDIO: _BEST.model_copy(
        update={"preset": Preset.AUDIO, "audio_only": True, "audio_codec": "m4a"}
    ),
    Preset.MP3: _BEST.model_copy(
        update={"preset": Preset.MP3, "audio_only": True, "audio_codec": "mp3"}
    ),
}


def normalize(preset: Preset | None, options: JobOptions | None) -> NormalizedOptions:
    """Resolve a preset and user options into the stored shape."""
    base = _PRESETS[preset or Preset.BEST]
    if options is None:
        return base
    changes = options.model_dump(exclude_none=True)
    merged = base.model_copy(update=changes)
    if merged.audio_only and merged.audio_codec is None:
        merged = merged.model_copy(update={"audio_codec": "m4a"})
    if not merged.audio_only:
        merged = merged.model_copy(update={"audio_codec": None})
    return NormalizedOptions.model_validate(merged.model_dump())


def _is_language(code: str) -> bool:
    return _LANGUAGE.fullmatch(code) is not None
