"""Site families: the hosts that share one identity (cookies, accounts) on the web.

``youtube.com``, ``www.youtube.com``, ``music.youtube.com`` and ``youtu.be`` are one
site to the people who run it and to its rate limits: a sign-in on one is a sign-in
on all. A family is named by its registrable domain (the last two labels, or three
under a known two-label public suffix such as ``co.uk``), after a small table of
aliases maps a site's other domains (short links, embeds) to its main one. No
public-suffix list is shipped: a family that comes out too wide or too narrow for
an unusual domain is fixed by a line in these tables.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

#: Other registrable domains of a site, mapped to the one its family is named by.
ALIASES: dict[str, str] = {
    "youtu.be": "youtube.com",
    "youtube-nocookie.com": "youtube.com",
    "ytimg.com": "youtube.com",
    "googlevideo.com": "youtube.com",
    "x.com": "twitter.com",
    "twimg.com": "twitter.com",
    "redd.it": "reddit.com",
    "fb.watch": "facebook.com",
    "instagr.am": "instagram.com",
}

#: Public suffixes of two labels under which a registrable domain has three.
_TWO_LABEL_SUFFIXES = frozenset(
    f"{second}.{tld}"
    for tld in ("uk", "jp", "au", "nz", "br", "in", "kr", "za", "il", "tr", "mx", "ar", "cn")
    for second in ("co", "com", "ac", "gov", "net", "org", "ne", "or", "edu")
)

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class NotASite(ValueError):
    """Not a host name a site family can be named from."""


def family_of_host(host: str) -> str:
    """The site family of a host name (or an IP address, which is its own family).

    Raises :class:`NotASite` for anything that is not a host name.
    """
    name = host.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise NotASite(f"{host!r} is not a host name")
    keep = 3 if ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES else 2
    registrable = ".".join(labels[-keep:])
    if name in ALIASES:
        return ALIASES[name]
    return ALIASES.get(registrable, registrable)


def family_of_url(url: str) -> str | None:
    """The site family a URL downloads from; None when it names no host."""
    host = urlsplit(url).hostname
    if not host:
        return None
    try:
        return family_of_host(host)
    except NotASite:
        return None


def in_family(domain: str, family: str) -> bool:
    """Whether a cookie's domain (``.youtube.com``, ``youtu.be``) belongs to ``family``."""
    try:
        return family_of_host(domain.lstrip(".")) == family
    except NotASite:
        return False
