"""Error classes and attempt outcomes are enums, spelled once (service/domain/errors.py,
service/domain/states.py); the code names their members, never their strings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service.domain.errors import ErrorClass
from service.domain.states import AttemptOutcome
from service.errors import Permanent, Transient

ROOT = Path(__file__).resolve().parents[3]

#: Arguments whose value is an error class or an attempt outcome.
CONTRACTS = {"error_class", "last_error_class", "outcome"}


def test_open_families_are_members_made_once() -> None:
    # Given a 4xx a site answered and a failure nobody classified
    status, unexpected = ErrorClass.http(404), ErrorClass.unexpected(KeyError("formats"))

    # Then each is an ErrorClass with the string users have always filtered on
    assert isinstance(status, ErrorClass)
    assert status == "http_404"
    assert ErrorClass("http_404") is status
    assert unexpected == "KeyError"
    assert ErrorClass("KeyError") is unexpected
    # And the named list stays the named list
    assert "http_404" not in [m.value for m in ErrorClass]


@pytest.mark.parametrize("name", ["bogus", "rate limited", "http_4xx", "", "Not a name"])
def test_an_unknown_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="ErrorClass"):
        ErrorClass(name)


def test_an_oddly_named_exception_still_gets_a_class() -> None:
    # An unexpected failure must never fail again while it is being recorded
    class lowercase_error(Exception):
        pass

    assert ErrorClass.unexpected(lowercase_error()) == "lowercase_error"


def test_named_classes_are_snake_case_and_distinct() -> None:
    values = [m.value for m in ErrorClass]

    assert len(values) == len(set(values))
    assert all(v == v.lower() and " " not in v for v in values)


def test_failures_carry_an_error_class_by_default() -> None:
    assert Permanent("x").error_class is ErrorClass.PERMANENT
    assert Transient("x").error_class is ErrorClass.TRANSIENT
    assert Transient("x", error_class=ErrorClass.NETWORK).error_class is ErrorClass.NETWORK


def test_metric_labels_keep_their_values() -> None:
    # The outcome label of haul_attempts_finished and haul_attempt_duration_seconds
    assert [o.value for o in AttemptOutcome] == [
        "succeeded",
        "failed",
        "retry",
        "abandoned",
        "handed_back",
    ]


def _literal_contracts(path: Path, root: Path = ROOT) -> list[str]:
    """Places in ``path`` that spell an error class or an outcome as a string literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    shown = path.relative_to(root).as_posix()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in CONTRACTS:
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found.append(f"{shown}:{node.value.lineno} {node.arg}={node.value.value!r}")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names = {s.attr for s in sides if isinstance(s, ast.Attribute)}
            literal = [s for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)]
            if names & CONTRACTS and literal:
                found.append(f"{shown}:{node.lineno} compares {names & CONTRACTS} with a string")
    return found


def test_the_code_names_members_not_strings() -> None:
    files = sorted(p for folder in ("service", "actors") for p in (ROOT / folder).rglob("*.py"))

    found = [place for path in files for place in _literal_contracts(path)]

    assert len(files) > 20
    assert not found, "spell these with ErrorClass / AttemptOutcome:\n  " + "\n  ".join(found)


def test_the_scan_would_catch_a_slip(tmp_path: Path) -> None:
    # Given a module that writes an error class and compares one as strings
    slip = tmp_path / "slip.py"
    slip.write_text(
        'fail(error_class="network")\nif exc.error_class == "rate_limited":\n    pass\n',
        encoding="utf-8",
    )

    # Then the scan names both places
    assert len(_literal_contracts(slip, root=tmp_path)) == 2
