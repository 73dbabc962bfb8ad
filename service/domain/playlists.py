"""Playlist trees: a parent job and its entries (one child download job each).

A parent stays ``running`` while any entry is active, and ends by what its
entries did (:func:`parent_outcome`, applied by ``db/trees.py``). What lives here is the
arithmetic and the rules the API and the retry share: how far a playlist has
got, and which entries a retry of the playlist puts back in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.domain.errors import ErrorClass
from service.domain.states import ACTIVE, TERMINAL, Status, sources

if TYPE_CHECKING:
    from collections.abc import Mapping

#: What a retry of an ended playlist puts back in the queue, by how it ended: a
#: failed one its failed entries; a cancelled one also the entries the cancel
#: stopped, so retrying it resumes the playlist. Entries a user cancelled one by
#: one under a playlist that failed stay cancelled.
ENTRIES_RETRIED: dict[Status, tuple[Status, ...]] = {
    Status.FAILED: (Status.FAILED,),
    Status.CANCELLED: (Status.FAILED, Status.CANCELLED),
}

#: The ended states a parent is reopened from (back to awaiting its entries)
#: when one of its entries is queued again.
REOPENABLE: tuple[Status, ...] = tuple(s for s in sources(Status.RUNNING) if s in TERMINAL)


@dataclass(frozen=True)
class Children:
    """A parent's entries: how many stand in each state, and how far they have got together."""

    counts: Mapping[Status, int] = field(default_factory=dict)
    #: The sum of the running entries' own progress fractions.
    running_progress: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def active(self) -> bool:
        """Whether any entry may still run; the parent ends only once none is."""
        return any(self.counts.get(s, 0) for s in ACTIVE)

    @property
    def progress(self) -> float:
        """The fraction of the playlist's work that is over, 0 to 1.

        An ended entry counts as done whatever its outcome: a failed or cancelled
        entry is no work left, so a playlist that ended is at 1 even when it
        failed. A running entry counts its own fraction; a queued or retrying one
        counts nothing (a retry starts its download again).
        """
        if not self.total:
            return 0.0
        ended = sum(n for s, n in self.counts.items() if s in TERMINAL)
        return min(1.0, (ended + self.running_progress) / self.total)

    def as_dict(self) -> dict[str, Any]:
        """The shape the API and the webhook event show: total, progress, a count per state."""
        return {
            "total": self.total,
            "progress": self.progress,
            **{s.value: self.counts.get(s, 0) for s in Status},
        }


@dataclass(frozen=True)
class ParentOutcome:
    """How a playlist ends once none of its entries is active."""

    status: Status
    error_class: ErrorClass | None = None
    error_message: str | None = None


def parent_outcome(entries: Children) -> ParentOutcome:
    """``failed`` if any entry failed, ``cancelled`` if none succeeded, else ``succeeded``.

    A failed entry fails the playlist, so a user sees that something needs a retry;
    a playlist whose every entry was cancelled was cancelled; an empty one (no entry
    left) succeeded with nothing to do.
    """
    failed = entries.counts.get(Status.FAILED, 0)
    if failed:
        return ParentOutcome(
            Status.FAILED,
            error_class=ErrorClass.CHILDREN_FAILED,
            error_message=f"{failed} of {entries.total} entries failed",
        )
    if entries.counts.get(Status.SUCCEEDED, 0) == 0 and entries.total > 0:
        return ParentOutcome(Status.CANCELLED)
    return ParentOutcome(Status.SUCCEEDED)
