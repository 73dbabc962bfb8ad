"""Pacing of attempt starts per site family (service/domain/pacing.py)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.domain.pacing import DEFAULTS, Pacing, pacing_of


def test_video_sites_are_paced_by_default_and_others_are_not() -> None:
    assert pacing_of("youtube.com", None, None, 0.0, 0.5) == DEFAULTS["youtube.com"]
    assert pacing_of("youtube.com", None, None, 0.0, 0.5).paced
    assert not pacing_of("example.com", None, None, 0.0, 0.5).paced
    assert pacing_of("example.com", None, None, 3.0, 0.2) == Pacing(3.0, 0.2)


def test_a_site_setting_overrides_the_default_field_by_field() -> None:
    assert pacing_of("youtube.com", 0.0, None, 0.0, 0.5) == Pacing(0.0, 0.5)
    assert pacing_of("youtube.com", None, 0.0, 0.0, 0.9) == Pacing(5.0, 0.0)


@given(st.floats(0, 3600), st.floats(0, 10), st.floats(0, 1))
def test_a_gap_is_never_shorter_than_the_interval_nor_longer_than_with_all_jitter(
    interval: float, jitter: float, draw: float
) -> None:
    pacing = Pacing(interval, jitter)
    gap = pacing.gap(draw)
    slack = timedelta(microseconds=1)
    assert timedelta(seconds=interval) - slack <= gap <= pacing.longest_gap + slack
