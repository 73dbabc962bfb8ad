"""haul's worker with yt-dlp taken out: ``dramatiq bench.noop_actors``.

It loads the real ``actors`` package (broker, middleware, actors) and replaces
only the two calls into yt-dlp that ``service.work.download`` makes, so a job still
goes through everything else haul does: claim with a lease, attempt rows, the
probe's hand-over to the download queue, the lease keeper thread, hashing and the
atomic move into storage, the artifact row and the finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import service.work.download as work_download
import service.work.probe as work_probe
from actors import broker
from service.media.download import Downloaded, Progress
from service.media.probe import ProbeResult

if TYPE_CHECKING:
    from pathlib import Path

PAYLOAD = b"\0" * 1024


def probe(url: str, *, max_entries: int, limits: Any = None, **_: Any) -> ProbeResult:
    return ProbeResult(is_playlist=False, title="noop", extractor="bench")


def download(url: str, options: Any, workdir: Path, **hooks: Any) -> Downloaded:
    path = workdir / "noop [noop].mp4"
    path.write_bytes(PAYLOAD)
    hooks["on_progress"](Progress(len(PAYLOAD), len(PAYLOAD), None, 0))
    return Downloaded(path=path, title="noop", duration=1.0, uploader=None, extractor="bench")


# The two names the worker's use cases import from service.media; nothing else changes.
work_probe.probe = probe  # type: ignore[attr-defined]
work_download.download = download  # type: ignore[attr-defined]

__all__ = ["broker"]
