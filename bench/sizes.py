"""How big each scenario runs: the full suite (``just bench``) or the smoke variant.

The smoke variant runs every code path of the full suite on tiny sizes, so the
scripts cannot rot; its figures mean nothing and are never compared to targets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Every knob that trades precision for time."""

    smoke: bool
    #: Measured runs per side (their median is reported, with min–max as spread).
    runs: int
    # 1. submit path
    submit_warmup_s: float
    submit_seconds: float
    submit_connections: int
    submit_rate: int
    # 2. small files
    small_files: int
    small_warmup: int
    # 3. one large file
    large_bytes: int
    # 4. table scale
    table_rows: int
    table_repeats: int
    # 5. engine ceiling
    engine_messages: int
    engine_jobs: int
    profile_seconds: float
    # 8. dashboard first render
    dashboard_jobs: int


FULL = Sizes(
    smoke=False,
    runs=3,
    submit_warmup_s=3.0,
    submit_seconds=8.0,
    submit_connections=16,
    submit_rate=200,
    small_files=200,
    small_warmup=8,
    large_bytes=1024**3,
    table_rows=1_000_000,
    table_repeats=30,
    engine_messages=30_000,
    engine_jobs=2_000,
    profile_seconds=10.0,
    dashboard_jobs=100_000,
)

SMOKE = Sizes(
    smoke=True,
    runs=1,
    submit_warmup_s=0.2,
    submit_seconds=0.5,
    submit_connections=4,
    submit_rate=50,
    small_files=2,
    small_warmup=2,
    large_bytes=8 * 1024**2,
    table_rows=2_000,
    table_repeats=3,
    engine_messages=1_000,
    engine_jobs=30,
    profile_seconds=1.0,
    dashboard_jobs=1_000,
)
