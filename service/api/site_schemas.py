"""The shapes of ``/v1/sites``: a site family's settings, pacing and breakers."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from service.fleet.admin import BreakerView, SiteView


class SiteLimitIn(BaseModel):
    """``PUT /v1/sites/{site}``: the site family's own settings. A field left out keeps its
    value; null goes back to the default."""

    model_config = ConfigDict(extra="forbid")

    max_running: int | None = Field(
        default=None, ge=1, le=100_000, description="At most this many run at once, fleet-wide."
    )
    min_interval_s: float | None = Field(
        default=None,
        ge=0,
        le=86_400,
        description="Minimum seconds between two attempt starts on the site, fleet-wide; "
        "0: not paced.",
    )
    jitter: float | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Each interval is lengthened by up to this fraction of it, at random.",
    )

    def given(self) -> dict[str, Any]:
        """The fields the request named, with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class BreakerOut(BaseModel):
    identity: str = Field(description="guest, or client:<id> for that client's cookies")
    state: str = Field(description="closed, open or half_open")
    failures: int = Field(description="Throttled attempts in a row")
    opens: int = Field(description="Openings since the last success (the backoff grows with it)")
    opened_at: datetime | None
    retry_at: datetime | None = Field(description="When an open breaker lets one job through")
    reason: str | None = Field(description="The last throttle's error")
    cooling: int = Field(description="Jobs held site_cooling behind it")

    @classmethod
    def of(cls, view: BreakerView) -> BreakerOut:
        return cls(**asdict(view))


class SiteOut(BaseModel):
    site: str = Field(description="A site family (youtu.be and www.youtube.com: youtube.com)")
    max_running: int | None = Field(description="Its own limit; null: HAUL_SITE_MAX_RUNNING")
    running: int
    min_interval_s: float = Field(description="The pacing in force (0: not paced)")
    jitter: float
    own_min_interval_s: float | None = Field(description="Its own pacing; null: the default")
    own_jitter: float | None
    next_start_at: datetime | None = Field(description="When the next attempt may start")
    breakers: list[BreakerOut]

    @classmethod
    def of(cls, view: SiteView) -> SiteOut:
        fields = asdict(view)
        fields["breakers"] = [BreakerOut.of(b) for b in view.breakers]
        return cls(**fields)


class SiteList(BaseModel):
    items: list[SiteOut]
