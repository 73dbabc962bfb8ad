"""The edges of the egress allow-list and of client limits that the mutation run found
unpinned (docs/testing.md): exact port bounds, host bits in a network, the refusal
raised by ``check``, the words of each refusal, and which hosts are IP literals (zones,
upper case, text after an address)."""

from __future__ import annotations

import ipaddress

import pytest

from service.domain.egress import EgressDenied, EgressPolicy, literal_ip
from service.domain.quotas import ClientLimits


def test_check_refuses_a_private_address_with_the_reason_and_passes_a_public_one() -> None:
    # Given the default policy (nothing allowed beyond public addresses)
    policy = EgressPolicy.parse("")
    # Then a private address is refused, saying what it is, and a public one passes
    with pytest.raises(EgressDenied) as denied:
        policy.check("10.1.2.3", 443)
    assert str(denied.value) == "egress denied: 10.1.2.3 is private"
    policy.check("93.184.216.34", 443)


def test_check_honours_the_port_of_an_allowance() -> None:
    # Given a private network allowed on one port only
    policy = EgressPolicy.parse("10.0.0.0/8:443")
    # Then that port passes and another is refused
    policy.check("10.1.2.3", 443)
    with pytest.raises(EgressDenied):
        policy.check("10.1.2.3", 80)


@pytest.mark.parametrize("port", [1, 65535])
def test_the_first_and_last_ports_can_be_allowed(port: int) -> None:
    policy = EgressPolicy.parse(f"10.0.0.0/8:{port}")
    assert policy.denial("10.0.0.1", port) is None
    assert policy.denial("10.0.0.1", 2 if port == 1 else 65534) is not None


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("10.0.0.0/8:0", "port out of range in the egress allow-list: '10.0.0.0/8:0'"),
        ("10.0.0.0/8:65536", "port out of range in the egress allow-list: '10.0.0.0/8:65536'"),
        ("10.0.0.0/8:x", "not a port or port range in the egress allow-list: '10.0.0.0/8:x'"),
        ("[fd00::/8]]:443", "not a port or port range in the egress allow-list: '[fd00::/8]]:443'"),
        ("10.0.0.300/8", "not a network in the egress allow-list: '10.0.0.300/8'"),
    ],
)
def test_a_bad_allow_list_entry_is_refused_naming_it(entry: str, why: str) -> None:
    with pytest.raises(ValueError) as refused:
        EgressPolicy.parse(entry)
    assert str(refused.value) == why


def test_a_network_written_with_host_bits_is_read_as_its_network() -> None:
    # Given an operator who wrote an address inside the network rather than its start
    policy = EgressPolicy.parse("10.1.2.3/8")
    # Then the whole network is allowed, as written
    assert policy.denial("10.200.0.1") is None


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("fe80::1%eth0", "egress denied: fe80::1 is link-local"),
        ("fe80::1%25eth%30", "egress denied: fe80::1 is link-local"),
        ("::1%lo", "egress denied: ::1 is loopback"),
    ],
)
def test_a_scoped_address_from_the_resolver_is_judged_and_named_without_its_zone(
    address: str, why: str
) -> None:
    # Given an IPv6 address as a resolver returns it, with a zone (and a zone with a %)
    # Then the refusal names the address itself: the zone is the interface, not the host
    assert EgressPolicy().denial(address, 443) == why


@pytest.mark.parametrize(
    ("address", "why"),
    [
        # Teredo carries its client's IPv4 address, bit-inverted, in the last 32 bits
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "egress denied: 10.0.0.1 is private"),
        ("192.0.2.1", "egress denied: 192.0.2.1 is not globally routable"),
        ("2001:db8::1", "egress denied: 2001:db8::1 is not globally routable"),
    ],
)
def test_an_address_outside_the_named_ranges_is_refused_for_what_it_is(
    address: str, why: str
) -> None:
    assert EgressPolicy().denial(address, 443) == why


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("[::1]", "::1"),
        ("[fe80::1%25eth0]", "fe80::1"),  # RFC 6874: the zone, percent-encoded
        ("[fe80::1%25eth%30]", "fe80::1"),  # a zone that itself holds an escape
        ("0X7F.0X1", "127.0.0.1"),  # inet_aton reads upper-case hex as well
        ("0XA.0XB.0XC.0XD", "10.11.12.13"),
    ],
)
def test_an_ip_literal_host_reads_as_its_address(host: str, address: str) -> None:
    assert literal_ip(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["127.0.0.1 x", "10.0.0.1\tinternal", "1X", "X1", "", "[]"])
def test_a_host_that_only_starts_or_ends_like_an_address_is_a_name(host: str) -> None:
    # inet_aton would read "127.0.0.1 x" as 127.0.0.1 (it stops at white space): such a
    # host is a name, left to the worker, which judges the address it really dials
    assert literal_ip(host) is None


def test_a_clients_own_limits_win_and_the_deployments_fill_the_rest() -> None:
    own = ClientLimits(max_active_jobs=3)
    defaults = ClientLimits(max_active_jobs=10, storage_quota_bytes=1000, requests_per_minute=60)
    assert own.over(defaults) == ClientLimits(3, 1000, 60)
    assert ClientLimits().over(ClientLimits()) == ClientLimits()
