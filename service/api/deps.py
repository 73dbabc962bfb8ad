"""Dependencies injected into handlers: the runtime and the authenticated client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from service.api.ratelimits import remember
from service.intake import rates as ratelimit
from service.intake.clients import authenticate

if TYPE_CHECKING:
    from litestar import Request

    from service.db.models import Client
    from service.live.hub import EventHub
    from service.observe.queue_depths import QueueDepths
    from service.runtime import Runtime


def provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    return cast("Runtime", request.app.state.runtime)


def provide_client(request: Request[Any, Any, Any]) -> Client:
    """The client whose key is in ``Authorization: Bearer``; 401 otherwise, and 429 past
    its request rate (every authenticated request counts)."""
    runtime = provide_runtime(request)
    client = authenticate(runtime, request.headers.get("authorization"))
    remember(request, ratelimit.spend(runtime, client))
    return client


def provide_hub(request: Request[Any, Any, Any]) -> EventHub:
    return cast("EventHub", request.app.state.hub)


def provide_queues(request: Request[Any, Any, Any]) -> QueueDepths:
    return cast("QueueDepths", request.app.state.queues)
