"""Map yt-dlp's exceptions to haul's: :class:`Permanent` or :class:`Transient`, once.

A permanent failure is never retried (the URL is wrong, the video is gone); a
transient one is retried with backoff by Dramatiq's ``Retries`` middleware.
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING

from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import (
    GeoRestrictedError,
    PostProcessingError,
    UnsupportedError,
    YoutubeDLError,
)

from service.domain.errors import ErrorClass
from service.errors import JobFailure, Permanent, Transient
from service.media.refusals import Refused

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.egress import Guard
    from service.media.limits import Limits

_HTTP_STATUS = re.compile(r"http error (\d{3})", re.I)
#: What a site says when it throttles us or asks us to prove we are no bot: these count
#: against its breaker (``domain/breaker.py``), not against the job alone.
_BOT_CHECK = re.compile(
    r"sign in to confirm|not a bot|too many requests|rate.?limit|try again later"
    r"|unusual traffic|captcha",
    re.I,
)

#: Message fragments, most specific first, for failures yt-dlp reports as text only.
_TEXT: list[tuple[re.Pattern[str], type[JobFailure], ErrorClass]] = [
    (
        re.compile(r"confirm your age|age.?restricted|inappropriate for some users", re.I),
        Permanent,
        ErrorClass.AGE_RESTRICTED,
    ),
    (
        re.compile(r"unsupported url|no suitable extractor", re.I),
        Permanent,
        ErrorClass.UNSUPPORTED_URL,
    ),
    (re.compile(r"is not a valid url", re.I), Permanent, ErrorClass.INVALID_URL),
    (
        re.compile(r"requested format is not available", re.I),
        Permanent,
        ErrorClass.FORMAT_UNAVAILABLE,
    ),
    (
        re.compile(r"private video|members[- ]only|join this channel", re.I),
        Permanent,
        ErrorClass.UNAVAILABLE,
    ),
    (
        re.compile(
            r"video unavailable|has been removed|no longer available|account .* terminated", re.I
        ),
        Permanent,
        ErrorClass.UNAVAILABLE,
    ),
    (
        re.compile(r"not available in your country|geo.?restrict", re.I),
        Permanent,
        ErrorClass.GEO_BLOCKED,
    ),
    (_BOT_CHECK, Transient, ErrorClass.RATE_LIMITED),
    (re.compile(r"timed out|timeout", re.I), Transient, ErrorClass.TIMEOUT),
    (
        re.compile(r"connection|network|temporary failure|name resolution", re.I),
        Transient,
        ErrorClass.NETWORK,
    ),
]


def _from_status(status: int, message: str, body: str = "") -> JobFailure:
    """An HTTP status decides: 429, 408 and 5xx pass with time, and a 403 that is a bot
    check; other 4xx do not."""
    if status == 429 or (status == 403 and _BOT_CHECK.search(f"{message}\n{body}")):
        return Transient(message, error_class=ErrorClass.RATE_LIMITED)
    if status == 408:
        return Transient(message, error_class=ErrorClass.TIMEOUT)
    if status >= 500:
        return Transient(message, error_class=ErrorClass.HTTP_5XX)
    return Permanent(message, error_class=ErrorClass.http(status))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (yt-dlp keeps causes in ``exc_info``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        if (
            isinstance(exc_info, tuple)
            and len(exc_info) > 1
            and isinstance(exc_info[1], BaseException)
        ):
            todo.append(exc_info[1])
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])


def _peek(error: HTTPError) -> str:
    """The start of an error answer's body (a bot check says so there), or nothing."""
    try:
        data = error.response.read(4096)
    except Exception:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else ""


def _clean(message: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", message)
    text = re.sub(r"^ERROR:\s*", "", text.strip())
    return text[:2000]


def classify(exc: BaseException) -> JobFailure:
    """Turn a yt-dlp (or network) failure into a Permanent or Transient error."""
    message = _clean(str(exc)) or type(exc).__name__
    for cause in _causes(exc):
        if isinstance(cause, Refused):
            return Permanent(_clean(str(cause.msg)), error_class=cause.error_class)
        if isinstance(cause, HTTPError):
            return _from_status(cause.status, message, _peek(cause) if cause.status == 403 else "")
        if isinstance(cause, UnsupportedError):
            return Permanent(message, error_class=ErrorClass.UNSUPPORTED_URL)
        if isinstance(cause, GeoRestrictedError):
            return Permanent(message, error_class=ErrorClass.GEO_BLOCKED)
        if isinstance(cause, PostProcessingError):
            return Permanent(message, error_class=ErrorClass.POSTPROCESSING)
        if isinstance(cause, TransportError | socket.timeout | ConnectionError):
            return Transient(message, error_class=ErrorClass.NETWORK)
    if status := _HTTP_STATUS.search(message):
        return _from_status(int(status.group(1)), message)
    for pattern, kind, error_class in _TEXT:
        if pattern.search(message):
            return kind(message, error_class=error_class)
    if isinstance(exc, YoutubeDLError):
        return Transient(message, error_class=ErrorClass.EXTRACTOR)
    return Transient(message, error_class=ErrorClass.unexpected(exc))


def guard_or_classify(guard: Guard, exc: YoutubeDLError) -> JobFailure:
    """A refused connection explains a yt-dlp failure better than yt-dlp's own wording
    (told without the address: that is logged for the operator)."""
    if (denied := guard.reported()) is not None:
        return Permanent(denied, error_class=ErrorClass.EGRESS_DENIED)
    return classify(exc)


def refused(guard: Guard) -> None:
    """Fail when any connection was refused, even one yt-dlp shrugged off (a thumbnail)."""
    if (denied := guard.reported()) is not None:
        raise Permanent(denied, error_class=ErrorClass.EGRESS_DENIED)


def check_duration(duration: float | None, limits: Limits) -> None:
    if limits.max_duration_s is not None and duration and duration > limits.max_duration_s:
        raise Permanent(
            f"the media lasts {duration:.0f} s, longer than HAUL_MAX_DURATION_S "
            f"({limits.max_duration_s:.0f} s)",
            error_class=ErrorClass.TOO_LONG,
        )
