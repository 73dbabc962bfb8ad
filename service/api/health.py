"""``/health/live`` (the process answers) and ``/health/ready`` (database and broker reachable,
plus how many messages wait in each queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from service.api.schemas import Health, QueueDepth, Readiness
from service.errors import ServiceUnavailable

if TYPE_CHECKING:
    from service.observe.queue_depths import QueueDepths
    from service.runtime import Runtime


@get("/health/live", tags=["health"])
async def live() -> Health:
    return Health(status="ok", checks={})


@get(
    "/health/ready",
    tags=["health"],
    sync_to_thread=True,
    responses={
        503: ResponseSpec(
            data_container=Readiness, description="Not ready: see checks", generate_examples=False
        )
    },
)
def ready(
    runtime: NamedDependency[Runtime], queues: NamedDependency[QueueDepths]
) -> Response[Readiness]:
    checks: dict[str, str] = {}
    try:
        runtime.db.ping()
        checks["database"] = "ok"
    except ServiceUnavailable as exc:
        checks["database"] = exc.message
    try:
        channel = runtime.broker.channel  # type: ignore[attr-defined]  # RabbitmqBroker: opens this thread's connection
        checks["broker"] = "ok" if channel.is_open else "broker channel closed"
    except Exception as exc:
        checks["broker"] = f"broker unreachable: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if healthy else "unavailable", checks=checks)
    if checks["broker"] != "ok":
        body.queues_error = "not read: the broker is unreachable"
    else:
        try:
            body.queues = {
                name: None
                if depth is None
                else QueueDepth(ready=depth.ready, consumers=depth.consumers)
                for name, depth in queues.read().items()
            }
        except ServiceUnavailable as exc:
            body.queues_error = exc.message
    return Response(body, status_code=200 if healthy else 503)
