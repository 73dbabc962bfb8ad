"""The error types of haul; each class's docstring is its default message.

Errors are types, not flags: the API maps them to HTTP responses in one place,
the workers decide retry or not by class (``Permanent`` vs ``Transient``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.domain.errors import ErrorClass

if TYPE_CHECKING:
    from service.domain.ratelimit import RateState


class HaulError(Exception):
    """Something went wrong."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class InvalidInput(HaulError):
    """The request is not valid."""


class BadRequest(HaulError):
    """The request could not be understood."""


class NotFound(HaulError):
    """No such resource."""


class Conflict(HaulError):
    """The resource is not in a state that allows this."""


class InvalidTransition(Conflict):
    """A job cannot move between these states."""


class KeyReused(InvalidInput):
    """This Idempotency-Key was already used with a different request."""


class LimitExceeded(HaulError):
    """A limit of this client is reached."""

    def __init__(
        self, message: str | None = None, *, limit: str, value: int, current: int | None = None
    ) -> None:
        super().__init__(message)
        #: The limit's name as operators set it (``haul clients limits --max-active-jobs``).
        self.limit = limit
        self.value = value
        self.current = current


class TooLarge(LimitExceeded):
    """The request body is larger than this route accepts."""


class QuotaExceeded(LimitExceeded):
    """A quota of this client is used up; nothing was created."""


class RateLimited(LimitExceeded):
    """Too many requests from this client; slow down."""

    def __init__(self, message: str | None = None, *, rate: RateState) -> None:
        super().__init__(message, limit="requests_per_minute", value=rate.limit)
        self.rate = rate


class TooManyStreams(LimitExceeded):
    """This client already has as many event streams open as it may; close one first."""

    def __init__(self, *, value: int, retry_after_s: int) -> None:
        super().__init__(limit="sse_max_streams_per_client", value=value, current=value)
        #: When trying again makes sense: an idle stream's heartbeat finds a closed one by then.
        self.retry_after_s = retry_after_s


class Unauthorized(HaulError):
    """A valid API key is required."""


class Forbidden(HaulError):
    """This API key may not do that."""


class ServiceUnavailable(HaulError):
    """A backing service (database or broker) is not reachable."""


class JobFailure(HaulError):
    """A job attempt failed."""

    #: A short, stable name users can filter on (e.g. ``http_404``).
    error_class: ErrorClass = ErrorClass.ERROR

    def __init__(
        self, message: str | None = None, *, error_class: ErrorClass | None = None
    ) -> None:
        super().__init__(message)
        if error_class:
            self.error_class = error_class


class Permanent(JobFailure):
    """The job cannot succeed; trying again will not help."""

    error_class = ErrorClass.PERMANENT


class Transient(JobFailure):
    """The job failed for a reason that may pass; it is retried with backoff."""

    error_class = ErrorClass.TRANSIENT
    #: Set when the next attempt makes no sense sooner (the site's breaker is open until
    #: then): the retry waits at least this long.
    retry_after_s: float | None = None


class LeaseLost(HaulError):
    """This worker no longer holds the job (cancelled, deleted or taken over)."""
