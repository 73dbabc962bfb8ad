"""Which limits hold for a client (service/domain/quotas.py): its own, or the defaults."""

from __future__ import annotations

from service.domain.quotas import ClientLimits

# --- which limits hold ----------------------------------------------------------------------


def test_own_limits_win_and_unset_ones_fall_back_to_the_defaults() -> None:
    # Given a client with its own active-jobs limit only
    own = ClientLimits(max_active_jobs=50)
    defaults = ClientLimits(max_active_jobs=5, storage_quota_bytes=10**9, requests_per_minute=None)

    # When they are laid over the deployment's defaults
    held = own.over(defaults)

    # Then its own value holds, the others are the defaults (None: no limit)
    assert held == ClientLimits(
        max_active_jobs=50, storage_quota_bytes=10**9, requests_per_minute=None
    )


def test_an_own_zero_is_a_limit_not_a_missing_value() -> None:
    assert (
        ClientLimits(max_active_jobs=0).over(ClientLimits(max_active_jobs=9)).max_active_jobs == 0
    )
