"""The scenarios, in the order ``just bench`` runs them.

Each module has ``TITLE`` and ``run(ctx, sizes) -> Outcome``; they are imported
only when run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

SCENARIOS = {
    "submit": "submit",
    "small": "small_files",
    "large": "large_file",
    "table": "table",
    "engine": "engine",
    "idle": "idle",
    "subscriptions": "subscription_check",
    "dashboard": "dashboard",
}


def load(name: str) -> ModuleType:
    return importlib.import_module(f"bench.scenarios.{SCENARIOS[name]}")
