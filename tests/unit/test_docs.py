"""Every test a document cites exists: ``tests/….py`` is a file, and ``::name`` is defined
in it (``::prefix_*`` names at least one), so a moved or renamed test cannot leave the
docs pointing at nothing."""

from __future__ import annotations

import ast
import re

from tests.support.paths import REPO

DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", REPO / "bench" / "README.md"]
CITED = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+)(\*)?)?")


def citations() -> list[tuple[str, str, str | None, bool]]:
    found = []
    for doc in DOCS:
        for match in CITED.finditer(doc.read_text(encoding="utf-8")):
            path, name, star = match.groups()
            found.append((doc.name, path, name, star is not None))
    return found


def defined(path: str) -> set[str]:
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def test_every_cited_test_file_and_name_exists() -> None:
    cited = citations()
    assert len(cited) > 20, "the pattern no longer finds the citations"
    missing = []
    for doc, path, name, prefix in cited:
        if not (REPO / path).is_file():
            missing.append(f"{doc}: {path}")
        elif name is not None:
            names = defined(path)
            if not (any(n.startswith(name) for n in names) if prefix else name in names):
                missing.append(f"{doc}: {path}::{name}{'*' if prefix else ''}")
    assert missing == []
