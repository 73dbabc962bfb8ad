"""A worker process's host report (service/work/host.py) against real PostgreSQL: what it
writes at start, that it beats, and that a database outage does not stop it."""

from __future__ import annotations

import importlib.metadata
import json
import os
from typing import TYPE_CHECKING

import pytest

from service.db import hosts as host_rows
from service.runtime import build_runtime
from service.work.host import HostReporter
from tests.support.network import free_port
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def _seen(runtime: Runtime) -> list[host_rows.Seen]:
    with runtime.db.session() as session:
        return host_rows.seen(session)


def test_a_worker_reports_its_toolchain_and_notes_its_run_then_beats(
    settings: Settings, tmp_path: Path
) -> None:
    # Given a worker process of host-a that reports every 0.2 s
    quick = settings.model_copy(
        update={"host_name": "host-a", "host_report_s": 0.2, "run_dir": tmp_path / "runs"}
    )
    rt = build_runtime(quick)
    reporter = HostReporter(rt)
    try:
        # When it starts
        reporter.start()
        (first,) = _seen(rt)

        # Then the host's row names the yt-dlp it imported, the installed one, EJS and Deno
        version = importlib.metadata.version("yt-dlp")
        assert (first.host, first.ytdlp_version, first.ytdlp_installed) == (
            "host-a",
            version,
            version,
        )
        assert first.ejs_version == reporter.toolchain.ejs is not None
        assert first.deno_version == reporter.toolchain.deno_version is not None
        # and its run is noted for `haul ytdlp update` under its Dramatiq main (its parent)
        note = json.loads((quick.run_dir / f"{os.getppid()}.json").read_text())
        assert (note["host"], note["ytdlp"]) == ("host-a", version)
        # and it reports again on its beat
        wait_for(
            lambda: _seen(rt)[0].last_seen_at > first.last_seen_at,
            timeout=10,
            what="a second report",
        )
    finally:
        reporter.stop()
        rt.broker.close()
        rt.db.dispose()


def test_a_report_that_cannot_reach_the_database_is_logged_not_raised(
    settings: Settings,
) -> None:
    # Given a worker whose database does not answer
    away = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/haul"}
    )
    rt = build_runtime(away)
    try:
        # Then a report fails quietly; the next beat will try again
        assert HostReporter(rt).report() is False
    finally:
        rt.broker.close()
        rt.db.dispose()
