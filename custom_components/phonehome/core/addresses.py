"""Where an address lives: LAN, internet, or one of IANA's special-purpose blocks.

The tables follow the IANA IPv4 and IPv6 Special-Purpose Address Registries
(RFC 6890 and updates) plus the multicast blocks. Blocks the registries mark
globally reachable (PCP/TURN anycast, AS112, AMT, NAT64 well-known prefix, ...)
count as WAN; other special blocks that are neither LAN nor one of the named
scopes are RESERVED. Results are cached per address text, so a 65,536-entry
table pays the lookup once per distinct address, not once per line.
"""

import re
from enum import StrEnum
from functools import lru_cache
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Final, NamedTuple

IPV4: Final = 4
IPV6: Final = 6


class AddressScope(StrEnum):
    """What kind of network an address belongs to."""

    LAN = "lan"
    WAN = "wan"
    MULTICAST = "multicast"
    BROADCAST = "broadcast"
    LINK_LOCAL = "link_local"
    LOOPBACK = "loopback"
    CGNAT = "cgnat"
    ULA = "ula"
    DOCUMENTATION = "documentation"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"


INTERNET_SCOPES: Final = frozenset({AddressScope.WAN, AddressScope.DOCUMENTATION})
"""Scopes of remote internet hosts. Documentation ranges never appear on a real
network; where they do appear (the lab, the demo, examples) they play the internet."""


class AddressInfo(NamedTuple):
    """A parsed address: canonical text, family (4 or 6) and scope."""

    address: str
    family: int
    scope: AddressScope


_S = AddressScope

_IPV4_BLOCKS: Final[tuple[tuple[str, int, AddressScope], ...]] = (
    ("0.0.0.0", 32, _S.UNSPECIFIED),
    ("0.0.0.0", 8, _S.RESERVED),  # "this network"
    ("10.0.0.0", 8, _S.LAN),
    ("100.64.0.0", 10, _S.CGNAT),
    ("127.0.0.0", 8, _S.LOOPBACK),
    ("169.254.0.0", 16, _S.LINK_LOCAL),
    ("172.16.0.0", 12, _S.LAN),
    ("192.0.0.0", 24, _S.RESERVED),  # IETF protocol assignments
    ("192.0.0.9", 32, _S.WAN),  # PCP anycast, globally reachable
    ("192.0.0.10", 32, _S.WAN),  # TURN anycast, globally reachable
    ("192.0.2.0", 24, _S.DOCUMENTATION),
    ("192.88.99.0", 24, _S.RESERVED),  # deprecated 6to4 relay anycast
    ("192.168.0.0", 16, _S.LAN),
    ("198.18.0.0", 15, _S.RESERVED),  # benchmarking
    ("198.51.100.0", 24, _S.DOCUMENTATION),
    ("203.0.113.0", 24, _S.DOCUMENTATION),
    ("224.0.0.0", 4, _S.MULTICAST),
    ("240.0.0.0", 4, _S.RESERVED),
    ("255.255.255.255", 32, _S.BROADCAST),
)

_IPV6_BLOCKS: Final[tuple[tuple[str, int, AddressScope], ...]] = (
    ("::", 0, _S.RESERVED),  # outside 2000::/3 nothing is allocated for unicast
    ("::", 128, _S.UNSPECIFIED),
    ("::1", 128, _S.LOOPBACK),
    ("64:ff9b::", 96, _S.WAN),  # NAT64 well-known prefix
    ("64:ff9b:1::", 48, _S.RESERVED),  # local-use IPv4/IPv6 translation
    ("100::", 64, _S.RESERVED),  # discard-only
    ("100:0:0:1::", 64, _S.RESERVED),  # dummy prefix
    ("2000::", 3, _S.WAN),  # global unicast
    ("2001::", 23, _S.RESERVED),  # IETF protocol assignments
    ("2001::", 32, _S.WAN),  # Teredo
    ("2001:1::1", 128, _S.WAN),  # PCP anycast
    ("2001:1::2", 128, _S.WAN),  # TURN anycast
    ("2001:1::3", 128, _S.WAN),  # DNS-SD service registration anycast
    ("2001:3::", 32, _S.WAN),  # AMT
    ("2001:4:112::", 48, _S.WAN),  # AS112-v6
    ("2001:20::", 28, _S.WAN),  # ORCHIDv2
    ("2001:30::", 28, _S.WAN),  # drone remote ID
    ("2001:db8::", 32, _S.DOCUMENTATION),
    ("3fff::", 20, _S.DOCUMENTATION),
    ("5f00::", 16, _S.RESERVED),  # SRv6 SIDs
    ("fc00::", 7, _S.ULA),
    ("fe80::", 10, _S.LINK_LOCAL),
    ("ff00::", 8, _S.MULTICAST),
)

_IPV4_MAPPED: Final = 0xFFFF << 32
"""::ffff:0:0/96 carries an IPv4 address; it is classified as that address."""


def _prefix_table(
    family: int, blocks: tuple[tuple[str, int, AddressScope], ...]
) -> tuple[tuple[int, int, dict[int, AddressScope]], ...]:
    """Group blocks by prefix length, longest first, as (length, shift, {prefix: scope})."""
    af, bits = (AF_INET, 32) if family == IPV4 else (AF_INET6, 128)
    by_length: dict[int, dict[int, AddressScope]] = {}
    for network, length, scope in blocks:
        value = int.from_bytes(inet_pton(af, network))
        by_length.setdefault(length, {})[value >> (bits - length)] = scope
    return tuple(
        (length, bits - length, by_length[length]) for length in sorted(by_length, reverse=True)
    )


_IPV4_TABLE: Final = _prefix_table(IPV4, _IPV4_BLOCKS)
_IPV6_TABLE: Final = _prefix_table(IPV6, _IPV6_BLOCKS)


def _scope_of(
    value: int, table: tuple[tuple[int, int, dict[int, AddressScope]], ...]
) -> AddressScope:
    """Longest-prefix match of an integer address against a prefix table."""
    for _length, shift, prefixes in table:
        scope = prefixes.get(value >> shift)
        if scope is not None:
            return scope
    return AddressScope.WAN


def _classify_packed(family: int, packed: bytes) -> AddressScope:
    """Scope of an address given as packed bytes."""
    value = int.from_bytes(packed)
    if family == IPV4:
        return _scope_of(value, _IPV4_TABLE)
    if value >> 32 == _IPV4_MAPPED >> 32:
        return _scope_of(value & 0xFFFFFFFF, _IPV4_TABLE)
    return _scope_of(value, _IPV6_TABLE)


@lru_cache(maxsize=1 << 16)
def address_info(text: str) -> AddressInfo | None:
    """Parse and classify an address; None when the text is not an IP address."""
    family, af = (IPV6, AF_INET6) if ":" in text else (IPV4, AF_INET)
    try:
        packed = inet_pton(af, text)
    except (OSError, ValueError):  # ValueError: embedded NUL character
        return None
    return AddressInfo(inet_ntop(af, packed), family, _classify_packed(family, packed))


def classify_address(text: str) -> AddressScope | None:
    """Scope of an address given as text; None when it is not an IP address."""
    info = address_info(text)
    return None if info is None else info.scope


_MAC: Final = re.compile(r"[0-9a-f]{2}([:-]?)(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}")


def normalize_mac(value: object) -> str | None:
    """A MAC as ``aa:bb:cc:dd:ee:ff`` from ``AA-BB-..``, ``aa:bb:..`` or ``aabbcc..``.

    None for anything else, and for the all-zero address that devices without
    one report.
    """
    if not isinstance(value, str) or not _MAC.fullmatch(text := value.strip().lower()):
        return None
    digits = re.sub("[:-]", "", text)
    if not int(digits, 16):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
