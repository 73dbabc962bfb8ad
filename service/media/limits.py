"""What one job's media work may do: where it may connect (and through which proxy), how big
and how long its file may be, how much of one page or manifest it may read."""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.egress import EgressPolicy  # noqa: TC001  (a dataclass field type)

#: Extensions a stored file may have; anything else is not the media the user asked for
#: (a generic page can "download" as JSON or HTML).
MEDIA_EXTENSIONS = frozenset(
    {
        ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".flv", ".ts", ".3gp",
        ".m4a", ".mp3", ".aac", ".opus", ".ogg", ".oga", ".flac", ".wav", ".alac",
    }
)  # fmt: skip

#: ``HAUL_MAX_PAGE_BYTES``'s default: the most of one response read whole (a page, a manifest).
MAX_PAGE_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class Limits:
    """The bounds of one job's probe or download.

    ``max_bytes`` is the smaller of the file-size limit and what is left of the
    client's storage quota; ``max_bytes_name`` says which one, for the error.
    ``proxy`` is the operator's ``HAUL_PROXY``; None means direct connections only.
    ``max_page_bytes`` bounds each response yt-dlp reads whole (``service/media/pages.py``).
    """

    egress: EgressPolicy
    max_bytes: int | None = None
    max_bytes_name: str = "HAUL_MAX_FILE_BYTES"
    max_duration_s: float | None = None
    generic_extractor: bool = True
    proxy: str | None = None
    max_page_bytes: int = MAX_PAGE_BYTES
