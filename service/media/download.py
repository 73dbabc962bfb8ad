"""Download one item with yt-dlp's Python API, reporting progress and obeying a stop flag.

The caller owns ``workdir`` (a fresh temp dir) and removes it afterwards, so a
stopped or failed download leaves no partial file behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog
import yt_dlp
from yt_dlp.utils import DownloadCancelled

from service import egress
from service.domain.errors import ErrorClass
from service.errors import LeaseLost, Permanent
from service.media import cookies
from service.media.errors import check_duration, classify, guard_or_classify, refused
from service.media.inspect import duration_of
from service.media.limits import MEDIA_EXTENSIONS, Limits
from service.media.options import download_params
from service.media.refusals import Refused
from service.media.ydl import new_ydl

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.domain.options import NormalizedOptions

YTDLP_VERSION: str = yt_dlp.version.__version__

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a download in flight."""

    bytes_done: int
    bytes_total: int | None
    speed: float | None
    eta: int | None

    @property
    def fraction(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(1.0, self.bytes_done / self.bytes_total)


@dataclass(frozen=True)
class Downloaded:
    """The finished file in the work dir and what yt-dlp knew about it."""

    path: Path
    title: str | None
    duration: float | None
    uploader: str | None
    extractor: str | None


class Watch(Protocol):
    """Told what yt-dlp writes while it writes it (``storage.StreamHash`` hashes the bytes)."""

    def grew(self, path: Path, size: int) -> None:
        """``path`` was appended to and now holds ``size`` bytes."""

    def finished(self, path: Path) -> None:
        """The file was closed and renamed to ``path``."""

    def spoil(self) -> None:
        """Bytes may have been written twice (a retry, fragments): what was watched is void."""


class _Stopped(DownloadCancelled):  # type: ignore[misc]
    """Raised inside yt-dlp's hooks to abort; yt-dlp lets DownloadCancelled through."""


class _TooLarge(DownloadCancelled):  # type: ignore[misc]
    """Raised inside the progress hook when the bytes pass the limit."""


def download(
    url: str,
    options: NormalizedOptions,
    workdir: Path,
    *,
    limits: Limits,
    on_progress: Callable[[Progress], None],
    on_postprocess: Callable[[], None],
    should_stop: Callable[[], bool],
    watch: Watch | None = None,
    cookiefile: Path | None = None,
    probed: dict[str, Any] | None = None,
) -> Downloaded:
    """Download and post-process ``url`` into ``workdir``, within ``limits``: one media
    item, fetched by yt-dlp itself (``service/media/refusals.py``).

    ``watch`` follows the bytes as they are written, in the hooks' thread;
    ``cookiefile`` is the attempt's cookie file, if any. ``probed`` is the probe's info
    for this item (:func:`reusable` said it is fresh): yt-dlp processes it instead of
    extracting the URL again, and extracts afresh if that fails (a format URL that
    expired), as ``--load-info-json`` does.
    Raises :class:`LeaseLost` when ``should_stop`` turns true, else a
    :class:`Permanent` or :class:`Transient` error on failure. A limit passed
    (size, duration, egress) is permanent and names the limit.
    """

    def progress_hook(d: dict[str, Any]) -> None:
        if should_stop():
            raise _Stopped("stopped: the job is no longer ours")
        if d.get("status") == "downloading":
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            done = int(d.get("downloaded_bytes") or 0)
            if limits.max_bytes is not None and max(done, int(total or 0)) > limits.max_bytes:
                raise _TooLarge(
                    f"the file is larger than {limits.max_bytes_name} ({limits.max_bytes} bytes)"
                )
            on_progress(
                Progress(
                    bytes_done=int(d.get("downloaded_bytes") or 0),
                    bytes_total=int(total) if total else None,
                    speed=d.get("speed"),
                    eta=int(d["eta"]) if d.get("eta") is not None else None,
                )
            )
        if watch is not None:
            _tell(watch, d)

    def postprocessor_hook(d: dict[str, Any]) -> None:
        if should_stop():
            raise _Stopped("stopped: the job is no longer ours")
        if d.get("status") == "started":
            on_postprocess()

    def retried(n: int) -> None:
        """yt-dlp retries a download or a fragment; returning None waits no longer."""
        if watch is not None:
            watch.spoil()

    params = download_params(
        options, workdir, generic_extractor=limits.generic_extractor, proxy=limits.proxy
    ) | {
        "progress_hooks": [progress_hook],
        "postprocessor_hooks": [postprocessor_hook],
        "retry_sleep_functions": {"http": retried, "fragment": retried},
        **cookies.params(cookiefile),
    }
    with egress.guarded(limits.egress) as guard:
        try:
            with new_ydl(params, single_item=True, max_page_bytes=limits.max_page_bytes) as ydl:
                info = _fetch(ydl, url, probed, guard, workdir, watch, cookiefile)
        except _TooLarge as exc:
            raise Permanent(str(exc), error_class=ErrorClass.TOO_LARGE) from exc
        except Refused as exc:  # a playlist, or a protocol only another program speaks
            raise guard_or_classify(guard, exc) from exc
        except DownloadCancelled as exc:
            raise LeaseLost(str(exc)) from exc
        except yt_dlp.utils.YoutubeDLError as exc:
            raise guard_or_classify(guard, exc) from exc
    refused(guard)
    if should_stop():
        raise LeaseLost("stopped: the job is no longer ours")
    if not isinstance(info, dict):
        raise Permanent(
            "yt-dlp returned nothing for this URL", error_class=ErrorClass.UNSUPPORTED_URL
        )
    info = cookies.scrub(info)
    path = _final_path(info, workdir)
    if path.suffix.lower() not in MEDIA_EXTENSIONS:
        raise Permanent(
            f"the download is not a media file (it came as {path.suffix or 'no extension'})",
            error_class=ErrorClass.NOT_MEDIA,
        )
    duration = info.get("duration") or duration_of(path)
    check_duration(duration, limits)
    return Downloaded(
        path=path,
        title=info.get("title"),
        duration=duration,
        uploader=info.get("uploader") or info.get("artist"),
        extractor=info.get("extractor_key") or info.get("extractor"),
    )


def reusable(probed: dict[str, Any] | None, max_age_s: float) -> dict[str, Any] | None:
    """The probe's info when it is young enough to reuse: format URLs of many sites are
    signed for a short while. None when there is none, or it is older than ``max_age_s``."""
    if not probed or max_age_s <= 0:
        return None
    epoch = probed.get("epoch")
    if not isinstance(epoch, int | float) or time.time() - epoch > max_age_s:
        return None
    return probed


def _fetch(
    ydl: Any,
    url: str,
    probed: dict[str, Any] | None,
    guard: egress.Guard,
    workdir: Path,
    watch: Watch | None,
    cookiefile: Path | None,
) -> Any:
    """Download from the probe's info when there is one, else (or when that fails) from
    a fresh extraction of ``url``. Everything still runs inside the egress guard and
    haul's refusals; a stop, a limit or a refusal is never tried again."""
    if probed is not None:
        try:
            return ydl.process_ie_result(dict(probed), download=True)
        except DownloadCancelled:
            raise
        except (yt_dlp.utils.YoutubeDLError, KeyError, TypeError, ValueError) as exc:
            # (info that yt-dlp cannot process any more is extracted afresh as well)
            if guard.denied is not None or _passes_with_time(exc):
                raise
            log.info("probed info failed; extracting again", error=str(exc)[:300])
            _clear(workdir, keep=cookiefile)
            if watch is not None:
                watch.spoil()
    return ydl.extract_info(url, download=True)


#: Failures that say "later", not "this address expired": the attempt ends and is retried
#: with backoff (and extracts afresh then), instead of asking the site again at once.
_LATER = frozenset(
    {ErrorClass.RATE_LIMITED, ErrorClass.HTTP_5XX, ErrorClass.TIMEOUT, ErrorClass.NETWORK}
)


def _passes_with_time(exc: BaseException) -> bool:
    """A throttle, a server error or a network failure: extracting again at once would
    only hit the site again (and feed its bot check) without backoff."""
    return isinstance(exc, yt_dlp.utils.YoutubeDLError) and classify(exc).error_class in _LATER


def _clear(workdir: Path, *, keep: Path | None) -> None:
    """Remove what a failed try wrote (partial files), so the next starts from nothing;
    the attempt's cookie file (``keep``) stays."""
    for path in workdir.iterdir():
        if path.is_file() and path != keep:
            path.unlink(missing_ok=True)


def _tell(watch: Watch, d: dict[str, Any]) -> None:
    """Pass one progress event on to ``watch``; anything but one file written once spoils it."""
    status, name = d.get("status"), d.get("tmpfilename")
    info = d.get("info_dict") or {}
    chunked = (info.get("downloader_options") or {}).get("http_chunk_size")
    if d.get("fragment_index") is not None or chunked:
        watch.spoil()  # fragments and chunks are appended by ranges a retry may repeat
    elif status == "downloading" and name and name != "-":
        watch.grew(Path(name), int(d.get("downloaded_bytes") or 0))
    elif status == "finished" and d.get("filename"):
        watch.finished(Path(d["filename"]))
    else:
        watch.spoil()


def _final_path(info: dict[str, Any], workdir: Path) -> Path:
    for requested in info.get("requested_downloads") or []:
        path = requested.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    candidates = [
        p
        for p in workdir.iterdir()
        if p.is_file() and p.suffix not in {".part", ".ytdl", ".jpg", ".webp", ".png"}
    ]
    if not candidates:
        raise Permanent("the download produced no file", error_class=ErrorClass.NO_OUTPUT)
    return max(candidates, key=lambda p: p.stat().st_size)
