"""Pacing: a minimum interval between attempt starts on one site family, fleet-wide.

A video site counts what one address asks of it; a fleet that starts every queued
item of one site at once looks like a bot. Each attempt start on a paced site
reserves the next start time (``next_start_at``) in one statement; a claim whose
slot is near waits for it, one whose slot is further is held ``site_paced`` and
released by the start before it. Only attempt starts are paced, not each HTTP
request inside an attempt (yt-dlp's own business).

The defaults below are for the video sites people report being throttled by;
every other site is not paced unless ``HAUL_SITE_MIN_INTERVAL_S`` or an admin
(``PUT /v1/sites/{host}``) says so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Pacing:
    """A site's interval between attempt starts, and how much randomness it gets."""

    #: The minimum interval between two attempt starts.
    interval_s: float
    #: Each interval is lengthened by up to this fraction of it, at random.
    jitter: float = 0.5

    @property
    def paced(self) -> bool:
        return self.interval_s > 0

    def gap(self, draw: float | None = None) -> timedelta:
        """The interval before the next start: ``interval_s`` plus up to ``jitter`` of it.

        ``draw`` (0 to 1) replaces the random draw, for tests.
        """
        r = random.random() if draw is None else draw  # noqa: S311 (jitter, not a secret)
        return timedelta(seconds=self.interval_s * (1 + self.jitter * r))

    @property
    def longest_gap(self) -> timedelta:
        return timedelta(seconds=self.interval_s * (1 + self.jitter))


#: Site families paced by default: YouTube lets a guest a few hundred videos an hour.
DEFAULTS: dict[str, Pacing] = {
    "youtube.com": Pacing(5.0),
    **{
        family: Pacing(2.0)
        for family in (
            "vimeo.com",
            "dailymotion.com",
            "twitch.tv",
            "tiktok.com",
            "instagram.com",
            "twitter.com",
            "facebook.com",
            "reddit.com",
            "soundcloud.com",
            "bilibili.com",
            "nicovideo.jp",
        )
    },
}


def pacing_of(
    site: str | None,
    own_interval_s: float | None,
    own_jitter: float | None,
    default_interval_s: float,
    default_jitter: float,
) -> Pacing:
    """A site's pacing: its own setting, else the built-in default for it, else the deployment's."""
    base = DEFAULTS.get(site or "", Pacing(default_interval_s, default_jitter))
    return Pacing(
        base.interval_s if own_interval_s is None else own_interval_s,
        base.jitter if own_jitter is None else own_jitter,
    )
