"""Lend a job's cookies to one attempt, and keep what the site rotated them to.

The only place a sealed cookie file is opened. For an attempt whose job allows
cookies (``"cookies": false`` does not), the client's cookies for the URL's site
family are opened and written to ``cookies.txt`` in the attempt's work dir, mode
0600, created exclusively; yt-dlp reads it and saves its jar back into it when it
closes. Afterwards, whatever the attempt's outcome, cookies of that family that
changed are sealed again and written back over the revision that was read (a
client's upload or delete meanwhile wins), and the file is deleted.

A worker that cannot open them (no ``HAUL_SECRET_KEY``, or another one) downloads
without cookies and says so in one log line; no line, error or row carries a value.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from service.db import cookies as cookie_rows
from service.domain.cookies import Jar, parse
from service.domain.options import NormalizedOptions
from service.domain.sealing import Sealer, Unsealable
from service.domain.sites import family_of_url

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from service.db.models import Job
    from service.runtime import Runtime

log = structlog.get_logger(__name__)

FILENAME = "cookies.txt"


@dataclass(frozen=True)
class _Loan:
    site: str
    revision: int
    jar: Jar
    sealer: Sealer


@contextmanager
def lent(rt: Runtime, job: Job, workdir: Path, *, maybe: bool = True) -> Iterator[Path | None]:
    """The cookie file of this attempt, or None when it goes without cookies.

    ``maybe=False``: the claim saw that the client keeps no cookies at all, so there is
    nothing to look up."""
    loan = _borrow(rt, job) if maybe else None
    if loan is None:
        yield None
        return
    path = workdir / FILENAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(loan.jar.text())
    log.info("cookies lent", site=loan.site, count=loan.jar.count)
    try:
        yield path
    finally:
        try:
            _give_back(rt, job, loan, path)
        except Exception as exc:  # the attempt's own outcome matters more than a write-back
            log.warning("cookies not written back", site=loan.site, error=type(exc).__name__)
        finally:
            path.unlink(missing_ok=True)


def _borrow(rt: Runtime, job: Job) -> _Loan | None:
    if not NormalizedOptions.model_validate(job.options).cookies:
        return None
    site = family_of_url(job.url)
    if site is None:
        return None
    with rt.db.session() as session:
        held = cookie_rows.held(session, job.client_id, site)
    if held is None:
        return None
    secrets = rt.settings.cookie_secrets
    if not secrets:
        log.warning("cookies kept but not used: this worker has no HAUL_SECRET_KEY", site=site)
        return None
    sealer = Sealer(secrets)
    try:
        text = sealer.open(held.sealed)
    except Unsealable:
        log.warning("cookies kept but not used: sealed under a key this worker lacks", site=site)
        return None
    jar = parse(text, family=site, now=time.time(), strict=False)
    if not jar.count:
        log.info("cookies kept but all expired", site=site)
        return None
    return _Loan(site=site, revision=held.revision, jar=jar, sealer=sealer)


def _give_back(rt: Runtime, job: Job, loan: _Loan, path: Path) -> None:
    """Write back the family's cookies as yt-dlp left them, when they changed."""
    if not path.is_file():
        return
    after = parse(path.read_text(encoding="utf-8"), family=loan.site, now=time.time(), strict=False)
    if not after.count or set(after.cookies) == set(loan.jar.cookies):
        return  # unchanged, or emptied (kept as they were: the client may look and upload)
    with rt.db.session() as session:
        written = cookie_rows.write_back(
            session,
            job.client_id,
            loan.site,
            revision=loan.revision,
            sealed=loan.sealer.seal(after.text()),
            count=after.count,
            earliest_expiry=after.earliest_expiry,
        )
    log.info("cookies rotated", site=loan.site, count=after.count, written=written)
