"""Medians, spreads and percentiles: the only statistics the bench reports."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """Several runs of one figure; reported as the median with min–max as spread."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, *values: float) -> Sample:
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def show(self, digits: int | None = None) -> str:
        """``412`` for one run, ``412 (398–420)`` for several."""
        if len(self.values) == 1:
            return fmt(self.median, digits)
        return f"{fmt(self.median, digits)} ({fmt(self.low, digits)}–{fmt(self.high, digits)})"


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0–100), linearly interpolated between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def fmt(value: float, digits: int | None = None) -> str:
    """Three significant figures unless told otherwise; thousands separated."""
    if value != value:  # NaN
        return "n/a"
    if digits is None:
        magnitude = abs(value)
        digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return f"{value:,.{digits}f}"
