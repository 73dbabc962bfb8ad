"""Engine and session factory; nothing connects until a session is used.

The engine counts the SQL statements it sends and the transactions it commits
(:class:`Counts`): what a request or a job costs the database, read by the API's
``/metrics`` and by the bench.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from service.db.direct import Direct
from service.errors import Conflict, ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass
class Counts:
    """SQL statements sent and transactions committed by one engine since it was built.

    Only ever growing (Prometheus counters); a caller measures a span by the difference.
    """

    statements: int = 0
    commits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def statement(self, *_: Any) -> None:
        """Called by SQLAlchemy before each statement goes to the driver."""
        with self._lock:
            self.statements += 1

    def commit(self, *_: Any) -> None:
        """Called by SQLAlchemy when a transaction commits."""
        with self._lock:
            self.commits += 1


@dataclass
class Database:
    """One engine and its session factory, built by :func:`connect`; and the plain
    connections of the hot paths' single statements (:mod:`service.db.direct`)."""

    engine: sa.Engine
    sessions: sessionmaker[Session]
    direct: Direct
    counts: Counts = field(default_factory=Counts)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error.

        A database that cannot be reached is a :class:`ServiceUnavailable`, so the
        API answers 503 and a worker retries, instead of either seeing a driver error.
        A transaction PostgreSQL rolled back for a concurrent one (a deadlock, a
        serialization failure) is a :class:`Conflict`: the caller may try again now.
        """
        with _translated(), self.sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        """Raise :class:`ServiceUnavailable` unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from exc

    def dispose(self) -> None:
        self.direct.close()
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


@contextmanager
def _translated() -> Iterator[None]:
    """Driver errors as the callers above understand them: :class:`Conflict` when a
    concurrent transaction went first, :class:`ServiceUnavailable` when unreachable."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if _lost_to_concurrent_work(exc):
            raise Conflict("a concurrent change to the same rows went first; try again") from exc
        if not _is_disconnect(exc):
            raise
        raise ServiceUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc


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
    counts = Counts()
    sa.event.listen(engine, "before_cursor_execute", counts.statement)
    sa.event.listen(engine, "commit", counts.commit)
    return Database(
        engine=engine,
        sessions=sessionmaker(engine, class_=Session, expire_on_commit=False),
        direct=Direct(url, counts, size=pool_size * 2),
        counts=counts,
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
