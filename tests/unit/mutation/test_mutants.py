"""The CI sample's list of mutants to skip (``tests/mutation/mutants.py``): read from
docs/testing.md, where one table row may name several mutants of one function."""

from __future__ import annotations

from tests.mutation import mutants


def test_a_row_names_its_first_mutant_in_full_and_the_others_by_number() -> None:
    # Given a row as docs/testing.md writes it
    row = (
        "| `service.db.transitions.x_move__mutmut_2`, `…_3`, `…_10` | why |\n"
        "| `service.domain.egress.x_literal_ip__mutmut_8` | why |\n"
        "| `…_4` alone, with no full name before it | not a mutant |\n"
    )
    # When the sample reads it
    names = mutants.known_survivors(row)
    # Then each number is the same function's mutant, and nothing else is named
    assert names == {
        "service.db.transitions.x_move__mutmut_2",
        "service.db.transitions.x_move__mutmut_3",
        "service.db.transitions.x_move__mutmut_10",
        "service.domain.egress.x_literal_ip__mutmut_8",
    }


def test_every_equivalent_mutant_of_the_page_is_skipped() -> None:
    names = mutants.known_survivors()
    assert "service.db.transitions.x__attempt_statement__mutmut_57" in names
    assert "service.domain.quotas.xǁClientLimitsǁover__mutmut_12" in names


def test_a_run_takes_the_functions_and_the_single_mutants_it_is_told() -> None:
    module = "service.db.transitions"
    names = [f"{module}.x_{f}__mutmut_{n}" for f in ("heartbeat", "requeue") for n in (1, 2, 10)]
    every = mutants.choose("service/db/transitions.py", names, None, None)
    assert every[:3] == [f"{module}.x_heartbeat__mutmut_{n}" for n in (1, 2, 10)], "in order"
    assert len(every) == 6
    assert mutants.choose("service/db/transitions.py", names, ["requeue"], None) == [
        f"{module}.x_requeue__mutmut_{n}" for n in (1, 2, 10)
    ]
    assert mutants.choose(
        "service/db/transitions.py", names, None, ["x_heartbeat__mutmut_2", "x_requeue__mutmut_10"]
    ) == [f"{module}.x_heartbeat__mutmut_2", f"{module}.x_requeue__mutmut_10"]


def test_a_partly_scoped_module_offers_only_its_guarantee_functions() -> None:
    names = ["service.api.files.x_parse_range__mutmut_1", "service.api.files.x_stream__mutmut_1"]
    assert mutants.choose("service/api/files.py", names, None, None) == [names[0]]
