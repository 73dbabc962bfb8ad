"""Time haul's own query functions on a database, and EXPLAIN (ANALYZE) what they send.

The statements are caught as haul's code sends them (no SQL is rewritten here)
and explained just before they run, so the plans are those of the real queries.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from service.db.engine import Database

_SCAN = re.compile(
    r"(Index Only Scan|Index Scan|Bitmap Index Scan|Bitmap Heap Scan|Seq Scan)"
    r"(?: Backward)?(?: using (\S+))? on (\S+)"
)
_TIME = re.compile(r"Execution Time: ([\d.]+) ms")
_TABLES = ("jobs", "artifacts", "job_attempts", "clients")


@dataclass(frozen=True)
class Plan:
    sql: str
    text: str

    @property
    def execution_ms(self) -> float:
        found = _TIME.search(self.text)
        return float(found[1]) if found else float("nan")

    @property
    def scans(self) -> list[str]:
        """``Index Scan ix_jobs_… on jobs`` and the like, in plan order."""
        shown = []
        for kind, index, table in _SCAN.findall(self.text):
            if kind == "Bitmap Heap Scan":
                continue
            shown.append(f"{kind} {index} on {table}" if index else f"{kind} on {table}")
        return shown

    @property
    def seq_scans(self) -> list[str]:
        """Sequential scans of haul's tables (the thing that must not happen at scale)."""
        return [s for s in self.scans if s.startswith("Seq Scan") and s.endswith(_TABLES)]


@contextmanager
def explaining(db: Database) -> Iterator[list[Plan]]:
    """Plans of every statement haul's code sends to its tables inside the block.

    Each statement is first run under ``EXPLAIN (ANALYZE, BUFFERS)`` on the same
    connection, in the same transaction, inside a savepoint that is then rolled
    back: the plan sees exactly the state the real statement then meets.
    """
    plans: list[Plan] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        executemany = bool(rest[-1]) if rest else False
        if executemany or not any(f" {t}" in statement for t in _TABLES):
            return
        with cursor.connection.cursor() as c:
            c.execute("SAVEPOINT bench_explain")
            c.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            text = "\n".join(str(row[0]) for row in c.fetchall())
            c.execute("ROLLBACK TO SAVEPOINT bench_explain")
        plans.append(Plan(" ".join(statement.split()), text))

    sa.event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield plans
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)


def timed(work: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    """Milliseconds of ``work()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    return times
