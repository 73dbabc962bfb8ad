"""``/v1/subscriptions``: thin handlers over ``service.subscriptions.manage``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from service.api.problems import documented
from service.api.schemas import DeliveryList, DeliveryOut
from service.api.subscription_schemas import (
    ChangeSubscription,
    CreateSubscription,
    EntryOut,
    EntryPage,
    SubscriptionOut,
    SubscriptionPage,
)
from service.subscriptions import manage

if TYPE_CHECKING:
    from service.db.models import Client
    from service.runtime import Runtime

_CURSOR = QueryParameter(max_length=512)


class SubscriptionController(Controller):
    path = "/v1/subscriptions"
    tags = ["subscriptions"]

    @post(
        "/", status_code=HTTP_201_CREATED, sync_to_thread=True, responses=documented(400, 403, 422)
    )
    def create(
        self,
        data: JSONBody[CreateSubscription],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> Response[SubscriptionOut]:
        """Follow a feed, channel or playlist; its first check is rung at once."""
        view = manage.create(
            runtime,
            client,
            url=data.url,
            preset=data.preset,
            options=data.options,
            interval_s=data.interval_s,
            filters=data.filters,
            backfill=data.backfill,
            keep_last=data.keep_last,
            callback_url=data.callback_url,
            metadata=data.metadata,
        )
        return Response(
            SubscriptionOut.of(view),
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/v1/subscriptions/{view.sub.id}"},
        )

    @get("/", sync_to_thread=True, responses=documented(400, 403, 422))
    def list_subscriptions(
        self,
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
        cursor: Annotated[str | None, _CURSOR] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        all_clients: Annotated[bool, QueryParameter(name="all")] = False,
    ) -> SubscriptionPage:
        """Your subscriptions, newest first; ``?all=true`` (admin keys) lists every client's."""
        page = manage.list_subscriptions(
            runtime, client, every_client=all_clients, cursor=cursor, limit=limit
        )
        return SubscriptionPage(
            items=[SubscriptionOut.of(v) for v in page.items], next_cursor=page.next_cursor
        )

    @get("/{sub_id:uuid}", sync_to_thread=True, responses=documented(400, 404, 422))
    def read(
        self,
        sub_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> SubscriptionOut:
        return SubscriptionOut.of(manage.get(runtime, client, sub_id))

    @patch("/{sub_id:uuid}", sync_to_thread=True, responses=documented(400, 404, 422))
    def change(
        self,
        sub_id: FromPath[uuid.UUID],
        data: JSONBody[ChangeSubscription],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> SubscriptionOut:
        """Change what is given; preset and options apply to entries found from now on."""
        given = data.model_dump(exclude_unset=True, exclude={"preset", "options"})
        if "filters" in given:
            given["filters"] = data.filters
        view = manage.change(
            runtime, client, sub_id, values=given, preset=data.preset, options=data.options
        )
        return SubscriptionOut.of(view)

    @delete(
        "/{sub_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        responses=documented(400, 404, 422),
    )
    def remove(
        self,
        sub_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
        delete_files: Annotated[bool, QueryParameter()] = False,
    ) -> None:
        """Stop following; ``?delete_files=true`` also removes the files of its jobs."""
        manage.delete(runtime, client, sub_id, delete_files=delete_files)

    @post(
        "/{sub_id:uuid}/check",
        status_code=HTTP_202_ACCEPTED,
        sync_to_thread=True,
        responses=documented(400, 404, 422),
    )
    def check(
        self,
        sub_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> Response[SubscriptionOut]:
        """Check now (also a paused one): a check job is made, or the one still queued,
        running or retrying stands (``check``, and ``Location``); the next scheduled
        check moves one interval on."""
        job = manage.check_now(runtime, client, sub_id)
        return Response(
            SubscriptionOut.of(manage.get(runtime, client, sub_id)),
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    @get("/{sub_id:uuid}/entries", sync_to_thread=True, responses=documented(400, 404, 422))
    def entries(
        self,
        sub_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
        cursor: Annotated[str | None, _CURSOR] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
    ) -> EntryPage:
        """Every entry seen, newest first: its job, or why none was made."""
        found, after = manage.entries(runtime, client, sub_id, cursor=cursor, limit=limit)
        return EntryPage(items=[EntryOut.of(e, s) for e, s in found], next_cursor=after)

    @get("/{sub_id:uuid}/deliveries", sync_to_thread=True, responses=documented(404))
    def deliveries(
        self,
        sub_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> DeliveryList:
        """The latest webhooks about this subscription (entries found, failed checks, its
        pause), newest first, each with every HTTP attempt."""
        found = manage.deliveries(runtime, client, sub_id)
        return DeliveryList(items=[DeliveryOut.of(v) for v in found])
