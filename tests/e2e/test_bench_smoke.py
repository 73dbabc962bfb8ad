"""`just bench --smoke`: every benchmark scenario on tiny sizes, so the scripts cannot rot.

The figures of a smoke run mean nothing; the test checks that every scenario ran
to the end and that the report holds its table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.postgres import ADMIN_DATABASE_URL
from tests.support.rabbitmq import BROKER_URL

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "1 submit",
    "2 small files",
    "3 large file",
    "4 table",
    "5 engine",
    "6 idle",
    "7 subscriptions",
    "8 dashboard",
)


@pytest.fixture(autouse=True)
def _show_logs_on_failure() -> Iterator[None]:
    """The bench starts processes of its own; the shared e2e stack is not needed here."""
    yield


@pytest.mark.timeout(330)
def test_every_scenario_runs_on_smoke_sizes(
    postgres_template: str, rabbitmq: str, media_dir: Path, tmp_path: Path
) -> None:
    # Given the services the tests use (and ffmpeg, which media_dir needs)
    out = tmp_path / "benchmarks.md"
    env = {
        **os.environ,
        "HAUL_BENCH_DATABASE_URL": ADMIN_DATABASE_URL,
        "HAUL_BENCH_BROKER_URL": BROKER_URL,
    }
    # When the smoke variant of `just bench` runs every scenario
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then it succeeds, prints its table and writes the report with a row per scenario
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert any(line.split()[:2] == ["scenario", "figure"] for line in done.stdout.splitlines())
    report = out.read_text()
    assert "| scenario | figure | haul | baseline (same run) |" in report
    for scenario in SCENARIOS:
        assert f"| {scenario} |" in report, scenario
    assert "FAILED" not in report
