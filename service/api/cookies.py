"""Cookies per site family: upload a Netscape cookie file, list what is kept, delete it.

Nothing here answers with a cookie's value: the list shows counts and expiry
dates only. The upload streams its body against ``HAUL_COOKIE_FILE_MAX_BYTES``
(the app-wide body limit is lifted for this one route, which keeps its own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, delete, get, put
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import FromPath
from pydantic import BaseModel, Field

from service.api.problems import documented
from service.db.models import Client
from service.intake import cookies
from service.runtime import Runtime


class CookiesOut(BaseModel):
    """A site family's cookies as their owner may see them: never the values."""

    site: str = Field(description="The site family, e.g. youtube.com for youtu.be too.")
    count: int = Field(description="How many cookies are kept.")
    earliest_expiry: datetime | None = Field(
        description="When the first of them expires; null when all are session cookies."
    )
    updated_at: datetime


class CookiesStored(CookiesOut):
    dropped_expired: int = Field(description="Cookies of the file that had already expired.")


class CookieList(BaseModel):
    items: list[CookiesOut]


def _out(listed: Any) -> dict[str, Any]:
    return {
        "site": listed.site,
        "count": listed.count,
        "earliest_expiry": listed.earliest_expiry,
        "updated_at": listed.updated_at,
    }


class CookieController(Controller):
    path = "/v1/cookies"
    tags = ["cookies"]

    @put(
        "/{site:str}",
        request_max_body_size=None,
        responses=documented(400, 409, 413, 422),
    )
    async def upload(
        self,
        site: FromPath[str],
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> CookiesStored:
        """Keep a Netscape cookie file (``cookies.txt``) for the site's family, replacing
        what was kept. Every cookie must belong to the family; expired ones are dropped.
        Jobs of that family send them unless they say ``"cookies": false``."""
        cookies.family(site)  # a bad name is refused before the body is read
        declared = request.headers.get("content-length", "")
        if declared.isdigit():
            cookies.check_size(runtime.settings, int(declared))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            cookies.check_size(runtime.settings, len(body))
        stored = await sync_to_thread(cookies.put, runtime, client, site, bytes(body))
        return CookiesStored(**_out(stored.listed), dropped_expired=stored.dropped_expired)

    @get("/", sync_to_thread=True, responses=documented())
    def listing(
        self, runtime: NamedDependency[Runtime], client: NamedDependency[Client]
    ) -> CookieList:
        """The site families you keep cookies for, with counts and expiry (never values)."""
        return CookieList(items=[CookiesOut(**_out(v)) for v in cookies.listed(runtime, client)])

    @delete("/{site:str}", sync_to_thread=True, responses=documented(404, 422))
    def remove(
        self,
        site: FromPath[str],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> None:
        """Delete the cookies kept for the site's family."""
        cookies.remove(runtime, client, site)
