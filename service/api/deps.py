"""Dependencies injected into handlers: the runtime and the authenticated client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from service.clients import authenticate

if TYPE_CHECKING:
    from litestar import Request

    from service.db.models import Client
    from service.events import EventHub
    from service.queue_depths import QueueDepths
    from service.runtime import Runtime


def provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    return cast("Runtime", request.app.state.runtime)


def provide_client(request: Request[Any, Any, Any]) -> Client:
    """The client whose key is in ``Authorization: Bearer``; 401 otherwise."""
    return authenticate(provide_runtime(request), request.headers.get("authorization"))


def provide_hub(request: Request[Any, Any, Any]) -> EventHub:
    return cast("EventHub", request.app.state.hub)


def provide_queues(request: Request[Any, Any, Any]) -> QueueDepths:
    return cast("QueueDepths", request.app.state.queues)
