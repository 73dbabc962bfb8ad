"""Which addresses a job may connect to: public ones, plus an explicit allow-list.

Pure policy, no network. The worker applies it to every address it is about to
connect to (so redirects and DNS rebinding are judged on the real address); the
API applies it up front to hosts written as IP literals, in any of the spellings
C's ``inet_aton`` accepts (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Named ranges checked before the general "not globally routable" rule, so the
#: reason a person reads is specific. Order matters: first match wins.
_NAMED: tuple[tuple[str, IPNetwork], ...] = tuple(
    (name, ipaddress.ip_network(net))
    for name, net in (
        ("unspecified", "0.0.0.0/8"),
        ("loopback", "127.0.0.0/8"),
        ("private", "10.0.0.0/8"),
        ("CGNAT (shared address space)", "100.64.0.0/10"),
        ("link-local", "169.254.0.0/16"),
        ("private", "172.16.0.0/12"),
        ("private", "192.168.0.0/16"),
        ("multicast", "224.0.0.0/4"),
        ("reserved", "240.0.0.0/4"),
        ("unspecified", "::/128"),
        ("loopback", "::1/128"),
        ("unique-local (private)", "fc00::/7"),
        ("link-local", "fe80::/10"),
        ("multicast", "ff00::/8"),
    )
)


#: What a tenant reads when the policy refused a connection of its job. Which address a
#: name resolved to (and what kind it is) is a fact about the operator's network: it goes
#: to the operator's log, never to a row, an attempt or a webhook a tenant can read.
DENIED = "egress denied: a non-public address"


class EgressDenied(PermissionError):
    """A connection the egress policy refuses; the message names the address and why."""


@dataclass(frozen=True)
class Allowance:
    """One allow-list entry: a network, and optionally one port or a port range."""

    network: IPNetwork
    ports: range | None = None

    def covers(self, ip: IPAddress, port: int | None) -> bool:
        if ip.version != self.network.version or ip not in self.network:
            return False
        return self.ports is None or (port is not None and port in self.ports)


@dataclass(frozen=True)
class EgressPolicy:
    """Public addresses are allowed; anything else only if an allowance covers it."""

    allow: tuple[Allowance, ...] = ()

    @classmethod
    def parse(cls, text: str) -> EgressPolicy:
        """From ``HAUL_EGRESS_ALLOW``: comma-separated CIDRs, each optionally ``:port`` or
        ``:low-high``; IPv6 networks in brackets when a port follows (``[fd00::/8]:443``)."""
        return cls(tuple(_allowance(part.strip()) for part in text.split(",") if part.strip()))

    def denial(self, address: str, port: int | None = None) -> str | None:
        """Why a connection to ``address`` is refused, or None when it is allowed.

        An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64) is
        judged as that IPv4 address: the wrapper is only a way of writing it.
        """
        ip = _carried(ipaddress.ip_address(address.split("%", 1)[0]))
        if any(a.covers(ip, port) for a in self.allow):
            return None
        kind = non_public_kind(ip)
        return None if kind is None else f"egress denied: {ip} is {kind}"

    def check(self, address: str, port: int | None = None) -> None:
        """Raise :class:`EgressDenied` unless a connection to ``address`` is allowed."""
        reason = self.denial(address, port)
        if reason is not None:
            raise EgressDenied(reason)


def non_public_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address ``ip`` is, or None for a public one."""
    for name, network in _NAMED:
        if ip.version == network.version and ip in network:
            return name
    if not ip.is_global:
        return "not globally routable"
    return None


def _carried(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (``::ffff:127.0.0.1`` → ``127.0.0.1``), else itself."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    packed = ip.packed
    if ip in _NAT64 or (packed[:12] == bytes(12) and ip not in (_V6_UNSPECIFIED, _V6_LOOPBACK)):
        return ipaddress.IPv4Address(packed[12:])  # NAT64, or ::a.b.c.d (deprecated)
    return ip


_V6_UNSPECIFIED = ipaddress.IPv6Address("::")
_V6_LOOPBACK = ipaddress.IPv6Address("::1")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def literal_ip(host: str) -> IPAddress | None:
    """The address a URL host denotes when it is an IP literal in any spelling, else None.

    IPv4 hosts are read as ``inet_aton`` reads them, because that is how the
    resolver and many HTTP clients read ``http://0x7f.1/``.
    """
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        pass
    if not candidate or not all(c in "0123456789abcdefxABCDEFX." for c in candidate):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except OSError:
        return None


def _allowance(entry: str) -> Allowance:
    network_text, ports = entry, None
    if entry.startswith("["):
        network_text, _, rest = entry[1:].partition("]")
        ports = rest.removeprefix(":") or None
    elif entry.count(":") == 1:
        network_text, ports = entry.split(":")
    try:
        network = ipaddress.ip_network(network_text, strict=False)
    except ValueError as exc:
        raise ValueError(f"not a network in the egress allow-list: {entry!r}") from exc
    return Allowance(network=network, ports=_ports(ports, entry) if ports else None)


def _ports(text: str, entry: str) -> range:
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError as exc:
        raise ValueError(f"not a port or port range in the egress allow-list: {entry!r}") from exc
    if not 0 < first <= last <= 65535:
        raise ValueError(f"port out of range in the egress allow-list: {entry!r}")
    return range(first, last + 1)
