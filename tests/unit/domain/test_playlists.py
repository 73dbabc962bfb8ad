"""Playlist trees, the pure part: a playlist's overall progress and what its retry takes."""

from __future__ import annotations

import pytest

from service.api.schemas import ChildrenOut
from service.domain.playlists import ENTRIES_RETRIED, REOPENABLE, Children
from service.domain.states import TERMINAL, Status, can_move


def test_an_ended_entry_counts_as_done_whatever_its_outcome() -> None:
    # Given a playlist whose entries all ended, one each way
    ended = Children({Status.SUCCEEDED: 1, Status.FAILED: 1, Status.CANCELLED: 1})
    # Then it is all the way through
    assert ended.progress == 1.0
    assert not ended.active


def test_a_running_entry_counts_its_own_progress_and_a_waiting_one_nothing() -> None:
    # Given four entries: one done, two running at 50 % and 30 %, one queued
    entries = Children(
        {Status.SUCCEEDED: 1, Status.RUNNING: 2, Status.QUEUED: 1}, running_progress=0.8
    )
    # Then the playlist is at (1 + 0.5 + 0.3 + 0) / 4
    assert entries.total == 4
    assert entries.progress == pytest.approx(0.45)
    assert entries.active


@pytest.mark.parametrize("waiting", [Status.QUEUED, Status.RETRYING])
def test_an_entry_waiting_for_a_worker_keeps_the_playlist_open(waiting: Status) -> None:
    entries = Children({Status.SUCCEEDED: 1, waiting: 1})
    assert entries.progress == 0.5
    assert entries.active


def test_progress_never_leaves_zero_to_one() -> None:
    assert Children().progress == 0.0
    assert Children({Status.RUNNING: 1}, running_progress=1.5).progress == 1.0


def test_the_shape_shown_names_every_state_with_the_total_and_progress() -> None:
    shown = Children({Status.FAILED: 2, Status.SUCCEEDED: 1}).as_dict()

    assert shown == {
        "total": 3,
        "progress": 1.0,
        "queued": 0,
        "running": 0,
        "retrying": 0,
        "succeeded": 1,
        "failed": 2,
        "cancelled": 0,
    }
    # and the API's schema has exactly these fields (it forbids others)
    assert set(ChildrenOut.model_fields) == set(shown)
    assert ChildrenOut.of(Children({Status.FAILED: 2, Status.SUCCEEDED: 1})).model_dump() == shown


def test_a_retried_playlist_takes_its_failed_entries_and_a_cancelled_one_resumes() -> None:
    assert ENTRIES_RETRIED == {
        Status.FAILED: (Status.FAILED,),
        Status.CANCELLED: (Status.FAILED, Status.CANCELLED),
    }
    # Every entry taken is one a retry may queue again
    for entries in ENTRIES_RETRIED.values():
        assert all(can_move(entry, Status.QUEUED) for entry in entries)


def test_the_playlists_a_retry_reopens_are_the_ones_it_takes_entries_from() -> None:
    # Ended parents go back to awaiting their entries: failed and cancelled, never succeeded
    assert REOPENABLE == (Status.FAILED, Status.CANCELLED)
    assert set(REOPENABLE) == set(ENTRIES_RETRIED)
    assert all(status in TERMINAL and can_move(status, Status.RUNNING) for status in REOPENABLE)
