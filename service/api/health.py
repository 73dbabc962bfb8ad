"""``/health/live`` (the process answers) and ``/health/ready`` (database and broker reachable)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from service.api.schemas import Health
from service.errors import ServiceUnavailable

if TYPE_CHECKING:
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
            data_container=Health, description="Not ready: see checks", generate_examples=False
        )
    },
)
def ready(runtime: NamedDependency[Runtime]) -> Response[Health]:
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
    return Response(
        Health(status="ok" if healthy else "unavailable", checks=checks),
        status_code=200 if healthy else 503,
    )
