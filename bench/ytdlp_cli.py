"""The CLI baseline: one ``yt-dlp`` run per file, one after another, as a cron job or
a shell loop would do it, with command-line flags that ask for what haul asks.

``flags()`` mirrors ``service.media.options.download_params``; a change there must
be mirrored here (the small-files scenario checks both produce files of one size).
"""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING

from bench.procs import BIN

if TYPE_CHECKING:
    from pathlib import Path

    from service.domain.options import NormalizedOptions

TEMPLATE = "%(title).80B [%(id).40B].%(ext)s"


def flags(options: NormalizedOptions, out: Path) -> list[str]:
    args = [
        *("--ignore-config", "--no-cache-dir", "--quiet", "--no-progress", "--color", "never"),
        *("--restrict-filenames", "--windows-filenames", "--no-playlist"),
        *("--socket-timeout", "15", "--retries", "2", "--fragment-retries", "3"),
        *("--extractor-retries", "1", "--force-overwrites", "--no-continue"),
        *("-P", f"home:{out}", "-P", f"temp:{out}", "-o", TEMPLATE),
    ]
    if options.audio_only:
        args += ["-f", "bestaudio/best", "-x", "--audio-format", options.audio_codec or "m4a"]
    else:
        height = f"[height<={options.height}]" if options.height else ""
        fmt = f"bestvideo*{height}+bestaudio/best{height}" + ("/best" if height else "")
        args += ["-f", fmt, "--merge-output-format", "mp4", "--remux-video", "mp4"]
    if options.embed_metadata:
        args += ["--embed-metadata", "--embed-chapters"]
    if options.embed_thumbnail:
        args += ["--embed-thumbnail"]
    return args


def download(url: str, options: NormalizedOptions, out: Path) -> float:
    """Run the CLI once; returns its wall time in seconds."""
    began = time.perf_counter()
    subprocess.run([str(BIN / "yt-dlp"), *flags(options, out), url], check=True)
    return time.perf_counter() - began
