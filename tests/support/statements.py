"""Count the SQL statements and commits a piece of work runs on an engine (SQLAlchemy
engine events), so a test can pin what a use case costs: a count, never a timing."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class Counted:
    """What ran on the engine while the block was open."""

    statements: int = 0
    commits: int = 0
    #: The statements' SQL, first line of each, to show in a failure.
    sql: list[str] = field(default_factory=list)

    def shown(self) -> str:
        return "\n".join(f"{n:2}. {text}" for n, text in enumerate(self.sql, 1))


@contextmanager
def counting(engine: sa.Engine) -> Iterator[Counted]:
    """Count every statement sent through ``engine`` (any thread) and every commit."""
    counted = Counted()

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        counted.statements += 1
        counted.sql.append(" ".join(sql.split())[:160])

    def commit(_conn: Any) -> None:
        counted.commits += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield counted
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)
