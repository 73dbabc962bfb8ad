"""What a worker process says about its host: the yt-dlp it runs, at boot and on a beat.

Each worker process, once booted, notes its run on this machine (for ``haul ytdlp
update``, ``fleet/upgrade.py``) and reports to ``worker_hosts`` the yt-dlp version it
imported (the one its attempts record), the one installed on disk, and the EJS
scripts and Deno beside them; then again every ``HAUL_HOST_REPORT_S`` from a daemon
thread, so ``GET /v1/ytdlp`` tells a live host from one that went away. A report that
fails (the database is away) is logged and tried again on the next beat.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from service.db import hosts as host_rows
from service.fleet.upgrade import installed, note_run
from service.media import toolchain

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


class HostReporter:
    """Reports this process's toolchain for its host until stopped."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.toolchain = toolchain.report()  # runs `deno --version` once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-report", daemon=True)

    def start(self) -> None:
        try:
            note_run(self.rt.settings, self.toolchain.ytdlp)
        except OSError:
            # The worker runs on; only `haul ytdlp update` will not find it to reload.
            log.warning("could not note this run", run_dir=str(self.rt.settings.run_dir))
        self.report()
        self._thread.start()
        log.info(
            "worker host reported",
            host=self.rt.settings.host_name,
            ytdlp=self.toolchain.ytdlp,
            ejs=self.toolchain.ejs,
            deno=self.toolchain.deno_version,
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def report(self) -> bool:
        """One report; False when it could not be written."""
        tools = self.toolchain
        try:
            with self.rt.db.session() as session:
                host_rows.report(
                    session,
                    self.rt.settings.host_name,
                    ytdlp_version=tools.ytdlp,
                    ytdlp_installed=installed(),
                    ejs_version=tools.ejs,
                    deno_version=tools.deno_version,
                )
        except Exception:
            log.warning("host report failed", host=self.rt.settings.host_name, exc_info=True)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.rt.settings.host_report_s):
            self.report()
