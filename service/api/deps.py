"""Dependencies injected into handlers: the runtime and the authenticated client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from service.api.ratelimits import remember
from service.intake import rates as ratelimit
from service.intake import sessions
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
    """The client whose key is in ``Authorization: Bearer`` (or, on a few GET routes, the
    dashboard's session cookie); 401 otherwise, and 429 past
    its request rate (every authenticated request counts)."""
    return client_of(request)


def client_of(request: Request[Any, Any, Any]) -> Client:
    """What :func:`provide_client` provides, for a sync handler to call in its own thread:
    a hot route (``POST /v1/jobs``) saves the dependency's hand-off to a thread and back."""
    runtime = provide_runtime(request)
    client = _from_cookie(request, runtime) or authenticate(
        runtime, request.headers.get("authorization")
    )
    remember(request, ratelimit.spend(runtime, client))
    return client


def _from_cookie(request: Request[Any, Any, Any], runtime: Runtime) -> Client | None:
    """The dashboard's session, on the GET routes marked ``session_cookie`` only (event
    streams and files, which ``EventSource`` and ``<video>`` fetch without headers); never
    on a write route, so a forged cross-site form cannot reach the JSON API."""
    if (
        request.method != "GET"
        or "authorization" in request.headers
        or not request.route_handler.opt.get("session_cookie")
        or sessions.SESSION_COOKIE not in request.cookies
    ):
        return None
    return sessions.client_of(runtime, request.cookies[sessions.SESSION_COOKIE])


def provide_hub(request: Request[Any, Any, Any]) -> EventHub:
    return cast("EventHub", request.app.state.hub)


def provide_queues(request: Request[Any, Any, Any]) -> QueueDepths:
    return cast("QueueDepths", request.app.state.queues)
