"""What a source URL must look like before it is accepted.

This is the up-front check the API can make without the network. The egress
policy that resolves hosts happens at connect time in the worker.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from service.domain.egress import literal_ip

if TYPE_CHECKING:
    from service.domain.egress import EgressPolicy

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})


class UrlRejected(ValueError):
    """The URL is not acceptable; the message says why, for a person."""


def normalize_url(raw: str) -> str:
    """Return the canonical form of an acceptable URL, or raise :class:`UrlRejected`."""
    url = raw.strip()
    if not url:
        raise UrlRejected("url is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRejected(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise UrlRejected("url contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRejected(f"url is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = scheme or "none"
        raise UrlRejected(f"url scheme must be http or https, not {shown}")
    if not parts.hostname:
        raise UrlRejected("url has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRejected("url must not carry credentials")
    if "__youtubedl_smuggle" in parts.fragment or "__youtubedl_smuggle" in parts.query:
        raise UrlRejected("url carries a yt-dlp smuggle fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    # The fragment never reaches the server; dropping it keeps equal URLs equal.
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def refuse_non_public_literal(url: str, policy: EgressPolicy) -> None:
    """Refuse a host written as a non-public IP literal, in any spelling (``0x7f.1``).

    Only what is visible without the network: names are judged by the worker when
    it connects.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip = literal_ip(host)
    if ip is None:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    reason = policy.denial(str(ip), port)
    if reason is not None:
        spelled = "" if host.strip("[]") == str(ip) else f" (written as {host})"
        raise UrlRejected(reason + spelled)
