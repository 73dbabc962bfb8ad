"""yt-dlp releases: which one to install, and how each version the fleet ran has fared.

A release is named by its date (``2026.10.26``, a hotfix ``2026.10.26.1``); PyPI's
nightly builds add a time and ``.dev0`` (``2026.11.02.233024.dev0``). ``haul ytdlp
update`` installs a :class:`Target` with pip; ``GET /v1/ytdlp`` folds the attempts of a
window, counted per version and outcome, into :class:`VersionStats`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

from service.domain.states import AttemptOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable

#: What haul installs: yt-dlp with the extras real sites need (EJS scripts, AES, ...).
REQUIREMENT = "yt-dlp[default]"
#: The first release that solves YouTube's challenges with EJS in a runtime; haul's
#: toolchain check imports what it added, so a worker on an older one would not start.
OLDEST = date(2025, 11, 12)

_VERSION = re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})(?:\.\d+)*(?:\.dev\d+)?")

#: The outcomes that say something about the version: handed back (a worker shut down)
#: and abandoned (cancelled, deleted, taken over) do not count for or against it.
JUDGED = (AttemptOutcome.SUCCEEDED, AttemptOutcome.FAILED, AttemptOutcome.RETRY)


class Channel(StrEnum):
    """Where a new yt-dlp comes from: PyPI's newest release, or its newest nightly."""

    STABLE = "stable"
    NIGHTLY = "nightly"


class BadTarget(ValueError):
    """Not a channel (stable, nightly) nor a yt-dlp version haul can run."""


@dataclass(frozen=True)
class Target:
    """What to install: a channel's newest, or one exact version."""

    channel: Channel | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        """``stable``, ``nightly`` or a version such as ``2026.10.26`` (2025.11.12 or newer)."""
        word = text.strip().lower()
        if word in {c.value for c in Channel}:
            return cls(channel=Channel(word))
        released = release_date(word)
        if released is None:
            raise BadTarget(
                f"{text!r} is neither a channel (stable, nightly) nor a yt-dlp version "
                "such as 2026.10.26"
            )
        if released < OLDEST:
            raise BadTarget(
                f"yt-dlp {word} is older than {OLDEST:%Y.%m.%d}, the first release haul runs "
                "(it solves YouTube's JavaScript challenges)"
            )
        return cls(version=word)

    def pip_arguments(self) -> list[str]:
        """The arguments of ``pip install`` that install it (with the ``default`` extras)."""
        if self.version is not None:
            return [f"{REQUIREMENT}=={self.version}"]
        pre = ["--pre"] if self.channel is Channel.NIGHTLY else []
        return ["--upgrade", *pre, REQUIREMENT]

    def __str__(self) -> str:
        return self.version or str(self.channel)


def release_date(version: str) -> date | None:
    """The date a yt-dlp version was released, or None for what is not a yt-dlp version."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def is_nightly(version: str) -> bool:
    return ".dev" in version


def same_version(a: str | None, b: str | None) -> bool:
    """Whether two spellings name one release: yt-dlp says ``2025.12.08`` (a nightly
    ``2025.12.08.220202``) where pip says ``2025.12.8`` (``2025.12.8.220202.dev0``)."""
    if a is None or b is None:
        return a == b
    return _numbers(a.split(".dev")[0]) == _numbers(b.split(".dev")[0])


@dataclass
class VersionStats:
    """How the attempts one yt-dlp version ran in a window ended."""

    version: str
    #: Attempts by outcome (``succeeded``, ``failed``, ``retry``, ``abandoned``,
    #: ``handed_back``); an attempt still running has none and is not counted.
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Attempts that did not succeed, by error class.
    error_classes: dict[str, int] = field(default_factory=dict)
    #: The hosts that report running this version now.
    hosts: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return sum(self.outcomes.values())

    @property
    def judged(self) -> int:
        return sum(self.outcomes.get(o.value, 0) for o in JUDGED)

    @property
    def success_rate(self) -> float | None:
        """Succeeded of the attempts that succeeded, failed or were retried; None without any."""
        judged = self.judged
        return None if not judged else self.outcomes.get(AttemptOutcome.SUCCEEDED, 0) / judged


def fold(
    counts: Iterable[tuple[str | None, str, str | None, int]],
    hosts: Iterable[tuple[str, str | None]] = (),
) -> list[VersionStats]:
    """Attempt counts by (version, outcome, error class) and the hosts' versions, per version.

    Newest version first (by release date; unknown names last). Attempts recorded without
    a version (before versions were kept) are listed as ``unknown``.
    """
    stats: dict[str, VersionStats] = {}

    def of(version: str | None) -> VersionStats:
        name = version or "unknown"
        return stats.setdefault(name, VersionStats(name))

    for version, outcome, error_class, n in counts:
        entry = of(version)
        entry.outcomes[outcome] = entry.outcomes.get(outcome, 0) + n
        if error_class is not None and outcome != AttemptOutcome.SUCCEEDED:
            entry.error_classes[error_class] = entry.error_classes.get(error_class, 0) + n
    for host, version in hosts:
        of(version).hosts.append(host)
    for entry in stats.values():
        entry.hosts.sort()
        entry.error_classes = dict(sorted(entry.error_classes.items(), key=lambda kv: -kv[1]))

    known = sorted(
        (e for e in stats.values() if release_date(e.version) is not None),
        key=lambda e: _numbers(e.version),
        reverse=True,
    )
    return known + sorted(
        (e for e in stats.values() if release_date(e.version) is None), key=lambda e: e.version
    )


def _numbers(version: str) -> tuple[int, ...]:
    """A version's numbers in order: a day's nightly (more numbers) sorts after its release."""
    return tuple(int(part) for part in re.findall(r"\d+", version))
