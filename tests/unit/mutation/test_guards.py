"""The guard harness's names for its variants (``tests/mutation/guards.py``): stable
while code moves, one per condition, and every ``EQUIVALENT`` entry still naming one.

The harness itself runs for hours against the integration tier, so it is not run in
CI; these checks are, so that an equivalent-variant entry left behind by a change to
``db/control.py`` or ``db/transitions.py`` fails at once instead of going unread.
"""

from __future__ import annotations

import re

import pytest

from tests.mutation import guards


@pytest.mark.parametrize("module", list(guards.GUARDED))
def test_each_variant_has_its_own_key_without_a_line_number(module: str) -> None:
    keys = [v.key for v in guards.variants(module)]
    assert keys, f"no condition found in {module}"
    assert len(keys) == len(set(keys))
    for key in keys:
        statement = key.split(":")[1]
        assert not re.fullmatch(r"\d+", statement), key


def test_every_equivalent_entry_names_a_variant_that_exists() -> None:
    assert guards.stale(list(guards.GUARDED)) == []


def test_an_entry_whose_condition_is_gone_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = "service/db/control.py:270:r.status = {_RUNNING_SQL}"
    monkeypatch.setitem(guards.EQUIVALENT, gone, "keyed by a line that moved")
    assert guards.stale(["service/db/control.py"]) == [gone]
    with pytest.raises(SystemExit, match="no longer exist"):
        guards.check_equivalents(["service/db/control.py"])


def test_a_condition_inside_a_cte_is_named_by_it() -> None:
    keys = {v.key for v in guards.variants("service/db/control.py")}
    assert "service/db/control.py:_RELEASABLE.room:r.lease_expires_at > now()" in keys
    assert "service/db/control.py:_RELEASABLE.busy:r.lease_expires_at > now()" in keys
    assert "service/db/transitions.py:heartbeat:Job.lease_owner == owner" in {
        v.key for v in guards.variants("service/db/transitions.py")
    }
