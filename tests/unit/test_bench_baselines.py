"""The bench's bare baselines carry none of haul: otherwise a ratio against them flatters
haul (an idle baseline that has loaded SQLAlchemy weighs nearly what haul's API does).

Each check imports the baseline in a fresh interpreter, as uvicorn or dramatiq would.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from service.dispatch import MAX_PRIORITY
from tests.support.paths import REPO

HAULS = {"service", "actors", "sqlalchemy", "sqlmodel", "psycopg", "structlog", "yt_dlp"}


def _import(module: str) -> tuple[list[str], int]:
    code = (
        f"import sys, {module}; "
        f"print((sorted({{m.split('.')[0] for m in sys.modules}} & {HAULS!r}), "
        f"{module}.MAX_PRIORITY))"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    loaded, priority = ast.literal_eval(out)
    return loaded, priority


@pytest.mark.parametrize("module", ["bench.bare_api", "bench.bare_worker"])
def test_a_bare_baseline_loads_nothing_of_haul_but_uses_its_priorities(module: str) -> None:
    loaded, priority = _import(module)
    # Neither haul nor its database, logging or download libraries are in its memory
    assert loaded == []
    # and its broker has priority queues of haul's range
    assert priority == MAX_PRIORITY
