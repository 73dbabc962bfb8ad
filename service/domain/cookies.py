"""Netscape cookie files (``cookies.txt``): read strictly from a client, leniently from yt-dlp.

A client uploads the cookies of one site family; every cookie must belong to it,
expired ones are dropped, and what is kept is written back out in the one form
Python's (and yt-dlp's) cookie jar loads without complaint: a domain starts with a
dot exactly when its cookie covers subdomains. That matters: a line the jar
refuses ends up, value and all, in yt-dlp's error message.

Errors name line numbers and domains, never a cookie's name or value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.domain.sites import in_family

#: Most cookies one site family may hold (a browser keeps a few hundred per domain at most).
MAX_COOKIES = 1_000
#: Longest name plus value of one cookie, as browsers bound it.
MAX_COOKIE_BYTES = 4_096

HEADER = "# Netscape HTTP Cookie File\n# Written by haul for one attempt; do not edit.\n\n"
_HTTP_ONLY = "#HttpOnly_"
_FLAG = {"TRUE": True, "FALSE": False}
_EXPIRES = re.compile(r"\d{1,12}(\.\d*)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f;]")
_NAME_BAD = re.compile(r"[\x00-\x20\x7f;=,]")


class CookieFileInvalid(ValueError):
    """The file is not a Netscape cookie file of this site family."""


@dataclass(frozen=True)
class Cookie:
    """One cookie. ``expires`` is a Unix time; 0 means a session cookie (no expiry)."""

    domain: str
    path: str
    secure: bool
    expires: int
    name: str
    value: str
    #: Kept in the file, not compared: yt-dlp's jar forgets it when it saves.
    http_only: bool = field(default=False, compare=False)

    @property
    def subdomains(self) -> bool:
        return self.domain.startswith(".")

    def line(self) -> str:
        prefix = _HTTP_ONLY if self.http_only else ""
        flags = ("TRUE" if self.subdomains else "FALSE", "TRUE" if self.secure else "FALSE")
        fields = (prefix + self.domain, flags[0], self.path, flags[1], str(self.expires))
        return "\t".join((*fields, self.name, self.value))


@dataclass(frozen=True)
class Jar:
    """The cookies kept from a file, and how many were dropped as expired."""

    cookies: tuple[Cookie, ...]
    dropped_expired: int = 0

    @property
    def count(self) -> int:
        return len(self.cookies)

    @property
    def earliest_expiry(self) -> datetime | None:
        """When the first of these cookies expires; None when all are session cookies."""
        times = [c.expires for c in self.cookies if c.expires]
        return datetime.fromtimestamp(min(times), UTC) if times else None

    def text(self) -> str:
        """The Netscape file of these cookies, as yt-dlp's ``cookiefile`` reads it."""
        return HEADER + "".join(f"{c.line()}\n" for c in self.cookies)


def parse(text: str, *, family: str, now: float, strict: bool = True) -> Jar:
    """The cookies of ``family`` in a Netscape file, expired ones dropped.

    ``strict`` (a client's upload): any malformed line, a cookie of another site,
    too many cookies or none left is :class:`CookieFileInvalid`. Not strict (the
    file yt-dlp wrote back): such lines are skipped, nothing is refused.
    """
    kept: dict[tuple[str, str, str], Cookie] = {}
    problems: list[str] = []
    foreign: set[str] = set()
    expired = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            cookie = _cookie(raw)
        except CookieFileInvalid as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if cookie is None:
            continue
        if not in_family(cookie.domain, family):
            foreign.add(cookie.domain)
            continue
        if cookie.expires and cookie.expires <= now:
            expired += 1
            continue
        kept[(cookie.domain, cookie.path, cookie.name)] = cookie
    if strict:
        _refuse(problems, foreign, family, len(kept), expired)
    return Jar(cookies=tuple(kept.values()), dropped_expired=expired)


def _refuse(problems: list[str], foreign: set[str], family: str, kept: int, expired: int) -> None:
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CookieFileInvalid("; ".join(problems[:5]) + more)
    if foreign:
        names = ", ".join(sorted(foreign)[:10])
        raise CookieFileInvalid(
            f"cookies of other sites than {family}: {names}; upload each site's cookies "
            "under its own name"
        )
    if kept > MAX_COOKIES:
        raise CookieFileInvalid(f"{kept} cookies; at most {MAX_COOKIES} are kept per site")
    if not kept:
        if expired:
            raise CookieFileInvalid(f"all {expired} cookies in the file have expired")
        raise CookieFileInvalid("the file holds no cookies")


def _cookie(raw: str) -> Cookie | None:
    """One line as a cookie; None for a comment or a blank line."""
    line = raw.rstrip("\r\n")
    http_only = line.startswith(_HTTP_ONLY)
    if http_only:
        line = line[len(_HTTP_ONLY) :]
    if not line.strip() or line.startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) != 7:
        hint = " (a JSON export? haul takes the Netscape cookies.txt format)"
        json_like = line.lstrip()[:1] in ("[", "{")
        raise CookieFileInvalid(
            f"expected 7 tab-separated fields, found {len(fields)}{hint if json_like else ''}"
        )
    domain, subdomains, path, secure, expires, name, value = fields
    domain = domain.strip().lower()
    if subdomains.upper() not in _FLAG or secure.upper() not in _FLAG:
        raise CookieFileInvalid("the 2nd and 4th fields must be TRUE or FALSE")
    if not _EXPIRES.fullmatch(expires.strip()):
        raise CookieFileInvalid("the expiry (5th field) must be a Unix time")
    if not domain.lstrip(".") or not path.startswith("/") or _CONTROL.search(domain + path):
        raise CookieFileInvalid("a cookie needs a domain and a path starting with /")
    if not name or _NAME_BAD.search(name) or _CONTROL.search(value):
        raise CookieFileInvalid("the cookie's name or value has characters a cookie cannot have")
    if len(name.encode()) + len(value.encode()) > MAX_COOKIE_BYTES:
        raise CookieFileInvalid(f"a cookie is longer than {MAX_COOKIE_BYTES} bytes")
    if _FLAG[subdomains.upper()] and not domain.startswith("."):
        domain = f".{domain}"  # the jar ties "covers subdomains" to the leading dot
    return Cookie(
        domain=domain,
        path=path,
        secure=_FLAG[secure.upper()],
        expires=int(float(expires)),
        name=name,
        value=value,
        http_only=http_only,
    )
