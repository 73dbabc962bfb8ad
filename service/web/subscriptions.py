"""The subscriptions pages, for every key: follow a feed, see what its checks found.

Create, pause/resume, check now, delete and the entries list call the same use cases as
``/v1/subscriptions`` (``subscriptions.manage``); their errors are the API's.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from service.db.models import Client
from service.domain.options import Preset
from service.errors import InvalidInput
from service.subscriptions import manage
from service.subscriptions.filters import Backfill
from service.web.auth import back, page, runtime_of
from service.web.signin import FORM

PAGE_SIZE = 50
ENTRIES = 50
_CURSOR = QueryParameter(max_length=512)


def _whole(text: str | None, name: str, least: int) -> int | None:
    """A whole number typed into a form, at least ``least``; None when left empty."""
    if not (text or "").strip():
        return None
    try:
        value = int(text or "")
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a whole number") from exc
    if value < least:
        raise InvalidInput(f"{name} must be at least {least}")
    return value


def _backfill(text: str | None) -> Backfill:
    """ "none", "all", or how many of the newest existing entries to download."""
    raw = (text or "none").strip()
    if raw in ("none", "all"):
        return raw  # type: ignore[return-value]
    return _whole(raw, "backfill", 1) or "none"


class SubscriptionPages(Controller):
    path = "/subscriptions"
    include_in_schema = False

    @get("/", sync_to_thread=True)
    def list_page(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Client],
        cursor: Annotated[str | None, _CURSOR] = None,
    ) -> Template:
        rt = runtime_of(request)
        found = manage.list_subscriptions(rt, viewer, cursor=cursor, limit=PAGE_SIZE)
        return page(
            request,
            "subscriptions.html",
            viewer=viewer,
            page=found,
            presets=[p.value for p in Preset],
            least_minutes=max(1, -(-rt.settings.subscription_min_interval_s // 60)),
            first_page=cursor is None,
        )

    @post("/", sync_to_thread=True)
    def create(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Client],
        data: Annotated[dict[str, str], FORM],
    ) -> Redirect:
        url = data.get("url", "").strip()
        if not url:
            raise InvalidInput("Paste the address of a feed, channel or playlist to follow.")
        minutes = _whole(data.get("interval_minutes"), "interval", 1) or 60
        view = manage.create(
            runtime_of(request),
            viewer,
            url=url,
            preset=Preset(data["preset"]) if data.get("preset") else None,
            interval_s=minutes * 60,
            backfill=_backfill(data.get("backfill")),
            keep_last=_whole(data.get("keep_last"), "keep_last", 1),
        )
        note = "Subscribed: the first check runs now."
        return back(request, note, f"/subscriptions/{view.sub.id}")

    @get("/{sub_id:uuid}", sync_to_thread=True)
    def detail(
        self,
        request: Request[Any, Any, Any],
        sub_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
        cursor: Annotated[str | None, _CURSOR] = None,
    ) -> Template:
        rt = runtime_of(request)
        view = manage.get(rt, viewer, sub_id)
        found, after = manage.entries(rt, viewer, sub_id, cursor=cursor, limit=ENTRIES)
        return page(
            request,
            "subscription.html",
            viewer=viewer,
            view=view,
            entries=found,
            next_cursor=after,
            first_page=cursor is None,
        )

    @post("/{sub_id:uuid}/pause", sync_to_thread=True)
    def pause(
        self,
        request: Request[Any, Any, Any],
        sub_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        manage.change(runtime_of(request), viewer, sub_id, values={"paused": True})
        return back(request, "Paused: no check runs until you resume it.")

    @post("/{sub_id:uuid}/resume", sync_to_thread=True)
    def resume(
        self,
        request: Request[Any, Any, Any],
        sub_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        manage.change(runtime_of(request), viewer, sub_id, values={"paused": False})
        return back(request, "Resumed.")

    @post("/{sub_id:uuid}/check", sync_to_thread=True)
    def check(
        self,
        request: Request[Any, Any, Any],
        sub_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        manage.check_now(runtime_of(request), viewer, sub_id)
        return back(request, "A check runs now; reload in a moment to see what it found.")

    @post("/{sub_id:uuid}/delete", sync_to_thread=True)
    def delete(
        self,
        request: Request[Any, Any, Any],
        sub_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        """Stop following; the jobs it made and their files stay."""
        manage.delete(runtime_of(request), viewer, sub_id, delete_files=False)
        return back(request, "Unsubscribed: its jobs and their files stay.", "/subscriptions")
