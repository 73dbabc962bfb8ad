"""A worker waits out a short database outage instead of spending a retry."""

from __future__ import annotations

import pytest

from service.db.engine import wait_out_outage
from service.errors import ServiceUnavailable


class Outage:
    """Work that finds the database down ``failures`` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ServiceUnavailable("database unavailable: OperationalError")
        return "claimed"


def test_a_short_outage_is_waited_out() -> None:
    # Given a database that is down for two tries
    work = Outage(failures=2)
    # When the work runs with patience to spare
    result = wait_out_outage(work, patience=5)
    # Then it succeeds on the third try
    assert (result, work.calls) == ("claimed", 3)


def test_a_long_outage_is_reported_once_patience_runs_out() -> None:
    work = Outage(failures=1_000)
    with pytest.raises(ServiceUnavailable):
        wait_out_outage(work, patience=0.5)
    assert 2 <= work.calls < 10


def test_other_errors_are_not_retried() -> None:
    def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        wait_out_outage(broken, patience=5)
