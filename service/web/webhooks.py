"""The webhooks page, for every key: the client's default endpoint and its recent deliveries.

Setting, clearing and redelivering call the same use cases as ``PUT``/``DELETE
/v1/webhook`` and ``POST /v1/jobs/{id}/redeliver`` (``webhooks.endpoints``).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from service.db.models import Client
from service.web.auth import back, page, runtime_of
from service.web.signin import FORM
from service.webhooks import endpoints

RECENT = 20


class WebhookPages(Controller):
    path = "/webhooks"
    include_in_schema = False

    @get("/", sync_to_thread=True)
    def webhooks(
        self, request: Request[Any, Any, Any], viewer: NamedDependency[Client]
    ) -> Template:
        rt = runtime_of(request)
        return page(
            request,
            "webhooks.html",
            viewer=viewer,
            endpoint=endpoints.default_endpoint(rt, viewer),
            deliveries=endpoints.recent_deliveries(rt, viewer, RECENT),
        )

    @post("/endpoint", sync_to_thread=True)
    def set_endpoint(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Client],
        data: Annotated[dict[str, str], FORM],
    ) -> Redirect:
        """Set or replace the endpoint; an empty one (the Remove button) clears it."""
        url = data.get("url", "").strip()
        endpoints.set_default_endpoint(runtime_of(request), viewer, url or None)
        if not url:
            return back(request, "Endpoint removed: only jobs with their own callback report.")
        return back(request, "Endpoint saved: jobs without a callback URL report there.")
