"""``GET /v1/ytdlp``: which yt-dlp each worker host runs, and how each version fared.

The hosts are the ``worker_hosts`` rows their worker processes report; one silent for
three report intervals is shown as gone, not hidden (a host that was updated and
stopped still explains its attempts). The versions are the attempts that ended in the
window, counted per version by outcome and error class (``domain/ytdlp.py: fold``):
what an operator compares during a staged rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.db import attempts as attempt_rows
from service.db import hosts as host_rows
from service.domain.ytdlp import VersionStats, fold, same_version
from service.fleet.admin import require_admin

if TYPE_CHECKING:
    from datetime import timedelta

    from service.db.hosts import Seen
    from service.db.models import Client
    from service.runtime import Runtime

#: A host silent for this many report intervals is shown as gone.
SILENT_REPORTS = 3


@dataclass(frozen=True)
class HostView:
    seen: Seen
    alive: bool

    @property
    def reload_pending(self) -> bool:
        """Another yt-dlp is installed than the one the host's processes imported."""
        installed = self.seen.ytdlp_installed
        return installed is not None and not same_version(self.seen.ytdlp_version, installed)


@dataclass(frozen=True)
class FleetVersions:
    window: timedelta
    hosts: list[HostView]
    versions: list[VersionStats]


def fleet_versions(rt: Runtime, client: Client, window: timedelta) -> FleetVersions:
    require_admin(client, "the fleet's yt-dlp")
    with rt.db.session() as session:
        seen = host_rows.seen(session)
        counts = attempt_rows.by_version(session, window)
    silent = SILENT_REPORTS * rt.settings.host_report_s
    hosts = [HostView(h, alive=h.silent_s <= silent) for h in seen]
    running = [(h.seen.host, h.seen.ytdlp_version) for h in hosts if h.alive]
    return FleetVersions(window, hosts, fold(counts, running))
