"""Plain psycopg connections for the statements every request or submission sends: the
key lookup and a plain submission's insert.

Why not the engine: each of these is one statement that stands alone, and through
SQLAlchemy it cost more than the work itself. The pool pinged PostgreSQL before every
checkout (``pool_pre_ping``: a round trip), a transaction added BEGIN and COMMIT (two
more), and Core's per-execute machinery and result processing ran in the API's one
busy process. Here each statement runs in autocommit (one statement is its own
transaction: atomic, and committed when it returns), prepared on the server on first
use (parsed and planned once per connection), and its row comes back as a dict.

A statement is SQLAlchemy Core compiled once to SQL text (:func:`compiled`), so the
query is still written, and reviewed, where its table's other queries are.

No ping: a connection that fails (PostgreSQL restarted, the network dropped) is
closed along with every idle one (they likely went the same way), and a statement
that is safe to repeat (a read) is tried once more on a fresh connection; a write
that fails this way is a :class:`ServiceUnavailable`, as through the engine.

Statements and commits are counted on the engine's :class:`Counts`, so what a request
costs the database reads the same whichever way it went.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.engine import make_url

from service.errors import Conflict, ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from service.db.engine import Counts

#: The dialect the engine uses, for compiling statements to its SQL text.
_DIALECT = pg_psycopg.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Statement:
    """SQL text with ``%(name)s`` parameters, and the values of those the statement
    fixed itself (a literal in a ``CASE``)."""

    sql: str
    constants: dict[str, Any]


@cache
def compiled(statement: Any, column_keys: tuple[str, ...] | None = None) -> Statement:
    """``statement`` (a Core construct) as the engine would send it; an INSERT with
    exactly the columns in ``column_keys`` as its values (other keys are ignored)."""
    keys = list(column_keys) if column_keys is not None else None
    done = statement.compile(dialect=_DIALECT, column_keys=keys)
    constants = {
        name: bind.value
        for name, bind in ((done.bind_names[b], b) for b in done.binds.values())
        if not bind.required and bind.callable is None
    }
    return Statement(str(done), constants)


def conninfo(database_url: str) -> str:
    """libpq's form of haul's SQLAlchemy URL (``postgresql+psycopg://…``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Direct:
    """A small pool of autocommit psycopg connections; nothing connects until first used.

    At most ``size`` connections are open; a caller past that waits up to ``timeout_s``
    for one, then gets :class:`ServiceUnavailable` (the API's 503).
    """

    def __init__(
        self, database_url: str, counts: Counts, *, size: int = 15, timeout_s: float = 30.0
    ) -> None:
        self._conninfo = conninfo(database_url)
        self._counts = counts
        self._size = size
        self._timeout_s = timeout_s
        self._idle: list[psycopg.Connection[dict[str, Any]]] = []
        self._open = 0
        self._free = threading.Condition()

    def one(
        self, statement: Statement, params: Mapping[str, Any], *, writes: bool = False
    ) -> dict[str, Any] | None:
        """Run one statement alone (autocommit) and return its first row, or None.

        A read (``writes=False``) that meets a dead connection is tried once more on a
        fresh one; a write is not (whether it committed is unknown), and fails as a
        :class:`ServiceUnavailable`.
        """
        return self._run(statement, params, writes=writes, fetch=True)[0]

    def changed(self, statement: Statement, params: Mapping[str, Any]) -> int:
        """Run one write alone (autocommit); how many rows it changed."""
        return self._run(statement, params, writes=True, fetch=False)[1]

    def _run(
        self, statement: Statement, params: Mapping[str, Any], *, writes: bool, fetch: bool
    ) -> tuple[dict[str, Any] | None, int]:
        values = {**statement.constants, **params} if statement.constants else params
        for attempt in (1, 2):
            with self._connection() as conn:
                try:
                    self._counts.statement()
                    cursor = conn.execute(statement.sql, values, prepare=True)
                    row = cursor.fetchone() if fetch else None
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    if conn.broken and not writes and attempt == 1:
                        continue
                    raise _translated(exc) from exc
                if writes:
                    self._counts.commit()
                return row, cursor.rowcount
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the idle connections (those in use close when they come back)."""
        with self._free:
            self._drop_idle()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._checkin(conn)

    def _checkout(self) -> psycopg.Connection[dict[str, Any]]:
        deadline = time.monotonic() + self._timeout_s
        with self._free:
            while not self._idle and self._open >= self._size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceUnavailable("no database connection free: the API is overloaded")
                self._free.wait(left)
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return psycopg.Connection.connect(self._conninfo, autocommit=True, row_factory=dict_row)
        except BaseException as exc:
            with self._free:
                self._open -= 1
                self._free.notify()
            if isinstance(exc, psycopg.Error):
                raise _translated(exc) from exc
            raise

    def _checkin(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        healthy = not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE
        with self._free:
            if healthy:
                self._idle.append(conn)
            else:
                self._open -= 1
                if conn.broken:
                    self._drop_idle()
            self._free.notify()
        if not healthy:
            conn.close()

    def _drop_idle(self) -> None:
        """Close every idle connection (the caller holds ``_free``)."""
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for conn in idle:
            conn.close()


def _translated(exc: psycopg.Error) -> Exception:
    """As the engine's sessions say it: :class:`Conflict` when a concurrent transaction
    went first (PostgreSQL's class 40), else :class:`ServiceUnavailable`."""
    if str(exc.sqlstate or "").startswith("40"):
        return Conflict("a concurrent change to the same rows went first; try again")
    return ServiceUnavailable(f"database unavailable: {type(exc).__name__}")
