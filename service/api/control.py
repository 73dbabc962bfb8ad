"""Queue control for admins: pause and resume queues and clients, limits per queue and site."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from service.api.problems import documented
from service.api.schemas import (
    ClientStateOut,
    QueueLimitIn,
    QueueList,
    QueueOut,
)
from service.api.site_schemas import SiteLimitIn, SiteList, SiteOut
from service.fleet import admin

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime


class ControlController(Controller):
    path = "/v1"
    tags = ["control"]

    @get("/queues", sync_to_thread=True, responses=documented(403))
    def queues(
        self, runtime: NamedDependency[Runtime], client: NamedDependency[Client]
    ) -> QueueList:
        """Every queue: paused or not, its limit, waiting work by state and hold, running count."""
        return QueueList(items=[QueueOut.of(v) for v in admin.queues(runtime, client)])

    @get("/queues/{name:str}", sync_to_thread=True, responses=documented(403, 404))
    def queue(
        self,
        name: FromPath[str],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> QueueOut:
        return QueueOut.of(admin.queue(runtime, client, name))

    @post(
        "/queues/{name:str}/pause",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        responses=documented(403, 404),
    )
    def pause(
        self,
        name: FromPath[str],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> QueueOut:
        """Nothing new starts; running work finishes; submissions wait as ``queued``."""
        return QueueOut.of(admin.pause(runtime, client, name))

    @post(
        "/queues/{name:str}/resume",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        responses=documented(403, 404),
    )
    def resume(
        self,
        name: FromPath[str],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> QueueOut:
        """Waiting work starts again, best priority first."""
        return QueueOut.of(admin.resume(runtime, client, name))

    @patch("/queues/{name:str}", sync_to_thread=True, responses=documented(400, 403, 404, 422))
    def limit(
        self,
        name: FromPath[str],
        data: JSONBody[QueueLimitIn],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> QueueOut:
        """Set the queue's fleet-wide ``max_running`` (null removes it); takes effect at once."""
        return QueueOut.of(admin.set_max_running(runtime, client, name, data.max_running))

    @get("/sites", sync_to_thread=True, responses=documented(403))
    def sites(self, runtime: NamedDependency[Runtime], client: NamedDependency[Client]) -> SiteList:
        """Every site family with settings, a pacing clock or a breaker not closed: its limit,
        pacing, running count, and each breaker's state, reason, counts and ``retry_at``."""
        return SiteList(items=[SiteOut.of(v) for v in admin.sites(runtime, client)])

    @get("/sites/{site:str}", sync_to_thread=True, responses=documented(403, 422))
    def site(
        self,
        site: FromPath[str],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> SiteOut:
        """One site family: its settings, pacing, running count and breakers."""
        return SiteOut.of(admin.site(runtime, client, site))

    @put("/sites/{site:str}", sync_to_thread=True, responses=documented(400, 403, 422))
    def set_site(
        self,
        site: FromPath[str],
        data: JSONBody[SiteLimitIn],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> SiteOut:
        """Set the site family's ``max_running`` (jobs running at once, fleet-wide),
        ``min_interval_s`` and ``jitter`` (pacing of attempt starts); fields left out keep
        their value, null goes back to the default."""
        return SiteOut.of(admin.set_site(runtime, client, site, data.given()))

    @post(
        "/sites/{site:str}/reset",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        responses=documented(403, 422),
    )
    def reset_site(
        self,
        site: FromPath[str],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> SiteOut:
        """Close the site's breakers now; its jobs held ``site_cooling`` start again."""
        return SiteOut.of(admin.reset_site(runtime, client, site))

    @delete("/sites/{site:str}", sync_to_thread=True, responses=documented(403, 404, 422))
    def remove_site(
        self,
        site: FromPath[str],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> None:
        """Remove the site's own limit (the default, ``HAUL_SITE_MAX_RUNNING``, applies again)."""
        admin.remove_site_limit(runtime, client, site)

    @post(
        "/clients/{client_id:uuid}/pause",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        responses=documented(403, 404),
    )
    def pause_client(
        self,
        client_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> ClientStateOut:
        """None of the client's jobs starts until resumed; its running jobs finish."""
        return ClientStateOut.of(admin.pause_client(runtime, client, client_id, paused=True))

    @post(
        "/clients/{client_id:uuid}/resume",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        responses=documented(403, 404),
    )
    def resume_client(
        self,
        client_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> ClientStateOut:
        """The client's waiting jobs start again, best priority first."""
        return ClientStateOut.of(admin.pause_client(runtime, client, client_id, paused=False))
