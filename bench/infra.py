"""The bench's own databases and queues on the shared PostgreSQL and RabbitMQ.

Every name carries a random run id (``haul_bench_<run>_…``, ``haulbench<run>…``) and
is dropped afterwards, so a bench never touches a developer's or a test run's data.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pika
import psycopg
from sqlalchemy.engine import make_url

from service.db.migrate import upgrade
from service.dispatch import Queue

ADMIN_DATABASE_URL = os.environ.get(
    "HAUL_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("HAUL_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MIGRATIONS = Path(__file__).resolve().parents[1] / "infra" / "migrations"
#: Queue names per step: haul's (probe, download, sweeps, callbacks) and the bare baselines'.
STEPS = (*Queue, "bare")


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def database_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the admin URL's server."""
    return make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def conninfo(name: str) -> str:
    """The psycopg connection string of database ``name``."""
    url = make_url(ADMIN_DATABASE_URL).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    with psycopg.connect(conninfo("postgres"), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def wait_for_services(what: str, attempts: int = 10) -> None:
    """Wait until PostgreSQL and RabbitMQ answer (another run may be restarting them)."""
    for n in range(attempts):
        try:
            _admin("SELECT 1")
            pika.BlockingConnection(pika.URLParameters(BROKER_URL)).close()
            return
        except (psycopg.OperationalError, pika.exceptions.AMQPError) as exc:
            if n == attempts - 1:
                raise SystemExit(f"{what}: services unreachable: {exc!r}") from exc
            time.sleep(2)


_templates: dict[str, str] = {}


def create_database(name: str, run_id: str) -> str:
    """A migrated database of the bench's own, copied from the run's template; its URL.

    The template is migrated once per run (the first time) and dropped by
    :func:`drop_template`.
    """
    template = _templates.get(run_id)
    if template is None:
        template = f"haul_bench_{run_id}_template"
        upgrade(database_url(template), MIGRATIONS)
        _templates[run_id] = template
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return database_url(name)


def drop_template(run_id: str) -> None:
    template = _templates.pop(run_id, None)
    if template is not None:
        drop_database(template)


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_queues(prefix: str) -> None:
    """Delete every queue a bench may have declared under ``prefix``; missing ones are fine."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    except pika.exceptions.AMQPError:
        return
    try:
        for step in STEPS:
            for suffix in ("", ".DQ", ".XQ"):
                channel = connection.channel()
                try:
                    channel.queue_delete(f"{prefix}.{step}{suffix}")
                    channel.close()
                except pika.exceptions.AMQPError:
                    pass
    finally:
        connection.close()


class QueueWatch:
    """Reads how many messages are ready in a queue, over one connection kept open."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        self.channel = self.connection.channel()

    def depth(self) -> int:
        """Messages ready in the queue (not those a consumer holds unacked)."""
        declared = self.channel.queue_declare(self.queue, passive=True)
        return int(declared.method.message_count)

    def close(self) -> None:
        self.connection.close()
