"""How the database layer reports a transaction PostgreSQL rolled back for another."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db.models import Client
from service.errors import Conflict
from service.intake.clients import create_client

if TYPE_CHECKING:
    import uuid

    from service.runtime import Runtime

pytestmark = pytest.mark.integration


def test_a_deadlock_is_a_conflict_to_retry_not_an_outage(runtime: Runtime) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts one of them."""
    first, _ = create_client(runtime, "first")
    second, _ = create_client(runtime, "second")
    both_hold_one = threading.Barrier(2)

    def lock(one: uuid.UUID, then: uuid.UUID) -> str:
        try:
            with runtime.db.session() as session:
                for n, ident in enumerate((one, then)):
                    session.execute(sa.select(Client).where(Client.id == ident).with_for_update())
                    if n == 0:
                        both_hold_one.wait(timeout=10)
        except Conflict as exc:
            return f"conflict: {exc.message}"
        return "committed"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lock, [first.id, second.id], [second.id, first.id]))

    assert outcomes == [
        "committed",
        "conflict: a concurrent change to the same rows went first; try again",
    ]
