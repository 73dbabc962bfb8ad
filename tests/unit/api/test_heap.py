"""The served API freezes the heap it built at startup, so a full garbage collection does
not walk it (each one paused the process for 80 to 90 ms); apps built by tests do not."""

from __future__ import annotations

import gc

from service.api import app as served
from service.api.app import create_app, freeze_heap


def test_the_served_app_freezes_its_startup_heap_and_other_apps_do_not() -> None:
    assert freeze_heap in served.app.on_startup
    assert freeze_heap not in create_app(runtime=None).on_startup


def test_freezing_takes_the_live_objects_out_of_the_collectors_sight() -> None:
    assert gc.get_freeze_count() == 0
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
