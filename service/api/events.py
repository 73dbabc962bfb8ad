"""``GET /v1/jobs/{id}/events`` and ``GET /v1/events``: Server-Sent Events.

Past ``HAUL_SSE_MAX_STREAMS_PER_CLIENT`` open streams the next is a 429 problem with
``Retry-After``, answered before the stream starts.

Thin: parse ``Last-Event-ID``, check the job is the caller's, then turn the live
view of :mod:`service.live.views` into SSE messages (``state`` with an id, ``progress``
without, and keep-alive comments).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from service.api.problems import documented
from service.errors import BadRequest
from service.intake.clients import is_admin
from service.live import views

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from service.db.models import Client
    from service.live.hub import EventHub
    from service.runtime import Runtime


def _last_event_id(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest("Last-Event-ID must be an event id this API sent") from exc
    if value < 0:
        raise BadRequest("Last-Event-ID must be an event id this API sent")
    return value


async def _messages(
    events: AsyncIterator[views.LiveEvent],
) -> AsyncIterator[ServerSentEventMessage]:
    async for event in events:
        if event.kind is None:
            # A comment only: Litestar adds an empty ``data:`` line by default, which
            # EventSource would deliver to ``onmessage`` as an empty message.
            yield ServerSentEventMessage(comment="keep-alive", data=None)
        else:
            yield ServerSentEventMessage(
                data=json.dumps(event.data, separators=(",", ":")), event=event.kind, id=event.id
            )


class EventController(Controller):
    tags = ["events"]

    @get(
        "/v1/jobs/{job_id:uuid}/events",
        media_type="text/event-stream",
        responses=documented(400, 404),
        opt={"session_cookie": True},
    )
    async def job_events(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
        hub: NamedDependency[EventHub],
    ) -> ServerSentEvent:
        """One job's state changes and progress, live; the stream ends after its final state."""
        last = _last_event_id(request)
        await _in_thread(views.check_job, runtime, client, job_id)
        events = views.open_stream(runtime, hub, client, job_id=job_id, last_event_id=last)
        return ServerSentEvent(_messages(events))

    @get(
        "/v1/events",
        media_type="text/event-stream",
        responses=documented(400),
        opt={"session_cookie": True},
    )
    async def all_events(
        self,
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
        hub: NamedDependency[EventHub],
        after: Annotated[int | None, QueryParameter(ge=0)] = None,
    ) -> ServerSentEvent:
        """State changes and progress of all your jobs, live, until you disconnect; an admin
        also gets ``site`` events: every move of a site breaker (state, failures,
        ``retry_at``, reason). ``after``: replay the state changes since this event id first,
        as ``Last-Event-ID`` does (which wins when both are sent): a page passes the id it
        was rendered at."""
        last = _last_event_id(request)
        events = views.open_stream(
            runtime,
            hub,
            client,
            last_event_id=after if last is None else last,
            sites=is_admin(client),
        )
        return ServerSentEvent(_messages(events))


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await to_thread.run_sync(fn, *args)
