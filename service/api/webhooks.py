"""Webhook routes: a job's deliveries, sending one again, and the caller's default endpoint."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from service.api.problems import documented
from service.api.schemas import DeliveryList, DeliveryOut, EndpointIn, EndpointOut
from service.webhooks import endpoints

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime


class WebhookController(Controller):
    path = "/v1"
    tags = ["webhooks"]

    @get("/jobs/{job_id:uuid}/deliveries", sync_to_thread=True, responses=documented(404))
    def deliveries(
        self,
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> DeliveryList:
        """The job's webhook deliveries, newest first, each with every HTTP attempt."""
        found = endpoints.deliveries(runtime, client, job_id)
        return DeliveryList(items=[DeliveryOut.of(v) for v in found])

    @post(
        "/jobs/{job_id:uuid}/redeliver",
        status_code=HTTP_202_ACCEPTED,
        sync_to_thread=True,
        responses=documented(404, 409),
    )
    def redeliver(
        self,
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> Response[DeliveryOut]:
        """Send an ended job's event again (same ``webhook-id``), with a fresh attempt budget."""
        view = endpoints.redeliver(runtime, client, job_id)
        return Response(
            DeliveryOut.of(view),
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/jobs/{job_id}/deliveries"},
        )

    @get("/webhook", sync_to_thread=True, responses=documented())
    def endpoint(
        self, runtime: NamedDependency[Runtime], client: NamedDependency[Client]
    ) -> EndpointOut:
        """Your default endpoint: where jobs without a ``callback_url`` report."""
        return EndpointOut.of(endpoints.default_endpoint(runtime, client))

    @put("/webhook", sync_to_thread=True, responses=documented(400, 413, 422))
    def set_endpoint(
        self,
        data: JSONBody[EndpointIn],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> EndpointOut:
        """Set or replace your default endpoint (this re-enables one disabled by a 410)."""
        return EndpointOut.of(endpoints.set_default_endpoint(runtime, client, data.url))

    @delete("/webhook", status_code=200, sync_to_thread=True, responses=documented())
    def clear_endpoint(
        self, runtime: NamedDependency[Runtime], client: NamedDependency[Client]
    ) -> EndpointOut:
        """Remove your default endpoint; jobs with their own ``callback_url`` still report."""
        return EndpointOut.of(endpoints.set_default_endpoint(runtime, client, None))
