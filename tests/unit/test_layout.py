"""The package map and its arrows (docs/architecture.md, "Packages"), read from the source.

Every ``import`` and ``from … import`` in service/ and actors/ is parsed with ``ast``,
including those under ``TYPE_CHECKING`` and inside functions: a type-only import
still ties one layer to another. Each rule below is one line of that map.
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
        ("litestar", ("service/api", "service/web")),
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


def _imports_project(imp: Import, *modules: str) -> bool:
    """Whether ``imp`` names one of ``modules`` (dotted) or anything inside them."""
    return any(imp.module == m or imp.module.startswith(f"{m}.") for m in modules)


#: Every module of service/db but the row types (models).
_DB_BUT_MODELS = tuple(
    f"service.db.{p.stem}"
    for p in sorted((ROOT / "service" / "db").glob("*.py"))
    if p.stem not in ("__init__", "models")
)

#: Who may not import what: (the importing folder or file, the modules it must not
#: import, why). Each row is an arrow the package docstrings and docs/architecture.md draw.
FORBIDDEN = [
    (
        "service/work",
        (
            "service.subscriptions",
            "service.intake",
            "service.fleet.admin",
            "service.fleet.sweeps",
            "service.api",
            "service.live",
        ),
        "a worker's use cases never reach the API's or the admin's side",
    ),
    (
        "service/db",
        (
            "service.subscriptions",
            "service.intake",
            "service.work",
            "service.fleet",
            "service.webhooks",
            "service.live",
            "service.observe",
            "service.api",
            "service.media",
            "service.dispatch",
            "service.runtime",
        ),
        "persistence knows tables and rules, not the use cases above it",
    ),
    (
        "service/media",
        (
            "service.subscriptions",
            "service.db",
            "service.intake",
            "service.work",
            "service.fleet",
            "service.webhooks",
            "service.live",
            "service.observe",
            "service.api",
            "service.dispatch",
            "service.runtime",
        ),
        "yt-dlp's wrapper is called by the use cases and calls none of them",
    ),
    (
        "service/webhooks",
        (
            "service.intake",
            "service.work",
            "service.fleet",
            "service.api",
            "service.live",
            "service.subscriptions",
        ),
        "webhooks are called by the use cases, not the other way round",
    ),
    (
        "service/live",
        (
            "service.subscriptions",
            "service.intake",
            "service.work",
            "service.fleet",
            "service.webhooks",
            "service.api",
            "service.media",
        ),
        "live views read rows and notifications only",
    ),
    (
        "service/observe",
        (
            "service.subscriptions",
            "service.intake",
            "service.work",
            "service.fleet",
            "service.webhooks",
            "service.api",
            "service.live",
        ),
        "metrics observe; they drive nothing",
    ),
    (
        "service/intake",
        (
            "service.subscriptions",
            "service.fleet",
            "service.api",
            "service.media",
            "service.work.claim",
            "service.work.probe",
            "service.work.download",
            "service.work.outcomes",
        ),
        "the API's use cases queue work; they never do a worker's",
    ),
    (
        "service/fleet",
        (
            "service.subscriptions",
            "service.api",
            "service.media",
            "service.intake.jobs",
            "service.intake.admission",
            "service.intake.replay",
            "service.intake.rates",
        ),
        "fleet control acts on rows and the broker, never through a client's intake",
    ),
    (
        "service/api",
        (
            "service.db.jobs",
            "service.db.transitions",
            "service.db.trees",
            "service.db.finders",
            "service.db.replay",
            "service.db.control",
            "service.db.engine",
            "service.db.feeds",
            "service.db.subscriptions",
            "service.work",
            "service.media",
            "service.fleet.gate",
            "service.fleet.sweeps",
            "service.webhooks.deliver",
            "service.webhooks.outbox",
        ),
        "controllers call package entry points; only the row types of service.db.models",
    ),
    (
        "service/subscriptions",
        (
            "service.api",
            "service.fleet",
            "service.live",
            "service.observe",
            "service.intake.jobs",
            "service.intake.replay",
            "service.intake.rates",
            "service.work.probe",
            "service.work.download",
            "service.webhooks.deliver",
        ),
        "a subscription makes jobs through admission as a client's submission does, and "
        "runs its check as a job (claim, lease, outcomes, ending); it does no other "
        "worker's step, nor an admin's or controller's work",
    ),
    (
        "service/web",
        (
            *_DB_BUT_MODELS,
            "service.work",
            "service.media",
            "service.fleet.gate",
            "service.fleet.sweeps",
            "service.webhooks.deliver",
            "service.webhooks.outbox",
            "service.api",
        ),
        "the dashboard calls the API's use cases, never the database; only db.models row types",
    ),
    (
        "actors",
        (
            "service.db",
            "service.media",
            "service.intake",
            "service.api",
            "service.live",
            "service.fleet.admin",
        ),
        "actors are thin edges: a message in, one use case called",
    ),
]


@pytest.mark.parametrize(("where", "modules", "why"), FORBIDDEN, ids=[r[0] for r in FORBIDDEN])
def test_packages_import_only_what_the_map_allows(
    where: str, modules: tuple[str, ...], why: str
) -> None:
    violations = [
        imp for imp in ALL_IMPORTS if _under(imp, where) and _imports_project(imp, *modules)
    ]

    assert not violations, f"{why}\n" + _report(violations)


def test_the_forbidden_rules_would_catch_a_slip() -> None:
    # Given a work module that imports the admin side of the fleet
    slip = Import("service/work/probe.py", 1, "service.fleet.admin.pause")
    rules = [r for r in FORBIDDEN if r[0] == "service/work"]

    # Then the rule for work names it
    assert any(_under(slip, w) and _imports_project(slip, *m) for w, m, _ in rules)


def test_the_top_of_service_is_a_short_list_of_shared_modules() -> None:
    # The folder listing is the map: concepts live in packages, the top holds what all share.
    top = sorted(p.name for p in (ROOT / "service").glob("*.py"))

    assert len(top) <= 8, top


def test_no_module_outgrows_one_concept() -> None:
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in _source_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450
    }

    assert not long, long


def test_every_package_says_what_it_owns() -> None:
    packages = sorted(
        p.parent for p in (ROOT / "service").rglob("__init__.py") if p.parent.name != "__pycache__"
    )
    silent = [
        p.relative_to(ROOT).as_posix()
        for p in packages
        if not ast.get_docstring(ast.parse((p / "__init__.py").read_text(encoding="utf-8")))
    ]

    assert len(packages) >= 10
    assert not silent, silent
