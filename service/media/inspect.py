"""Read a finished file's duration (yt-dlp's generic extractor often has none).

From the container's header in this process (mutagen, which yt-dlp's ``default``
extra brings: MP4/M4A, MP3, Ogg/Opus, FLAC, …) rather than a separate ``ffprobe``,
which cost about 60 ms of CPU per small file; ffprobe remains for the containers
mutagen does not read (WebM, Matroska).
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

import mutagen

if TYPE_CHECKING:
    from pathlib import Path


def duration_of(path: Path) -> float | None:
    """Seconds of media in ``path``, or None when neither the header nor ffprobe can tell."""
    return _from_header(path) or _from_ffprobe(path)


def _from_header(path: Path) -> float | None:
    try:
        found = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError):
        return None
    length = getattr(getattr(found, "info", None), "length", None)
    return float(length) if isinstance(length, int | float) and length > 0 else None


def _from_ffprobe(path: Path) -> float | None:
    try:
        out = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-protocol_whitelist",
                "file",
                "-show_entries",
                "format=duration",
                "-of",
                "json",
                str(path),
            ],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        return float(json.loads(out)["format"]["duration"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None
