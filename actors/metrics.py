"""Dramatiq middleware that turns on a worker host's Prometheus endpoint.

Added only when ``HAUL_WORKER_METRICS_PORT`` is set. Every worker process records
its own metrics (service/observe/worker_metrics.py) into the directory of its ``dramatiq``
run; one fork process of the run serves their sum on that port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dramatiq

from service.observe import worker_metrics

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.runtime import Runtime
    from service.settings import Settings


class WorkerMetrics(dramatiq.Middleware):
    """Worker-side metrics: set up at boot, busy messages counted, served by one fork."""

    def __init__(self, settings: Settings, runtime: Callable[[], Runtime]) -> None:
        self.settings = settings
        self.runtime = runtime
        #: Messages counted as busy; a message another middleware skipped never was.
        self._busy: set[str] = set()

    @property
    def forks(self) -> list[Callable[[], int]]:
        """Functions Dramatiq runs in processes of their own, once per run."""
        return [worker_metrics.serve]

    def after_process_boot(self, broker: Any) -> None:
        """Called in each worker process as it boots, before any message."""
        worker_metrics.start(worker_metrics.run_directory(self.settings))

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        """Called once the worker's threads are running."""
        worker_metrics.threads_started(worker.worker_threads)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Called after the worker process stopped its threads."""
        worker_metrics.stop()

    def before_process_message(self, broker: Any, message: Any) -> None:
        """Called before a message is processed."""
        self._busy.add(message.message_id)
        worker_metrics.message_started(message.actor_name)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        """Called after a message is processed, successfully or not (or skipped)."""
        if message.message_id in self._busy:
            self._busy.discard(message.message_id)
            # Counted before the message stops being busy: an idle fleet has added its work.
            worker_metrics.database_work(self.runtime().db.counts)
            worker_metrics.message_done(message.actor_name)

    after_skip_message = after_process_message
