"""The database's copy of the state machine (migration 0008's trigger) is the code's table.

The trigger is generated from a copy of ``TRANSITIONS`` kept in its migration. The
newest migration that keeps one must equal ``service/domain/states.py``, so changing
the table without a migration that installs the new copy fails here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from service.domain.states import TRANSITIONS, Status

VERSIONS = Path(__file__).resolve().parents[3] / "infra" / "migrations" / "versions"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"haul_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _newest_copy() -> ModuleType:
    """The newest migration (by its number) that keeps a copy of the table."""
    migrations = map(_load, sorted(VERSIONS.glob("[0-9]*.py")))
    keeping = [m for m in migrations if hasattr(m, "TRANSITIONS")]
    assert keeping, "no migration installs the state machine trigger"
    return keeping[-1]


def test_the_trigger_table_is_the_state_machine() -> None:
    # Given the table the database was given by the newest migration that keeps one
    migration = _newest_copy()
    table = migration.TRANSITIONS.items()
    theirs = {Status(a): frozenset(Status(b) for b in targets) for a, targets in table}

    # Then it is the code's table, move for move
    assert theirs == TRANSITIONS


def test_the_trigger_names_every_allowed_move_and_no_other() -> None:
    # Given the trigger function generated from the migration's table
    migration = _newest_copy()
    sql = migration.guard_function(migration.TRANSITIONS)

    # Then its list of moves is the table's pairs
    named = set(re.findall(r"'(\w+)>(\w+)'", sql))
    assert named == {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert "RAISE EXCEPTION" in sql
