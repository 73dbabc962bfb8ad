"""Engine and session factory; nothing connects until a session is used."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from service.errors import Conflict, ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass
class Database:
    """One engine and its session factory, built by :func:`connect`."""

    engine: sa.Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error.

        A database that cannot be reached is a :class:`ServiceUnavailable`, so the
        API answers 503 and a worker retries, instead of either seeing a driver error.
        A transaction PostgreSQL rolled back for a concurrent one (a deadlock, a
        serialization failure) is a :class:`Conflict`: the caller may try again now.
        """
        try:
            with self.sessions() as session, session.begin():
                yield session
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            if _lost_to_concurrent_work(exc):
                raise Conflict(
                    "a concurrent change to the same rows went first; try again"
                ) from exc
            if not _is_disconnect(exc):
                raise
            raise ServiceUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc

    def ping(self) -> None:
        """Raise :class:`ServiceUnavailable` unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def wait_out_outage(work: Callable[[], T], *, patience: float) -> T:
    """Run ``work``; while the database is unreachable, try again with backoff for up to
    ``patience`` seconds, then let :class:`ServiceUnavailable` through.

    Only for work that is safe to repeat (a guarded claim): a restart of PostgreSQL
    should cost a few seconds, not a retry of every message in flight.
    """
    deadline = time.monotonic() + patience
    pause = 0.2
    while True:
        try:
            return work()
        except ServiceUnavailable:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database unavailable; waiting", retry_in_s=pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _lost_to_concurrent_work(exc: sa.exc.DBAPIError) -> bool:
    """PostgreSQL's class 40, transaction rollback: deadlock detected, serialization failure."""
    return str(getattr(exc.orig, "sqlstate", None) or "").startswith("40")


def _is_disconnect(exc: sa.exc.DBAPIError) -> bool:
    """Connection trouble (refused, dropped, shutting down) rather than a bad statement."""
    return bool(exc.connection_invalidated) or isinstance(exc, sa.exc.OperationalError)


def connect(url: str, *, pool_size: int = 5) -> Database:
    """Build the engine lazily (no connection is opened here)."""
    engine = sa.create_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size * 2
    )
    return Database(
        engine=engine, sessions=sessionmaker(engine, class_=Session, expire_on_commit=False)
    )


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` when it does not exist; True if created.

    Makes the quick start one command on a server where only the cluster exists.
    """
    target = make_url(url)
    name = target.database
    if not name:
        return False
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if exists:
                return False
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        admin.dispose()
