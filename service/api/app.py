"""The Litestar application: ``uvicorn service.api.app:app``.

Building the app connects to nothing; the database and the broker are reached
on the first request that needs them.
"""

from __future__ import annotations

import gc

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.response import Stream

from service.api.control import ControlController
from service.api.cookies import CookieController
from service.api.deps import provide_client, provide_hub, provide_queues, provide_runtime
from service.api.events import EventController
from service.api.health import live, ready
from service.api.jobs import JobController
from service.api.problems import EXCEPTION_HANDLERS
from service.api.ratelimits import add_headers
from service.api.subscriptions import SubscriptionController
from service.api.webhooks import WebhookController
from service.api.ytdlp import YtdlpController
from service.db.models import Client
from service.dispatch import queue_names, with_connection_defaults
from service.live.hub import EventHub
from service.logging import configure_logging
from service.observe import metrics as metrics_of_rows
from service.observe.queue_depths import QueueDepths
from service.runtime import Runtime, build_runtime
from service.settings import Settings, get_settings
from service.web import router as web


def freeze_heap() -> None:
    """Move everything built at startup (the app, its routes and schemas, the imported
    modules: about 150,000 objects) out of the garbage collector's sight.

    They live as long as the process, yet each full collection walked them all: 80 to 90 ms
    with every thread stopped, a few times a minute under load, which is what the slowest
    answers waited on. Frozen, a full collection walks only what requests left behind.
    """
    gc.collect()
    gc.freeze()


class MetricsController(PrometheusController):
    """Prometheus text exposition; not part of the JSON API, so not in its OpenAPI document."""

    include_in_schema = False


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, *, freeze: bool = False
) -> Litestar:
    """The app; with ``freeze``, it freezes the heap on startup (:func:`freeze_heap`):
    for the process that serves it, not for tests that build many apps in one."""
    settings = settings or get_settings()
    runtime = runtime or build_runtime(settings)
    configure_logging(settings)

    hub = EventHub(settings.database_url)
    queues = QueueDepths(with_connection_defaults(settings.broker_url), queue_names(settings))
    metrics_of_rows.watch(runtime.db, queues, keyed=bool(settings.cookie_secrets))

    def close() -> None:
        queues.close()
        runtime.marks.close()
        runtime.db.dispose()

    metrics = PrometheusConfig(
        app_name="haul", prefix="haul_api", group_path=True, exclude=["/metrics", "/health"]
    )
    return Litestar(
        route_handlers=[
            JobController,
            EventController,
            WebhookController,
            ControlController,
            CookieController,
            SubscriptionController,
            YtdlpController,
            live,
            ready,
            MetricsController,
            *web.routes(),
        ],
        middleware=[metrics.middleware],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "client": Provide(provide_client, sync_to_thread=True),
            "hub": Provide(provide_hub, sync_to_thread=False),
            "queues": Provide(provide_queues, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_headers],
        request_max_body_size=settings.max_body_bytes,
        state=State({"runtime": runtime, "hub": hub, "queues": queues}),
        # Handlers import these for type checking only; Litestar resolves them here.
        signature_namespace={
            "Runtime": Runtime,
            "Client": Client,
            "Stream": Stream,
            "EventHub": EventHub,
            "QueueDepths": QueueDepths,
        },
        on_startup=[hub.start, freeze_heap] if freeze else [hub.start],
        on_shutdown=[hub.stop, close],
        template_config=web.template_config(),
        openapi_config=OpenAPIConfig(title="haul", version="1", path="/schema"),
        # Logging is configure_logging's (JSON off a terminal); Litestar's default config
        # would replace its handler and print structlog's events in a format of its own.
        logging_config=None,
    )


app = create_app(freeze=True)
