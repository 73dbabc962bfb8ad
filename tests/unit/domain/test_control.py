"""The pure rules of queue control: a tier's priority bound, free slots."""

from __future__ import annotations

import pytest

from service.domain.control import free_slots, tier_max_priority


def test_a_tier_bounds_priority_and_an_unknown_tier_gets_the_lowest_bound() -> None:
    bounds = {"standard": 5, "premium": 9}
    assert tier_max_priority("premium", bounds) == 9
    assert tier_max_priority("standard", bounds) == 5
    assert tier_max_priority("gold", bounds) == 5
    assert tier_max_priority("gold", {}) == 0


@pytest.mark.parametrize(
    ("max_running", "running", "free"), [(None, 7, None), (2, 0, 2), (2, 2, 0), (2, 5, 0)]
)
def test_free_slots_never_go_negative(
    max_running: int | None, running: int, free: int | None
) -> None:
    assert free_slots(max_running, running) == free
