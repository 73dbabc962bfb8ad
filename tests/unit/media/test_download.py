"""When the download may reuse the probe's info (``media/download.py: reusable``): only
while it is younger than the bound, since many sites sign their format URLs for minutes."""

from __future__ import annotations

import time

from service.media.download import reusable


def test_fresh_info_is_reused() -> None:
    # Given info the probe extracted a minute ago
    info = {"id": "x", "epoch": int(time.time()) - 60}
    # When the download asks, with a five-minute bound, Then it gets it
    assert reusable(info, 300) is info


def test_info_older_than_the_bound_is_not() -> None:
    assert reusable({"id": "x", "epoch": int(time.time()) - 301}, 300) is None


def test_info_without_its_extraction_time_is_not() -> None:
    assert reusable({"id": "x"}, 300) is None
    assert reusable({"id": "x", "epoch": "yesterday"}, 300) is None


def test_a_bound_of_zero_turns_reuse_off() -> None:
    assert reusable({"id": "x", "epoch": int(time.time())}, 0) is None


def test_no_info_is_none() -> None:
    assert reusable(None, 300) is None
    assert reusable({}, 300) is None
