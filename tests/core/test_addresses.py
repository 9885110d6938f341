"""Address parsing, canonical text and scope classification (IANA special-purpose tables)."""

import pytest

from custom_components.phonehome.core.addresses import (
    INTERNET_SCOPES,
    AddressInfo,
    AddressScope,
    address_info,
    classify_address,
    normalize_mac,
)

S = AddressScope

IPV4_SCOPES = [
    # RFC 1918 private ranges, first and last addresses included
    ("10.0.0.0", S.LAN),
    ("10.1.2.3", S.LAN),
    ("10.255.255.255", S.LAN),
    ("172.16.0.1", S.LAN),
    ("172.31.255.254", S.LAN),
    ("192.168.0.1", S.LAN),
    ("192.168.255.255", S.LAN),
    # just outside the private ranges
    ("11.0.0.1", S.WAN),
    ("9.255.255.255", S.WAN),
    ("172.15.255.255", S.WAN),
    ("172.32.0.0", S.WAN),
    ("192.167.255.255", S.WAN),
    ("192.169.0.0", S.WAN),
    # shared address space (carrier-grade NAT)
    ("100.64.0.0", S.CGNAT),
    ("100.127.255.255", S.CGNAT),
    ("100.63.255.255", S.WAN),
    ("100.128.0.0", S.WAN),
    ("127.0.0.1", S.LOOPBACK),
    ("127.255.255.254", S.LOOPBACK),
    ("169.254.0.1", S.LINK_LOCAL),
    ("169.254.255.255", S.LINK_LOCAL),
    ("224.0.0.1", S.MULTICAST),
    ("239.255.255.250", S.MULTICAST),
    ("255.255.255.255", S.BROADCAST),
    ("0.0.0.0", S.UNSPECIFIED),
    ("0.1.2.3", S.RESERVED),  # "this network" 0/8
    ("192.0.2.1", S.DOCUMENTATION),
    ("198.51.100.7", S.DOCUMENTATION),
    ("203.0.113.10", S.DOCUMENTATION),
    ("203.0.114.1", S.WAN),
    ("240.0.0.1", S.RESERVED),
    ("255.255.255.254", S.RESERVED),
    ("198.18.0.1", S.RESERVED),  # benchmarking 198.18/15
    ("198.19.255.255", S.RESERVED),
    ("198.17.255.255", S.WAN),
    ("198.20.0.0", S.WAN),
    ("192.0.0.0", S.RESERVED),  # IETF protocol assignments 192.0.0/24
    ("192.0.0.8", S.RESERVED),
    ("192.0.0.9", S.WAN),  # PCP anycast
    ("192.0.0.10", S.WAN),  # TURN anycast
    ("192.0.0.11", S.RESERVED),
    ("192.0.0.255", S.RESERVED),
    ("192.88.99.1", S.RESERVED),  # deprecated 6to4 relay anycast
    ("8.8.8.8", S.WAN),
    ("1.1.1.1", S.WAN),
    ("223.255.255.255", S.WAN),
]

IPV6_SCOPES = [
    ("::1", S.LOOPBACK),
    ("::", S.UNSPECIFIED),
    ("::2", S.RESERVED),
    ("fe80::1", S.LINK_LOCAL),
    ("febf:ffff::1", S.LINK_LOCAL),
    ("fec0::1", S.RESERVED),  # deprecated site-local, outside fe80::/10
    ("fc00::1", S.ULA),
    ("fd00:77::2", S.ULA),
    ("fdff:ffff::1", S.ULA),
    ("ff02::1", S.MULTICAST),
    ("ff05::1:3", S.MULTICAST),
    ("2001:db8::1", S.DOCUMENTATION),
    ("2001:db8:ffff::1", S.DOCUMENTATION),
    ("3fff::1", S.DOCUMENTATION),
    ("3fff:fff::1", S.DOCUMENTATION),
    ("3fff:1000::1", S.WAN),  # outside 3fff::/20
    ("::ffff:192.168.1.1", S.LAN),  # IPv4-mapped: classified as its IPv4 address
    ("::ffff:8.8.8.8", S.WAN),
    ("::ffff:127.0.0.1", S.LOOPBACK),
    ("64:ff9b::8.8.8.8", S.WAN),  # NAT64 well-known prefix
    ("64:ff9b:1::1", S.RESERVED),  # local-use translation prefix
    ("100::1", S.RESERVED),  # discard-only
    ("100:0:0:1::1", S.RESERVED),  # dummy prefix
    ("2001::1", S.WAN),  # Teredo 2001::/32
    ("2001:0:ffff::1", S.WAN),
    ("2001:2::1", S.RESERVED),  # benchmarking, inside 2001::/23
    ("2001:1::1", S.WAN),  # PCP anycast
    ("2001:1::2", S.WAN),  # TURN anycast
    ("2001:1::3", S.WAN),  # DNS-SD service registration anycast
    ("2001:1::4", S.RESERVED),
    ("2001:3::1", S.WAN),  # AMT
    ("2001:4:112::1", S.WAN),  # AS112-v6
    ("2001:4:113::1", S.RESERVED),
    ("2001:20::1", S.WAN),  # ORCHIDv2
    ("2001:30::1", S.WAN),  # drone remote ID
    ("2001:1ff:ffff::1", S.RESERVED),  # last of 2001::/23
    ("2001:200::1", S.WAN),  # first after 2001::/23
    ("2606:4700::1111", S.WAN),
    ("2a00:1450::1", S.WAN),
    ("3ffe::1", S.WAN),
    ("5f00::1", S.RESERVED),  # SRv6 SIDs
    ("1::1", S.RESERVED),  # outside 2000::/3
    ("1fff:ffff::1", S.RESERVED),
    ("4000::1", S.RESERVED),
    ("8000::1", S.RESERVED),
    ("e000::1", S.RESERVED),
]

CANONICAL_TEXT = [
    ("2001:0db8:0001:0000:0000:0000:0000:000a", "2001:db8:1::a"),
    ("fd00:0077:0000:0000:0000:0000:0000:0002", "fd00:77::2"),
    ("0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
    ("0000:0000:0000:0000:0000:0000:0000:0000", "::"),
    ("fe80:0000:0000:0000:0000:0000:0000:0001", "fe80::1"),
    ("2001:DB8::A", "2001:db8::a"),
    ("0000:0000:0000:0000:0000:ffff:c0a8:0101", "::ffff:192.168.1.1"),
    ("192.168.77.2", "192.168.77.2"),
    ("203.0.113.10", "203.0.113.10"),
    ("0.0.0.0", "0.0.0.0"),
]

INVALID_TEXT = [
    pytest.param("", id="empty"),
    pytest.param("1.2.3", id="three-octets"),
    pytest.param("1.2.3.256", id="octet-256"),
    pytest.param("1.2.3.4.5", id="five-octets"),
    pytest.param("fe80::1%eth0", id="zone-index"),
    pytest.param("abc", id="word"),
    pytest.param("::1::2", id="two-double-colons"),
    pytest.param("2001:db8::g", id="bad-hex"),
    pytest.param(" 1.2.3.4", id="leading-space"),
    pytest.param("1" * 10_000, id="10kB-digits"),
    pytest.param("1.2.3.4" + "0" * 10_000, id="10kB-address"),
    pytest.param("1.2.3.4\x00", id="nul-after"),
    pytest.param("\x001.2.3.4", id="nul-before"),
    pytest.param("::1\x00", id="nul-ipv6"),
    pytest.param("\u0661.\u0662.\u0663.\u0664", id="arabic-digits"),
]


@pytest.mark.parametrize(("text", "scope"), IPV4_SCOPES)
def test_ipv4_address_is_classified_by_iana_table(text: str, scope: AddressScope) -> None:
    assert address_info(text) == AddressInfo(text, 4, scope)


@pytest.mark.parametrize(("text", "scope"), IPV6_SCOPES)
def test_ipv6_address_is_classified_by_iana_table(text: str, scope: AddressScope) -> None:
    info = address_info(text)
    assert info is not None
    assert (info.family, info.scope) == (6, scope)


@pytest.mark.parametrize(("text", "scope"), IPV4_SCOPES + IPV6_SCOPES)
def test_classify_address_returns_the_scope_of_address_info(text: str, scope: AddressScope) -> None:
    assert classify_address(text) == scope


def test_ipv4_mapped_address_keeps_family_6_and_mapped_text() -> None:
    assert address_info("::ffff:192.168.1.1") == AddressInfo("::ffff:192.168.1.1", 6, S.LAN)


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_TEXT)
def test_address_text_becomes_canonical(text: str, canonical: str) -> None:
    info = address_info(text)
    assert info is not None
    assert info.address == canonical


@pytest.mark.parametrize("text", INVALID_TEXT)
def test_invalid_address_text_gives_none(text: str) -> None:
    assert address_info(text) is None


@pytest.mark.parametrize("text", INVALID_TEXT)
def test_invalid_address_text_has_no_scope(text: str) -> None:
    assert classify_address(text) is None


def test_repeated_address_is_answered_from_the_cache() -> None:
    text = "198.51.100.213"
    first = address_info(text)
    hits = address_info.cache_info().hits
    second = address_info(text)
    assert address_info.cache_info().hits == hits + 1
    assert second is first


def test_internet_scopes_are_wan_and_documentation_only() -> None:
    assert frozenset({S.WAN, S.DOCUMENTATION}) == INTERNET_SCOPES


def test_every_scope_is_reachable_from_some_address() -> None:
    seen = {scope for _, scope in IPV4_SCOPES + IPV6_SCOPES}
    assert seen == set(AddressScope)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"),
        (" aabbccddeeff ", "aa:bb:cc:dd:ee:ff"),
        ("aa:bb-cc:dd:ee:ff", None),
        ("aa:bb:cc:dd:ee", None),
        ("aa:bb:cc:dd:ee:fg", None),
        ("00:00:00:00:00:00", None),
        ("", None),
        (None, None),
        (0xAABBCCDDEEFF, None),
    ],
)
def test_normalize_mac(text: object, expected: str | None) -> None:
    assert normalize_mac(text) == expected
