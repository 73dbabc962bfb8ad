"""The worker entry point: ``dramatiq actors`` and ``periodiq actors`` load this package.

It configures logging and the broker with haul's middleware, then imports the
actor modules so they register on that broker. Nothing connects here: the
broker and the database engine connect on first use.
"""

from __future__ import annotations

from functools import lru_cache

import dramatiq
from periodiq import PeriodiqMiddleware

from actors.metrics import WorkerMetrics
from actors.middleware import HostReport, JobRows, LogContext, RequireMediaTools, StopTaking
from service.dispatch import build_broker
from service.logging import configure_logging
from service.runtime import Runtime, build_runtime
from service.settings import get_settings

settings = get_settings()
configure_logging(settings)


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """This process's runtime, built on first use (after the worker forked)."""
    return build_runtime(settings, broker=broker)


broker = build_broker(settings)
broker.add_middleware(RequireMediaTools())
broker.add_middleware(StopTaking())
broker.add_middleware(LogContext())
broker.add_middleware(JobRows(runtime))
broker.add_middleware(HostReport(runtime))
if settings.worker_metrics_port:
    broker.add_middleware(WorkerMetrics(settings, runtime))
# Periodic messages that waited more than 30 s are dropped; the sweeps are state-based.
broker.add_middleware(PeriodiqMiddleware(skip_delay=30))
dramatiq.set_broker(broker)

from actors import (  # noqa: E402  (actors register on the broker above)
    callbacks,
    download,
    probe,
    subscriptions,
    sweeps,
)

__all__ = ["broker", "callbacks", "download", "probe", "runtime", "subscriptions", "sweeps"]
