"""A client's cookies per site family: upload (validated, then sealed), list, delete, rotate.

The API only seals: a cookie's value passes through an API process once, on its
way in, and is never sent back; the workers open them (``service/work/cookies.py``).
The one exception is ``rotate`` (``haul cookies rotate``), which re-seals tokens
under a new key without looking at them. Refusals name line numbers and domains,
never a value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from service.db import cookies as cookie_rows
from service.domain.cookies import CookieFileInvalid, parse
from service.domain.sealing import Sealer
from service.domain.sites import NotASite, family_of_host
from service.errors import BadRequest, Conflict, InvalidInput, NotFound, TooLarge

if TYPE_CHECKING:
    from service.db.cookies import Listed
    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Stored:
    """What an upload kept (the row, filed under the site's family) and what it dropped."""

    listed: Listed
    dropped_expired: int


def family(site: str) -> str:
    """The site family a client names in the path (``www.youtube.com`` -> ``youtube.com``)."""
    try:
        return family_of_host(site)
    except NotASite as exc:
        raise InvalidInput(f"site: {exc}") from exc


def sealer(settings: Settings) -> Sealer:
    """The sealer of this deployment; :class:`Conflict` when no ``HAUL_SECRET_KEY`` is set."""
    secrets = settings.cookie_secrets
    if not secrets:
        raise Conflict(
            "storing cookies needs HAUL_SECRET_KEY set on the API and the workers "
            "(docs/operations.md, 'Cookies')"
        )
    return Sealer(secrets)


def check_size(settings: Settings, size: int) -> None:
    """:class:`TooLarge` past ``HAUL_COOKIE_FILE_MAX_BYTES`` (checked as the body streams in)."""
    limit = settings.cookie_file_max_bytes
    if size > limit:
        raise TooLarge(
            f"the cookie file is larger than {limit} bytes",
            limit="cookie_file_max_bytes",
            value=limit,
        )


def put(rt: Runtime, client: Client, site: str, body: bytes) -> Stored:
    """Validate a Netscape cookie file for ``site``'s family, seal it and store it,
    replacing what the client had for that family."""
    name = family(site)
    check_size(rt.settings, len(body))
    seal = sealer(rt.settings)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("the cookie file is not UTF-8 text") from exc
    try:
        jar = parse(text, family=name, now=time.time())
    except CookieFileInvalid as exc:
        raise InvalidInput(f"cookie file: {exc}") from exc
    with rt.db.session() as session:
        listed = cookie_rows.put(
            session,
            client.id,
            name,
            sealed=seal.seal(jar.text()),
            count=jar.count,
            earliest_expiry=jar.earliest_expiry,
        )
    log.info("cookies stored", client_id=str(client.id), site=name, count=jar.count)
    return Stored(listed, jar.dropped_expired)


def listed(rt: Runtime, client: Client) -> list[Listed]:
    with rt.db.session() as session:
        return cookie_rows.listed(session, client.id)


def remove(rt: Runtime, client: Client, site: str) -> None:
    name = family(site)
    with rt.db.session() as session:
        found = cookie_rows.remove(session, client.id, name)
    if not found:
        raise NotFound(f"no cookies stored for {name}")
    log.info("cookies removed", client_id=str(client.id), site=name)


def rotate(rt: Runtime) -> int:
    """Seal every client's cookies again under the current ``HAUL_SECRET_KEY`` (after a
    rotation that listed the old key in ``HAUL_OLD_SECRET_KEYS``); how many were rewritten."""
    seal = sealer(rt.settings)
    with rt.db.session() as session:
        return cookie_rows.reseal_all(session, seal.reseal)
