"""Pages for operators (admin keys; for any other key they do not exist: 404).

Queues (waiting work by state and hold, running, paused, ``max_running``) with
pause/resume and the limit editable in place; site limits; clients with their limits,
pause/resume, create (key and secret shown once) and revoke. Each action calls the
same use case as ``/v1/queues``, ``/v1/sites``, ``/v1/clients`` or ``haul clients``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Redirect, Template

from service.db.models import Client
from service.errors import InvalidInput
from service.fleet import admin as fleet
from service.intake import clients
from service.web.auth import back, page, provide_admin, runtime_of
from service.web.signin import FORM


def _limit(text: str | None, *, optional: bool) -> int | None:
    """A limit typed into a form: a whole number of at least 1, or empty for none."""
    if not (text or "").strip():
        if optional:
            return None
        raise InvalidInput("max_running: enter a whole number of at least 1")
    try:
        value = int(text or "")
    except ValueError as exc:
        raise InvalidInput("max_running must be a whole number") from exc
    if value < 1:
        raise InvalidInput("max_running must be at least 1")
    return value


class OperatorPages(Controller):
    path = "/ops"
    include_in_schema = False
    dependencies = {"operator": Provide(provide_admin, sync_to_thread=False)}

    @get("/queues", sync_to_thread=True)
    def queues(
        self, request: Request[Any, Any, Any], operator: NamedDependency[Client]
    ) -> Template:
        rt = runtime_of(request)
        broker = urlsplit(rt.settings.broker_url).hostname or "127.0.0.1"
        return page(
            request,
            "queues.html",
            viewer=operator,
            queues=fleet.queues(rt, operator),
            rabbitmq_ui=f"http://{broker}:15672/",
        )

    @get("/queues/table", sync_to_thread=True)
    def queue_table(
        self, request: Request[Any, Any, Any], operator: NamedDependency[Client]
    ) -> Template:
        rt = runtime_of(request)
        return page(request, "_queues.html", viewer=operator, queues=fleet.queues(rt, operator))

    @post("/queues/{name:str}/pause", sync_to_thread=True)
    def pause(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        operator: NamedDependency[Client],
    ) -> Redirect:
        fleet.pause(runtime_of(request), operator, name)
        return back(request, f"{name} paused: nothing new starts there.")

    @post("/queues/{name:str}/resume", sync_to_thread=True)
    def resume(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        operator: NamedDependency[Client],
    ) -> Redirect:
        fleet.resume(runtime_of(request), operator, name)
        return back(request, f"{name} resumed.")

    @post("/queues/{name:str}/limit", sync_to_thread=True)
    def limit(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        operator: NamedDependency[Client],
        data: Annotated[dict[str, str], FORM],
    ) -> Redirect:
        value = _limit(data.get("max_running"), optional=True)
        fleet.set_max_running(runtime_of(request), operator, name, value)
        return back(request, f"{name}: at most {value if value else 'any number'} running.")

    @get("/sites", sync_to_thread=True)
    def sites(self, request: Request[Any, Any, Any], operator: NamedDependency[Client]) -> Template:
        rt = runtime_of(request)
        return page(
            request,
            "sites.html",
            viewer=operator,
            sites=fleet.sites(rt, operator),
            default=rt.settings.site_max_running,
        )

    @post("/sites", sync_to_thread=True)
    def set_site(
        self,
        request: Request[Any, Any, Any],
        operator: NamedDependency[Client],
        data: Annotated[dict[str, str], FORM],
    ) -> Redirect:
        value = _limit(data.get("max_running"), optional=False)
        assert value is not None
        view = fleet.set_site_limit(runtime_of(request), operator, data.get("site", ""), value)
        return back(request, f"{view.site}: at most {view.max_running} running.")

    @post("/sites/{site:str}/remove", sync_to_thread=True)
    def remove_site(
        self,
        request: Request[Any, Any, Any],
        site: FromPath[str],
        operator: NamedDependency[Client],
    ) -> Redirect:
        fleet.remove_site_limit(runtime_of(request), operator, site)
        return back(request, f"{site} follows the default limit again.")

    @post("/sites/{site:str}/reset", sync_to_thread=True)
    def reset_site(
        self,
        request: Request[Any, Any, Any],
        site: FromPath[str],
        operator: NamedDependency[Client],
    ) -> Redirect:
        view = fleet.reset_site(runtime_of(request), operator, site)
        return back(request, f"{view.site}: breakers closed; its waiting jobs start again.")

    @get("/clients", sync_to_thread=True)
    def clients(
        self, request: Request[Any, Any, Any], operator: NamedDependency[Client]
    ) -> Template:
        return self._clients_page(request, operator)

    @staticmethod
    def _clients_page(
        request: Request[Any, Any, Any], operator: Client, **created: Any
    ) -> Template:
        rt = runtime_of(request)
        rows = [
            (c, clients.limits_of(rt.settings, c), clients.is_admin(c))
            for c in clients.all_clients(rt, operator)
        ]
        return page(request, "clients.html", viewer=operator, rows=rows, **created)

    @post("/clients", sync_to_thread=True)
    def create(
        self,
        request: Request[Any, Any, Any],
        operator: NamedDependency[Client],
        data: Annotated[dict[str, str], FORM],
    ) -> Template:
        """Create a client; its key and webhook secret are on this one response, never again."""
        name = data.get("name", "").strip()
        if not name or len(name) > 200:
            raise InvalidInput("name: 1 to 200 characters")
        fleet.require_admin(operator)
        created, key = clients.create_client(
            runtime_of(request),
            name,
            admin=bool(data.get("admin")),
            tier=data.get("tier", "").strip() or "standard",
        )
        return self._clients_page(
            request, operator, created=created, key=key, secret=created.webhook_secret
        )

    @post("/clients/{client_id:uuid}/pause", sync_to_thread=True)
    def pause_client(
        self,
        request: Request[Any, Any, Any],
        client_id: FromPath[uuid.UUID],
        operator: NamedDependency[Client],
    ) -> Redirect:
        changed = fleet.pause_client(runtime_of(request), operator, client_id, True)
        return back(request, f"{changed.name} paused: none of its jobs starts.")

    @post("/clients/{client_id:uuid}/resume", sync_to_thread=True)
    def resume_client(
        self,
        request: Request[Any, Any, Any],
        client_id: FromPath[uuid.UUID],
        operator: NamedDependency[Client],
    ) -> Redirect:
        changed = fleet.pause_client(runtime_of(request), operator, client_id, False)
        return back(request, f"{changed.name} resumed.")

    @post("/clients/{client_id:uuid}/revoke", sync_to_thread=True)
    def revoke(
        self,
        request: Request[Any, Any, Any],
        client_id: FromPath[uuid.UUID],
        operator: NamedDependency[Client],
    ) -> Redirect:
        clients.revoke(runtime_of(request), operator, client_id)
        return back(request, "Revoked: the key and its sessions no longer work.")
