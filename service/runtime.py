"""The connections one process works with, built once by the API app or the worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service import dispatch
from service.db.engine import Database, connect
from service.dispatch import Queue

if TYPE_CHECKING:
    import uuid

    import dramatiq

    from service.domain.states import Step
    from service.settings import Settings


class Runtime:
    """Settings, database and broker: everything a use case needs from outside.

    A plain class rather than a dataclass: Litestar injects it into handlers
    and must treat it as an opaque object, not a structure to validate.
    """

    def __init__(self, settings: Settings, db: Database, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
        #: New jobs' confirmed publishes, written to their rows in batches.
        self.marks = dispatch.PublishMarks(db)

    def publish(self, step: Step, job_id: uuid.UUID, *, priority: int = 0) -> None:
        """Ring the doorbell for ``step(job_id)``; raises when RabbitMQ does not confirm."""
        dispatch.publish(self.broker, self.settings, Queue(step), job_id, priority=priority)

    def publish_callback(self, delivery_id: uuid.UUID) -> None:
        """Ring the doorbell for ``deliver_callback(delivery_id)``; raises when not confirmed."""
        dispatch.publish(self.broker, self.settings, Queue.CALLBACKS, delivery_id)


def build_runtime(settings: Settings, broker: dramatiq.Broker | None = None) -> Runtime:
    """Build lazily: neither the engine nor the broker connects until first used."""
    return Runtime(
        settings=settings,
        db=connect(settings.database_url),
        broker=broker if broker is not None else dispatch.build_broker(settings),
    )
