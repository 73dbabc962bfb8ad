"""The names of failures: a job's and an attempt's ``error_class``, spelled once.

An error class is a contract: users read it on a failed job and retry by it
(``POST /v1/jobs/retry``), dashboards group by it (the ``error_class`` label of
``haul_attempts_total`` and ``haul_dead_letters_total``), webhooks carry it.
:class:`ErrorClass` lists every name haul gives; two families stay open, because
their members come from outside:

* ``http_<status>``: a site answered a 4xx other than 408 and 429 (``http_404``);
* an exception's type name (``KeyError``): a failure nobody classified, kept
  verbatim so it can be found and given a name of its own.

``ErrorClass("http_451")`` and ``ErrorClass("OSError")`` are members of those
families; any other unknown name is a ``ValueError``, so a typo cannot pass.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import cast

#: The open families: an HTTP status, or an exception's type name (CamelCase).
_OPEN = re.compile(r"http_\d{3}|[A-Z][A-Za-z0-9_]{0,63}")


class ErrorClass(StrEnum):
    """Why a job or an attempt failed, as users filter on it."""

    # Permanent: trying again will not help
    UNSUPPORTED_URL = "unsupported_url"
    INVALID_URL = "invalid_url"
    FORMAT_UNAVAILABLE = "format_unavailable"
    UNAVAILABLE = "unavailable"
    AGE_RESTRICTED = "age_restricted"
    GEO_BLOCKED = "geo_blocked"
    POSTPROCESSING = "postprocessing"
    EGRESS_DENIED = "egress_denied"
    TOO_LONG = "too_long"
    TOO_LARGE = "too_large"
    NOT_MEDIA = "not_media"
    NO_OUTPUT = "no_output"
    EMPTY_PLAYLIST = "empty_playlist"
    #: A download step met a playlist (a feed inside a feed, a page of several videos, a
    #: site that changed its answer): one job downloads one item, so none of it is fetched.
    NESTED_PLAYLIST = "nested_playlist"
    #: The media is offered only over a protocol yt-dlp would hand to another program
    #: (RTMP, RTSP, MMS, a live stream for ffmpeg), out of the egress guard's sight.
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    #: One response (a page, a manifest, an API answer) was larger than
    #: ``HAUL_MAX_PAGE_BYTES``; haul stopped reading it rather than hold it in memory.
    PAGE_TOO_LARGE = "page_too_large"
    #: A subscription's URL is a single item, not a feed, channel or playlist.
    NOT_A_FEED = "not_a_feed"
    QUOTA = "quota"
    # Transient: retried with backoff
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    NETWORK = "network"
    HTTP_5XX = "http_5xx"
    EXTRACTOR = "extractor"
    # Written by haul itself, not met in an attempt's work
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    LEASE_EXPIRED = "lease_expired"
    DEAD_LETTER = "dead_letter"
    CHILDREN_FAILED = "children_failed"
    PUBLISH_FAILED = "publish_failed"
    # The defaults of the error types, when no class was given
    ERROR = "error"
    PERMANENT = "permanent"
    TRANSIENT = "transient"

    @classmethod
    def http(cls, status: int) -> ErrorClass:
        """``http_<status>``: what a site's 4xx answer is called."""
        return cls(f"http_{status}")

    @classmethod
    def unexpected(cls, exc: BaseException) -> ErrorClass:
        """A failure nobody classified, named after its type (never refused)."""
        return cls._open(type(exc).__name__[:64])

    @classmethod
    def _missing_(cls, value: object) -> ErrorClass | None:
        """A name of an open family is a member; any other unknown name is not."""
        if isinstance(value, str) and _OPEN.fullmatch(value):
            return cls._open(value)
        return None

    @classmethod
    def _open(cls, value: str) -> ErrorClass:
        """The member of an open family named ``value``: made once, then found like any other."""
        known = cls._value2member_map_.get(value)
        if known is not None:
            return cast("ErrorClass", known)
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return cast("ErrorClass", cls._value2member_map_.setdefault(value, member))
