"""The dashboard as one Litestar router, plus its static files and template config.

``api.app`` mounts what :func:`routes` returns and sets :func:`template_config`; nothing
else of the dashboard is known to the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Router
from litestar.di import Provide

from service.web.auth import EXCEPTION_HANDLERS, csrf_guard, provide_viewer
from service.web.jobs import JobPages
from service.web.operator import OperatorPages
from service.web.signin import SignInController
from service.web.subscriptions import SubscriptionPages
from service.web.templating import static_router, template_config
from service.web.webhooks import WebhookPages

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

__all__ = ["routes", "template_config"]


def routes() -> list[ControllerRouterHandler]:
    pages = Router(
        "/",
        route_handlers=[
            SignInController,
            JobPages,
            SubscriptionPages,
            WebhookPages,
            OperatorPages,
        ],
        dependencies={"viewer": Provide(provide_viewer, sync_to_thread=True)},
        guards=[csrf_guard],
        exception_handlers=EXCEPTION_HANDLERS,
        include_in_schema=False,
    )
    return [pages, static_router()]
