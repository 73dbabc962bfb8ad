"""One mapping from errors to RFC 9457 problem+json responses; nothing else builds error bodies.

Bodies never carry stack traces or internal paths: unexpected errors are logged
with their traceback and answered with a plain 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from litestar import Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from pydantic import BaseModel, ConfigDict

from service.api.ratelimits import headers as rate_headers
from service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HaulError,
    InvalidInput,
    KeyReused,
    LimitExceeded,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    TooLarge,
    TooManyStreams,
    Unauthorized,
)

if TYPE_CHECKING:
    from litestar import Request

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

#: First match wins: subclasses before their bases.
_STATUS: list[tuple[type[HaulError], int, str]] = [
    (KeyReused, HTTP_422_UNPROCESSABLE_ENTITY, "idempotency-key-reused"),
    (InvalidInput, HTTP_422_UNPROCESSABLE_ENTITY, "invalid-input"),
    # A quota is not cleared by waiting a known time, so no 429 and no Retry-After.
    (QuotaExceeded, HTTP_403_FORBIDDEN, "quota-exceeded"),
    (RateLimited, HTTP_429_TOO_MANY_REQUESTS, "rate-limited"),
    (TooManyStreams, HTTP_429_TOO_MANY_REQUESTS, "too-many-streams"),
    (TooLarge, HTTP_413_REQUEST_ENTITY_TOO_LARGE, "too-large"),
    (BadRequest, HTTP_400_BAD_REQUEST, "bad-request"),
    (NotFound, HTTP_404_NOT_FOUND, "not-found"),
    (Conflict, HTTP_409_CONFLICT, "conflict"),
    (Unauthorized, HTTP_401_UNAUTHORIZED, "unauthorized"),
    (Forbidden, HTTP_403_FORBIDDEN, "forbidden"),
    (ServiceUnavailable, HTTP_503_SERVICE_UNAVAILABLE, "unavailable"),
]

_HEADERS = {
    HTTP_401_UNAUTHORIZED: {"WWW-Authenticate": 'Bearer realm="haul"'},
    HTTP_503_SERVICE_UNAVAILABLE: {"Retry-After": "5"},
}

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem: the body of every error answer of the API."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str


def documented(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problems a route may answer; every route that takes a key
    may also answer 401 and 429 (its request rate), and every route that needs the
    database 503."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_TITLES[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted({401, 429, 503, *statuses})
    }


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def handle_haul_error(request: Request[Any, Any, Any], exc: HaulError) -> Response[dict[str, Any]]:
    for kind, status, slug in _STATUS:
        if isinstance(exc, kind):
            headers = _HEADERS.get(status)
            if isinstance(exc, RateLimited):
                headers = rate_headers(exc.rate)
            if isinstance(exc, TooManyStreams):
                headers = {"Retry-After": str(exc.retry_after_s)}
            return problem(request, status, exc.message, slug=slug, headers=headers, **_limit(exc))
    return handle_unexpected(request, exc)


def _limit(exc: HaulError) -> dict[str, Any]:
    """Which limit a refusal is about, its value and (for a quota) the client's usage."""
    if not isinstance(exc, LimitExceeded):
        return {}
    found: dict[str, Any] = {"limit": exc.limit, "value": exc.value}
    if exc.current is not None:
        found["current"] = exc.current
    return found


def handle_validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Schema violations are 422; a body that is not JSON at all is 400."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [_clean_error(e) for e in extra if isinstance(e, dict)]
    if not errors or ("json" in str(exc.detail).lower() and not any(e["field"] for e in errors)):
        return problem(
            request, HTTP_400_BAD_REQUEST, _json_detail(exc.detail), slug="malformed-body"
        )
    summary = "; ".join(
        f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors
    )
    return problem(
        request, HTTP_422_UNPROCESSABLE_ENTITY, summary, slug="invalid-input", errors=errors
    )


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, NotAuthorizedException):
        return handle_haul_error(request, Unauthorized())
    status = exc.status_code
    detail = exc.detail if status < HTTP_500_INTERNAL_SERVER_ERROR else _TITLES.get(status, "Error")
    if status == 413:
        detail = "the request body is larger than this server accepts"
    if status == HTTP_400_BAD_REQUEST and "json" in str(detail).lower():
        return problem(request, status, _json_detail(detail), slug="malformed-body")
    return problem(request, status, str(detail), headers=exc.headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", path=request.url.path, exc_info=exc)
    return problem(
        request, HTTP_500_INTERNAL_SERVER_ERROR, "an internal error occurred; it was logged"
    )


def _clean_error(error: dict[str, Any]) -> dict[str, Any]:
    key = str(error.get("key") or "")
    message = str(error.get("message") or "invalid value")
    return {"field": key, "message": message}


def _json_detail(detail: object) -> str:
    text = str(detail)
    return f"the request body is not valid JSON ({text})" if "json" in text.lower() else text


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HaulError: handle_haul_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
