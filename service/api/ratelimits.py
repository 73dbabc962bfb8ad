"""RateLimit header fields (draft-ietf-httpapi-ratelimit-headers) on every answer to a
client with a request rate: the policy, and where the client stands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.datastructures import MutableScopeHeaders

from service.domain.ratelimit import PERIOD_S, RateState

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import Message, Scope

POLICY = "requests"
_STATE_KEY = "haul_rate"


def headers(rate: RateState) -> dict[str, str]:
    """``RateLimit-Policy`` and ``RateLimit`` (and ``Retry-After`` for a refused request)."""
    found = {
        "RateLimit-Policy": f'"{POLICY}";q={rate.limit};w={PERIOD_S}',
        "RateLimit": f'"{POLICY}";r={rate.remaining};t={rate.reset_s}',
    }
    if rate.retry_after_s is not None:
        found["Retry-After"] = str(rate.retry_after_s)
    return found


def remember(request: Request[Any, Any, Any], rate: RateState | None) -> None:
    """Keep this request's rate state for :func:`add_headers`."""
    if rate is not None:
        request.scope.setdefault("state", {})[_STATE_KEY] = rate


def add_headers(message: Message, scope: Scope) -> None:
    """Before the answer's headers go out: add the rate state kept for this request."""
    rate = scope.get("state", {}).get(_STATE_KEY)
    if message["type"] == "http.response.start" and isinstance(rate, RateState):
        sent = MutableScopeHeaders.from_message(message)
        for name, value in headers(rate).items():
            sent.setdefault(name, value)
