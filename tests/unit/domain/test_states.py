"""The job state machine, checked against a table written out by hand.

The expected table below is deliberately not derived from ``TRANSITIONS``: a change
to the state machine must be made twice, here and in ``service/domain/states.py``.
"""

from __future__ import annotations

import pytest

from service.domain.states import TRANSITIONS, Status, can_move, is_terminal, sources

# x = allowed, . = refused. Rows are the current state, columns the target.
EXPECTED_TABLE = """
              queued  running  retrying  succeeded  failed  cancelled
queued          .        x        .          .        x        x
running         x        .        x          x        x        x
retrying        .        x        .          .        x        x
succeeded       .        .        .          .        .        .
failed          x        x        .          .        .        .
cancelled       x        x        .          .        .        .
"""


def _parse_table(table: str) -> dict[tuple[str, str], bool]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    expected: dict[tuple[str, str], bool] = {}
    for current, *cells in rows:
        assert len(cells) == len(header), f"row {current!r} has {len(cells)} cells"
        for target, cell in zip(header, cells, strict=True):
            assert cell in {"x", "."}, f"cell {current}->{target} is {cell!r}"
            expected[(current, target)] = cell == "x"
    return expected


EXPECTED = _parse_table(EXPECTED_TABLE)
ALL_PAIRS = [(current, target) for current in Status for target in Status]


def test_the_table_names_every_status_as_row_and_column() -> None:
    # Given every status the code knows
    names = {status.value for status in Status}

    # Then the hand-written table has exactly one row and one column for each
    assert {current for current, _ in EXPECTED} == names
    assert {target for _, target in EXPECTED} == names


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=[f"{c}->{t}" for c, t in ALL_PAIRS])
def test_can_move_matches_the_table(current: Status, target: Status) -> None:
    assert can_move(current, target) is EXPECTED[(current.value, target.value)]


@pytest.mark.parametrize("target", list(Status), ids=str)
def test_sources_agree_with_transitions(target: Status) -> None:
    # When we ask which states lead to target
    found = sources(target)

    # Then it is exactly the states whose transitions include target, in declaration order
    assert found == tuple(s for s in Status if target in TRANSITIONS[s])


@pytest.mark.parametrize("target", list(Status), ids=str)
def test_sources_agree_with_the_table(target: Status) -> None:
    expected = {c for (c, t), allowed in EXPECTED.items() if t == target.value and allowed}

    assert {s.value for s in sources(target)} == expected


def test_sources_of_running_are_the_claimable_states_and_a_reopened_playlist() -> None:
    # A claim succeeds on queued or retrying (running is not a source of running);
    # a retried playlist parent goes from its end straight back to awaiting its entries
    assert sources(Status.RUNNING) == (
        Status.QUEUED,
        Status.RETRYING,
        Status.FAILED,
        Status.CANCELLED,
    )


def test_succeeded_has_no_way_out() -> None:
    assert not any(can_move(Status.SUCCEEDED, target) for target in Status)
    assert TRANSITIONS[Status.SUCCEEDED] == frozenset()


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED], ids=str)
def test_failed_and_cancelled_only_go_back_to_queued_or_to_awaiting_entries(
    status: Status,
) -> None:
    # A retried job is queued again; a retried playlist parent runs again, not probed again
    allowed = {target for target in Status if can_move(status, target)}

    assert allowed == {Status.QUEUED, Status.RUNNING}


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (Status.QUEUED, False),
        (Status.RUNNING, False),
        (Status.RETRYING, False),
        (Status.SUCCEEDED, True),
        (Status.FAILED, True),
        (Status.CANCELLED, True),
    ],
    ids=str,
)
def test_is_terminal(status: Status, terminal: bool) -> None:
    assert is_terminal(status) is terminal


def test_no_active_state_is_a_dead_end() -> None:
    # Every non-terminal state can still reach some terminal state in one move
    for status in Status:
        if not is_terminal(status):
            assert any(is_terminal(t) for t in TRANSITIONS[status]), status
