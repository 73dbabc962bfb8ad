"""``GET /v1/ytdlp`` (admin): the yt-dlp versions the fleet runs, and how each one fared."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from pydantic import BaseModel, Field

from service.api.problems import documented
from service.db.models import Client
from service.domain.ytdlp import VersionStats
from service.fleet.versions import FleetVersions, HostView, fleet_versions
from service.runtime import Runtime

#: The default window: one day of attempts.
DAY_S = 86_400


class HostOut(BaseModel):
    """A worker machine, as its worker processes last reported it."""

    host: str = Field(description="HAUL_HOST_NAME of the machine.")
    ytdlp_version: str = Field(description="The version its worker processes run.")
    ytdlp_installed: str | None = Field(
        description="The version installed in their environment (as pip spells it)."
    )
    reload_pending: bool = Field(
        description="Another version is installed than the one the processes run: they "
        "have not been reloaded since an install."
    )
    ejs_version: str | None = Field(description="yt-dlp-ejs (the challenge solver scripts).")
    deno_version: str | None = Field(description="The JavaScript runtime; null: none found.")
    since: datetime = Field(description="When the host was first seen on this yt-dlp version.")
    last_seen_at: datetime
    alive: bool = Field(description="Reported within the last three report intervals.")

    @classmethod
    def of(cls, view: HostView) -> HostOut:
        s = view.seen
        return cls(
            host=s.host,
            ytdlp_version=s.ytdlp_version,
            ytdlp_installed=s.ytdlp_installed,
            reload_pending=view.reload_pending,
            ejs_version=s.ejs_version,
            deno_version=s.deno_version,
            since=s.since,
            last_seen_at=s.last_seen_at,
            alive=view.alive,
        )


class VersionOut(BaseModel):
    """How the attempts one yt-dlp version ran in the window ended."""

    version: str = Field(description="A yt-dlp version; 'unknown' for attempts without one.")
    hosts: list[str] = Field(description="Live hosts running it now.")
    attempts: int = Field(ge=0, description="Attempts that ended in the window.")
    success_rate: float | None = Field(
        ge=0,
        le=1,
        description="Succeeded of those that succeeded, failed or were retried (handed back "
        "and abandoned attempts say nothing about the version); null without any.",
    )
    outcomes: dict[str, int] = Field(description="Attempts by outcome.")
    error_classes: dict[str, int] = Field(
        description="Attempts that did not succeed, by error class, most frequent first."
    )

    @classmethod
    def of(cls, stats: VersionStats) -> VersionOut:
        return cls(
            version=stats.version,
            hosts=stats.hosts,
            attempts=stats.attempts,
            success_rate=stats.success_rate,
            outcomes=stats.outcomes,
            error_classes=stats.error_classes,
        )


class FleetVersionsOut(BaseModel):
    window_s: int
    hosts: list[HostOut]
    versions: list[VersionOut] = Field(description="Newest version first.")

    @classmethod
    def of(cls, view: FleetVersions) -> FleetVersionsOut:
        return cls(
            window_s=int(view.window.total_seconds()),
            hosts=[HostOut.of(h) for h in view.hosts],
            versions=[VersionOut.of(v) for v in view.versions],
        )


class YtdlpController(Controller):
    path = "/v1/ytdlp"
    tags = ["control"]

    @get("/", sync_to_thread=True, responses=documented(403, 422))
    def versions(
        self,
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
        window_s: Annotated[int, QueryParameter(ge=60, le=90 * DAY_S)] = DAY_S,
    ) -> FleetVersionsOut:
        """Each worker host's yt-dlp, and each version's attempts over the last ``window_s``
        seconds: compare a version's success rate before rolling it out further."""
        view = fleet_versions(runtime, client, timedelta(seconds=window_s))
        return FleetVersionsOut.of(view)
