"""Drop each condition of every guarded statement's WHERE, one at a time, and expect a
test to fail: the guards a mutation tool cannot see.

mutmut mutates operators and constants but never removes a whole condition, and it
does not look inside SQL kept as text (``sa.text`` in the gate and release). This
harness finds, in the modules named in ``GUARDED``:

- every argument of a Core ``.where(a, b, …)`` call (the argument is dropped; a
  ``.where`` with one argument is dropped whole), and
- every top-level ``AND`` term of each ``WHERE`` in a string literal (the term is
  dropped; a lone term becomes ``TRUE``),

writes each variant into a copy of the tree and runs the module's tests there with
``-x``. A variant no test notices is a survivor: add a test, or list it in
``docs/testing.md`` as equivalent with the reason (``EQUIVALENT`` below).

A variant is named by what it drops, not where: ``module:statement:condition``, the
statement being the function around the ``.where`` or the module-level name the SQL
text is bound to (with ``.cte`` for a WHERE inside ``cte AS (…)``), and the condition
its text with whitespace and SQL comments folded (`` [2]`` and on for the same text
again in the same statement). Code that moves keeps
its names; an ``EQUIVALENT`` entry that names no variant any more fails the run.

    python -m tests.mutation.guards [--list] [module …]
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Each guarded module with the fast-tier tests expected to notice a dropped condition,
#: the quickest first (each variant runs them with ``-x``).
GUARDED: dict[str, list[str]] = {
    "service/db/transitions.py": [
        "tests/integration/db/test_transitions.py",
        "tests/integration/work/test_guarantees.py",
        "tests/integration/work/test_download.py",
        "tests/integration/db/test_trees.py",
        "tests/integration/webhooks/test_deliver.py",
    ],
    "service/db/control.py": [
        "tests/integration/fleet/test_gate_guards.py",
        "tests/integration/fleet/test_gate_counts.py",
        "tests/integration/fleet/test_gate.py",
        "tests/integration/fleet/test_gate_clients.py",
        "tests/integration/fleet/test_gate_sites.py",
        # the small lookups and switches: the admin API's controls and the queue depths
        "tests/integration/api/test_control.py",
        "tests/integration/observe/test_metrics.py",
    ],
}

#: Variants that change nothing a user can see, by "module:statement:condition", with why.
EQUIVALENT: dict[str, str] = {
    "service/db/control.py:_RELEASABLE.waiting:j.status IN ({_WAITING_SQL})": (
        "every move clears `held` and only waiting rows are held, so a held row is waiting"
    ),
    "service/db/control.py:_SWITCHES:h.status IN ({_WAITING_SQL})": (
        "every move clears `held` and only waiting rows are held, so a held row is waiting"
    ),
    "service/db/control.py:any_held:Job.status.in_(_WAITING)": (
        "every move clears `held` and only waiting rows are held, so a held row is waiting"
    ),
    "service/db/control.py:release:Job.status.in_(_WAITING)": (
        "beside `held IS NOT NULL`: every move clears `held`, so a row that moved on since"
        " the release chose it (test_gate_counts.py's race) has lost its hold as well"
    ),
    "service/db/control.py:_RELEASABLE.room:r.status = {_RUNNING_SQL}": (
        "only a running row has a lease: every move out of running clears lease_expires_at"
    ),
    "service/db/control.py:_RELEASABLE.busy:r.status = {_RUNNING_SQL}": (
        "only a running row has a lease: every move out of running clears lease_expires_at"
    ),
    "service/db/control.py:_RELEASABLE.busy:client_limit IS NOT NULL": (
        "a client without a limit passes `w.client_limit IS NULL OR …` before its busy row"
        " is read: counting its running jobs too changes no row released"
    ),
    "service/db/control.py:_RELEASABLE:t.status = {_RUNNING_SQL}": (
        "the trial counts while its lease is live, and only a running row has a lease"
    ),
    "service/db/control.py:_RELEASABLE.room:site IS NOT NULL": (
        "a NULL site never joins `room` (NULL = NULL is not true): the row is dropped anyway"
    ),
}

_WHERE = re.compile(r"\bWHERE\b")
_END = re.compile(r"\b(ORDER\s+BY|GROUP\s+BY|LIMIT|FOR\s+(SHARE|UPDATE)|RETURNING|UNION)\b", re.I)
_AND = re.compile(r"\bAND\b", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")
_CTE = re.compile(r"\b(\w+)\s+AS\s*\(", re.IGNORECASE)


def _cte_at(sql: str, at: int) -> str | None:
    """The name of the innermost ``name AS (…)`` around offset ``at`` of ``sql``."""
    found = None
    for m in _CTE.finditer(sql, 0, at):
        depth, i = 1, m.end()
        while i < len(sql) and depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        if i > at:
            found = m.group(1)
    return found


@dataclass(frozen=True)
class Variant:
    """One condition dropped from one statement."""

    module: str
    line: int
    statement: str
    condition: str
    source: str
    #: Where the condition starts in the module's text (orders the variants of one line).
    offset: int = 0
    #: 1 for the first condition of this text in the statement, 2 for the next …
    occurrence: int = 1

    @property
    def key(self) -> str:
        """Stable while the code moves: no line number (``line`` is only shown)."""
        again = f" [{self.occurrence}]" if self.occurrence > 1 else ""
        return f"{self.module}:{self.statement}:{self.condition}{again}"


def _owners(tree: ast.Module) -> dict[ast.AST, str]:
    """Each node → the statement it belongs to: the innermost function around it, else
    the module-level name it is assigned to (``_RELEASABLE = sa.text(…)``)."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = name
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            owner[child] = inner
            visit(child, inner)

    for stmt in tree.body:
        name = "<module>"
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = stmt.name
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            name = stmt.target.id
        owner[stmt] = name
        visit(stmt, name)
    return owner


def _replace(text: str, start: int, end: int, new: str) -> str:
    """``text`` with the span [start, end) (absolute offsets) replaced by ``new``."""
    return text[:start] + new + text[end:]


def _offsets(text: str) -> list[int]:
    """The offset of each line's start, 1-based line numbers as index - 1."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _span(node: ast.AST, starts: list[int]) -> tuple[int, int]:
    return (
        starts[node.lineno - 1] + node.col_offset,  # type: ignore[attr-defined]
        starts[node.end_lineno - 1] + node.end_col_offset,  # type: ignore[attr-defined]
    )


def _core_variants(
    module: str, text: str, tree: ast.Module, starts: list[int], owners: dict[ast.AST, str]
) -> list[Variant]:
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "where"
        ):
            continue
        args = node.args
        for i, arg in enumerate(args):
            shown = ast.get_source_segment(text, arg) or "?"
            if len(args) == 1:
                # `x.where(c)` becomes `x`: the call is dropped whole.
                start, _ = _span(node.func.value, starts)
                _, value_end = _span(node.func.value, starts)
                _, end = _span(node, starts)
                mutated = _replace(text, value_end, end, "")
            elif i < len(args) - 1:
                start, _ = _span(arg, starts)
                next_start, _ = _span(args[i + 1], starts)
                mutated = _replace(text, start, next_start, "")
            else:
                _, prev_end = _span(args[i - 1], starts)
                _, end = _span(arg, starts)
                mutated = _replace(text, prev_end, end, "")
            condition = " ".join(shown.split())
            at = _span(arg, starts)[0]
            found.append(Variant(module, arg.lineno, owners[node], condition, mutated, at))
    return found


def _terms(clause: str) -> list[tuple[int, int]]:
    """Spans of the top-level AND terms of a WHERE clause (parentheses respected)."""
    spans, depth, start, i = [], 0, 0, 0
    while i < len(clause):
        ch = clause[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (m := _AND.match(clause, i)) and not clause[i - 1 : i].isalnum():
            spans.append((start, i))
            start = i = m.end()
            continue
        elif depth == 0 and _END.match(clause, i) and not clause[i - 1 : i].isalnum():
            break
        i += 1
    spans.append((start, i))
    return spans


def _is_text_call(node: ast.AST) -> bool:
    """``sa.text("…")`` or ``text("…")``: SQL kept as a string."""
    if not isinstance(node, ast.Call) or not node.args:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "text"


def _text_variants(
    module: str, text: str, tree: ast.Module, starts: list[int], owners: dict[ast.AST, str]
) -> list[Variant]:
    found = []
    for call in ast.walk(tree):
        if not (_is_text_call(call) and isinstance(call.args[0], ast.Constant | ast.JoinedStr)):
            continue  # an f-string too: its {…} names only enum values and SQL helpers
        node = call.args[0]
        begin, end = _span(node, starts)
        raw = text[begin:end]
        for where in _WHERE.finditer(raw):
            cte = _cte_at(raw, where.start())
            statement = owners[call] + (f".{cte}" if cte else "")
            terms = _terms(raw[where.end() : len(raw) - 3])  # inside the closing quotes
            for k, (a, b) in enumerate(terms):
                term = raw[where.end() + a : where.end() + b]
                if len(terms) == 1:
                    new, lo, hi = " TRUE ", a, b
                elif k < len(terms) - 1:
                    new, lo, hi = " ", a, terms[k + 1][0]
                else:
                    new, lo, hi = " ", terms[k - 1][1], b
                mutated_raw = raw[: where.end() + lo] + new + raw[where.end() + hi :]
                line = node.lineno + raw[: where.end() + a].count("\n")
                mutated = text[:begin] + mutated_raw + text[begin + len(raw) :]
                shown = " ".join(_COMMENT.sub("", term).split())
                at = begin + where.end() + a
                found.append(Variant(module, line, statement, shown, mutated, at))
    return found


def variants(module: str) -> list[Variant]:
    text = (ROOT / module).read_text()
    tree = ast.parse(text)
    starts = _offsets(text)
    owners = _owners(tree)
    found = _core_variants(module, text, tree, starts, owners)
    found += _text_variants(module, text, tree, starts, owners)
    for v in found:
        ast.parse(v.source)  # a variant must still be Python
    numbered, seen = [], {}
    for v in sorted(found, key=lambda v: v.offset):
        plain = (v.statement, v.condition)
        seen[plain] = seen.get(plain, 0) + 1
        numbered.append(replace(v, occurrence=seen[plain]))
    return numbered


def stale(modules: list[str]) -> list[str]:
    """``EQUIVALENT`` entries of ``modules`` that name no variant: the code changed under
    them, and the reason given may no longer hold."""
    keys = {v.key for m in modules for v in variants(m)}
    return [k for k in EQUIVALENT if k.split(":", 1)[0] in modules and k not in keys]


def check_equivalents(modules: list[str]) -> None:
    """Stop loudly on a stale ``EQUIVALENT`` entry (see :func:`stale`)."""
    gone = stale(modules)
    if gone:
        listed = "\n".join(f"    {k}" for k in gone)
        sys.exit(
            f"guards: EQUIVALENT names conditions that no longer exist:\n{listed}\n"
            "re-key them (`--list` shows the variants) or remove them, and re-check the reason"
        )


def copy_tree(into: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: the running pytest is killed and the copy removed."""
    raise KeyboardInterrupt


def run(modules: list[str], only: list[str] | None = None) -> int:
    """Run the variants of ``modules`` (those whose key contains one of ``only``, if
    given); the number of survivors not listed as equivalent."""
    check_equivalents(modules)
    signal.signal(signal.SIGTERM, _stop)
    survivors = 0
    with tempfile.TemporaryDirectory(prefix="haul-guards-") as tmp:
        copy = Path(tmp)
        copy_tree(copy)
        for module in modules:
            original = (copy / module).read_text()
            for v in variants(module):
                if only and not any(o in v.key for o in only):
                    continue
                (copy / module).write_text(v.source)
                began = time.monotonic()
                result = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
                    + GUARDED[module],
                    cwd=copy,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                took = time.monotonic() - began
                (copy / module).write_text(original)
                killed = result.returncode == 1
                if killed:
                    verdict = "killed"
                elif v.key in EQUIVALENT:
                    verdict = f"equivalent ({EQUIVALENT[v.key]})"
                elif result.returncode != 0:
                    verdict = f"error (pytest exit {result.returncode})"
                    survivors += 1
                else:
                    verdict = "SURVIVED"
                    survivors += 1
                print(f"{verdict:9} {took:6.1f}s  {v.key}  (line {v.line})", flush=True)
    return survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(GUARDED))
    parser.add_argument("--list", action="store_true", help="list the variants, run nothing")
    parser.add_argument("--only", action="append", help="run the variants whose key has this")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in GUARDED]
    if unknown:
        parser.error(f"not a guarded module: {unknown}; known: {list(GUARDED)}")
    if args.list:
        check_equivalents(args.modules)
        for module in args.modules:
            for v in variants(module):
                print(f"{v.key}    (line {v.line})")
        return
    survivors = run(args.modules, args.only)
    print(f"guards: {survivors} survivor(s)")
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
