"""The dependency rules of DESIGN.md ("Dependency direction"), read from the source.

Every ``import`` and ``from … import`` in service/ and actors/ is parsed with ``ast``,
including those under ``TYPE_CHECKING`` and inside functions: a type-only import
still ties one layer to another.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("service", "actors")


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository root, e.g. service/db/jobs.py
    line: int
    module: str  # absolute dotted name, e.g. sqlalchemy.orm.Session or service.errors

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def _package_of(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1]


def _imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    shown = path.relative_to(root).as_posix()
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(shown, node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # from . import x / from ..db import jobs: resolve against this file's package
                package = _package_of(path, root)
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            # from service import errors is an import of service.errors
            found.extend(Import(shown, node.lineno, f"{base}.{a.name}") for a in node.names)
    return found


def _source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


ALL_IMPORTS = [imp for path in _source_files() for imp in _imports_of(path)]


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _under(imp: Import, *folders: str) -> bool:
    return any(imp.path.startswith(f"{folder.rstrip('/')}/") for folder in folders)


def _report(violations: list[Import]) -> str:
    return "dependency rule broken:\n  " + "\n  ".join(map(str, violations))


def test_the_scan_sees_the_code() -> None:
    # Guards the rules below against passing because nothing was parsed
    seen = {(imp.path, _top(imp.module)) for imp in ALL_IMPORTS}

    assert len(_source_files()) >= 20
    assert ("service/media/errors.py", "yt_dlp") in seen
    assert ("service/db/models.py", "sqlmodel") in seen
    assert ("service/api/files.py", "litestar") in seen
    assert ("actors/download.py", "service") in seen


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    # Given a module that imports relatively (haul uses absolute imports, but a slip must count)
    module = tmp_path / "service" / "db" / "rows.py"
    module.parent.mkdir(parents=True)
    module.write_text("from . import models\nfrom ..domain.states import Status\n")

    # When it is scanned
    found = [imp.module for imp in _imports_of(module, root=tmp_path)]

    # Then both names are absolute
    assert found == ["service.db.models", "service.domain.states.Status"]


def test_service_never_imports_actors() -> None:
    violations = [
        imp for imp in ALL_IMPORTS if _under(imp, "service") and _top(imp.module) == "actors"
    ]

    assert not violations, _report(violations)


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("sqlmodel", ("service/db",)),
        ("sqlalchemy", ("service/db",)),
        ("yt_dlp", ("service/media",)),
        ("litestar", ("service/api",)),
    ],
)
def test_library_is_imported_only_by_its_layer(library: str, allowed: tuple[str, ...]) -> None:
    violations = [
        imp for imp in ALL_IMPORTS if _top(imp.module) == library and not _under(imp, *allowed)
    ]

    assert not violations, _report(violations)


def test_domain_imports_nothing_of_the_project_but_itself() -> None:
    violations = [
        imp
        for imp in ALL_IMPORTS
        if _under(imp, "service/domain")
        and _top(imp.module) in PACKAGES
        and not (imp.module == "service.domain" or imp.module.startswith("service.domain."))
    ]

    assert not violations, _report(violations)
