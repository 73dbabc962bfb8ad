"""The hot paths' plain connections (``db/direct.py``): no ping before a statement, so a
connection PostgreSQL dropped is found by the statement itself; a read goes again on a
fresh connection, a write says the database is unavailable (whether it committed is
unknown), and the next request finds a working connection either way."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.direct import compiled
from service.errors import ServiceUnavailable

if TYPE_CHECKING:
    from service.runtime import Runtime

pytestmark = pytest.mark.integration

_BACKEND = compiled(sa.select(sa.func.pg_backend_pid().label("pid")))


def _pid(runtime: Runtime, *, writes: bool = False) -> int:
    row = runtime.db.direct.one(_BACKEND, {}, writes=writes)
    assert row is not None
    return int(row["pid"])


def _terminate(runtime: Runtime, pid: int) -> None:
    """End that connection's server process, as a restart of PostgreSQL would."""
    with runtime.db.session() as session:
        ended = session.execute(sa.select(sa.func.pg_terminate_backend(pid))).scalar()
    assert ended is True


def test_a_read_on_a_dropped_connection_goes_again_on_a_fresh_one(runtime: Runtime) -> None:
    # Given the connection a read used, dropped by the server
    first = _pid(runtime)
    _terminate(runtime, first)
    # When the next read comes
    second = _pid(runtime)
    # Then it is answered, on another connection
    assert second != first


def test_a_write_on_a_dropped_connection_is_unavailable_and_the_next_one_works(
    runtime: Runtime,
) -> None:
    # Given the connection a statement used, dropped by the server
    first = _pid(runtime)
    _terminate(runtime, first)
    # When a write comes, it is not sent again: the database is unavailable to it
    with pytest.raises(ServiceUnavailable):
        _pid(runtime, writes=True)
    # and the one after it gets a working connection
    assert _pid(runtime, writes=True) != first


def test_statements_and_commits_are_counted_on_the_engine(runtime: Runtime) -> None:
    counts = runtime.db.counts
    before = (counts.statements, counts.commits)
    _pid(runtime)
    _pid(runtime, writes=True)
    # A read in autocommit commits nothing worth counting; a write is its own commit
    assert (counts.statements - before[0], counts.commits - before[1]) == (2, 1)
