"""One way to end a job (docs/architecture.md, "Job lifecycle"), read from the source.

A job reaches ``succeeded``, ``failed`` or ``cancelled`` only through
``service/work/ending.py``: it alone calls the functions of ``service.db`` that end a
job, and those all go through the one statement ``transitions.end``. Every write of
``jobs.status`` in ``service/db`` is listed below with the state it may write, so a
new writer of a terminal state, or a caller that ends a job by hand, fails here.
"""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest

from service.db import transitions
from service.domain.states import TERMINAL, Status

ROOT = Path(__file__).resolve().parents[3]

#: The one statement that ends jobs.
END = "service.db.transitions.end"

#: Every function of service/db that ends a job: ``end`` and those built on it.
ENDERS = {
    END,
    "service.db.transitions.end_job",
    "service.db.transitions.fail_exhausted",
    "service.db.transitions.dead_letter",
    "service.db.trees.cancel_tree",
    "service.db.trees.finish_parent_if_done",
}

#: The only module outside service/db that may call them.
THE_ENDING = "service/work/ending.py"

#: Every write of ``jobs.status`` in service/db, and what it writes. ``_changes`` writes
#: the target of ``move`` (which refuses an end) or of ``end``.
STATUS_WRITERS = {
    "service.db.transitions._changes": "to.value",
    "service.db.transitions._claiming": "Status.RUNNING.value",
    "service.db.trees.reopen_parents": "Status.RUNNING.value",
    "service.db.replay._queued_afresh": "Status.QUEUED.value",
}

#: Tables other than ``jobs`` that have a ``status`` column of their own.
OTHER_STATUS_TABLES = {"service/db/deliveries.py"}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _aliases(tree: ast.Module, module: str) -> dict[str, str]:
    """Local name → the dotted name it stands for, from the module's imports and defs."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names[node.name] = f"{module}.{node.name}"
    return names


def _called(call: ast.Call, names: dict[str, str]) -> str | None:
    """The dotted name a call resolves to, when it names a module-level function."""
    func = call.func
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = names.get(func.value.id)
        return f"{base}.{func.attr}" if base else None
    return None


def _functions(tree: ast.Module, module: str) -> list[tuple[str, ast.AST]]:
    """Every function and method, by dotted name (methods as module.Class.method)."""
    found: list[tuple[str, ast.AST]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found.append((f"{module}.{node.name}", node))
        elif isinstance(node, ast.ClassDef):
            found += [
                (f"{module}.{node.name}.{item.name}", item)
                for item in node.body
                if isinstance(item, ast.FunctionDef)
            ]
    return found


def _scan(folders: tuple[str, ...]) -> list[tuple[Path, str, set[str], ast.AST]]:
    """(file, function, the dotted names it calls, its body) for every function."""
    scanned = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = _module_name(path)
            names = _aliases(tree, module)
            for name, node in _functions(tree, module):
                calls = {
                    called
                    for sub in ast.walk(node)
                    if isinstance(sub, ast.Call) and (called := _called(sub, names))
                }
                scanned.append((path, name, calls, node))
    return scanned


CODE = _scan(("service", "actors"))
DB_CODE = [entry for entry in CODE if entry[0].is_relative_to(ROOT / "service" / "db")]


def _enders() -> set[str]:
    """The functions of service/db that call ``end``, directly or through one another."""
    found = {END}
    while True:
        more = {name for _, name, calls, _ in DB_CODE if calls & found} - found
        if not more:
            return found
        found |= more


def test_the_scan_sees_the_ending_and_its_callers() -> None:
    # Guards the rules below against passing because nothing was resolved
    callers = {name for _, name, calls, _ in CODE if "service.work.ending.ending" in calls}

    assert "service.work.download._finish" in callers
    assert "service.intake.jobs.cancel" in callers
    assert "service.fleet.sweeps.expired_leases" in callers


def test_every_function_of_the_db_that_ends_a_job_is_known() -> None:
    # Given the functions of service/db that reach transitions.end
    found = _enders()

    # Then they are exactly the ones listed here: a new one is added on purpose
    assert found == ENDERS


def test_only_the_ending_ends_a_job() -> None:
    # Given every call, outside service/db, of a function that ends a job
    callers = [
        f"{path.relative_to(ROOT).as_posix()}: {name} calls {sorted(calls & ENDERS)}"
        for path, name, calls, _ in CODE
        if calls & ENDERS and not path.is_relative_to(ROOT / "service" / "db")
    ]
    stray = [c for c in callers if not c.startswith(f"{THE_ENDING}:")]

    # Then every one of them is in the ending (which closes parents, commits, announces)
    assert callers, "the ending calls them"
    assert not stray, "a job ends only through service/work/ending.py:\n  " + "\n  ".join(stray)


def _status_writes(node: ast.AST) -> list[str]:
    """What ``node`` writes to a ``status`` column: ``status=…`` keywords, ``"status": …``."""
    written = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.keyword) and sub.arg == "status":
            written.append(ast.unparse(sub.value))
        elif isinstance(sub, ast.Dict):
            written += [
                ast.unparse(value)
                for key, value in zip(sub.keys, sub.values, strict=True)
                if isinstance(key, ast.Constant) and key.value == "status"
            ]
    return written


def test_every_write_of_a_job_status_is_known_and_only_end_writes_a_terminal_one() -> None:
    # Given every function of service/db that writes a jobs.status
    writers = {
        name: writes
        for path, name, _, node in DB_CODE
        if path.relative_to(ROOT).as_posix() not in OTHER_STATUS_TABLES
        and (writes := _status_writes(node))
    }

    # Then they are the listed ones, each writing what the list says: no terminal state
    # but through _changes, which only move (refusing an end) and end call
    assert writers == {name: [value] for name, value in STATUS_WRITERS.items()}
    written = " ".join(STATUS_WRITERS.values())
    assert not any(f"Status.{s.name}" in written for s in TERMINAL)
    users = {name for _, name, calls, _ in DB_CODE if "service.db.transitions._changes" in calls}
    assert users == {"service.db.transitions.move", END}


def test_no_sql_text_updates_jobs() -> None:
    # Given every string in service/ (SQL written as text bypasses the guarded moves)
    texts = [
        (path.relative_to(ROOT).as_posix(), node.value)
        for path in sorted((ROOT / "service").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]

    # Then none of them updates the jobs table
    assert not [path for path, text in texts if "update jobs" in " ".join(text.lower().split())]


@pytest.mark.parametrize("target", sorted(TERMINAL), ids=str)
def test_move_refuses_an_end(target: Status) -> None:
    # When a move is asked to end a job, it refuses before any SQL is sent
    with pytest.raises(ValueError, match=r"through end\(\)"):
        transitions.move(None, uuid.uuid4(), target)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", sorted(set(Status) - TERMINAL), ids=str)
def test_end_refuses_what_is_not_an_end(target: Status) -> None:
    with pytest.raises(ValueError, match="is not an end"):
        transitions.end(None, target)  # type: ignore[arg-type]


def test_a_move_the_state_machine_does_not_have_is_refused() -> None:
    # A guarded update that names a source the table does not allow is a bug
    with pytest.raises(ValueError, match=r"no move from \['succeeded'\] to running"):
        transitions.from_states(Status.RUNNING, (Status.SUCCEEDED,))
