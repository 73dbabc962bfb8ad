"""The egress policy: which addresses a job may reach, however they are spelled."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.egress import EgressPolicy, literal_ip
from service.domain.urls import UrlRejected, refuse_non_public_literal

PUBLIC_ONLY = EgressPolicy()

NON_PUBLIC_V4 = [
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("169.254.0.0/16", "link-local"),
    ("100.64.0.0/10", "CGNAT (shared address space)"),
    ("224.0.0.0/4", "multicast"),
    ("0.0.0.0/8", "unspecified"),
    ("240.0.0.0/4", "reserved"),
]


@st.composite
def non_public_v4(draw: st.DrawFn) -> tuple[ipaddress.IPv4Address, str]:
    network_text, kind = draw(st.sampled_from(NON_PUBLIC_V4))
    network = ipaddress.IPv4Network(network_text)
    offset = draw(st.integers(0, network.num_addresses - 1))
    return network[offset], kind


def spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """Ways to write one IPv4 address that resolvers and HTTP clients accept (inet_aton)."""
    n = int(ip)
    a, b, c, d = ip.packed
    return [
        str(ip),
        str(n),  # 2130706433
        hex(n),  # 0x7f000001
        "0" + oct(n)[2:],  # 017700000001
        f"{a:#x}.{b:#x}.{c:#x}.{d:#x}",  # 0x7f.0x0.0x0.0x1
        f"0{a:o}.{b}.{c}.{d}",  # 0177.0.0.1
        f"{a}.{(b << 16) | (c << 8) | d}",  # 127.1
        f"{a:#x}.{(b << 16) | (c << 8) | d}",  # 0x7f.1
        f"{a}.{b}.{(c << 8) | d}",  # 127.0.1
        f"[::ffff:{ip}]",  # IPv4-mapped IPv6
        f"[::ffff:{(a << 8) | b:x}:{(c << 8) | d:x}]",  # the same in hex groups
    ]


@given(non_public_v4())
def test_every_spelling_of_a_non_public_ipv4_address_is_refused_up_front(
    case: tuple[ipaddress.IPv4Address, str],
) -> None:
    ip, kind = case
    for host in spellings(ip):
        # Given a URL whose host is the address in some spelling
        url = f"http://{host}/video.mp4"
        # Then the host reads as that address, and the URL is refused naming why
        parsed = literal_ip(host)
        assert parsed is not None and ip in {parsed, getattr(parsed, "ipv4_mapped", None)}, host
        with pytest.raises(UrlRejected, match=re.escape(f"{ip} is {kind}")):
            refuse_non_public_literal(url, PUBLIC_ONLY)


@given(st.ip_addresses(v=4).filter(lambda ip: ip.is_global and not ip.is_multicast))
def test_public_ipv4_addresses_are_allowed_in_every_spelling(ip: ipaddress.IPv4Address) -> None:
    for host in spellings(ip):
        refuse_non_public_literal(f"https://{host}/", PUBLIC_ONLY)
        assert PUBLIC_ONLY.denial(str(ip), 443) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd00::1", "unique-local (private)"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("::127.0.0.1", "loopback"),  # IPv4-compatible (deprecated)
    ],
)
def test_non_public_ipv6_forms_are_refused_with_the_reason(address: str, kind: str) -> None:
    reason = PUBLIC_ONLY.denial(address, 80)
    assert reason is not None and reason.endswith(f"is {kind}"), reason


def test_the_metadata_endpoint_is_named_for_what_it_is() -> None:
    assert (
        PUBLIC_ONLY.denial("169.254.169.254", 80) == "egress denied: 169.254.169.254 is link-local"
    )


def test_host_names_are_left_to_the_worker() -> None:
    # A name cannot be judged without resolving it: the worker judges the address it dials
    refuse_non_public_literal("http://localhost/", PUBLIC_ONLY)
    refuse_non_public_literal("http://deadbeef.example/", PUBLIC_ONLY)
    assert literal_ip("cafe.example") is None
    assert literal_ip("localhost") is None


def test_the_allow_list_admits_networks_and_ports() -> None:
    policy = EgressPolicy.parse("10.0.0.0/8, 127.0.0.1/32:8080, [fd00::/8]:443-444")

    assert policy.denial("10.1.2.3", 22) is None
    assert policy.denial("127.0.0.1", 8080) is None
    assert policy.denial("127.0.0.1", 8081) == "egress denied: 127.0.0.1 is loopback"
    assert policy.denial("127.0.0.2", 8080) == "egress denied: 127.0.0.2 is loopback"
    assert policy.denial("fd00::5", 444) is None
    assert policy.denial("fd00::5", 80) is not None
    # An allowed IPv4 address stays allowed when it arrives IPv4-mapped
    assert policy.denial("::ffff:10.0.0.1", 80) is None


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not-a-net", "10.0.0.0/8:0", "1.2.3.4:9-3"])
def test_a_malformed_allow_list_is_refused_at_start(entry: str) -> None:
    with pytest.raises(ValueError, match="egress allow-list"):
        EgressPolicy.parse(entry)
