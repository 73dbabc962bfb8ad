"""When a failed delivery is tried again (service/webhooks/deliver.py: backoff)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.settings import Settings
from service.webhooks.deliver import backoff


@pytest.mark.parametrize("failed", range(1, 12))
def test_backoff_doubles_from_the_minimum_with_jitter_and_stays_under_the_cap(failed: int) -> None:
    settings = Settings(_env_file=None, webhook_min_backoff_ms=1_000, webhook_max_backoff_ms=60_000)  # type: ignore[call-arg]
    floor = min(1_000 * 2 ** (failed - 1), 60_000)

    delays = [backoff(settings, failed) for _ in range(50)]

    assert all(timedelta(milliseconds=floor) <= d <= timedelta(milliseconds=60_000) for d in delays)
    assert all(d <= timedelta(milliseconds=floor * 1.5) for d in delays)
