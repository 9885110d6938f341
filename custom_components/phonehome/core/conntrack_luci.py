"""Reader of LuCI's ``luci getConntrackList`` entries (OpenWrt's rpcd ucode plugin).

LuCI reads /proc/net/nf_conntrack line by line and returns, per entry, the
original-direction ``src``/``dst``/``sport``/``dport``, ``bytes`` and ``packets``
summed over both directions, ``layer3`` and ``layer4`` names, and ``timeout``
(0 where the kernel printed none); every other ``key=value`` comes as a string
(``mark``, ``zone``, ``use``, ICMP ``type``...). It drops TIME_WAIT entries, the
TCP state and the [UNREPLIED]/[ASSURED] flags, so those fields are None here.
"""

from operator import itemgetter
from typing import Final

from .addresses import AddressInfo, AddressScope, address_info
from .model import UNKNOWN_PROTOCOL, Flow
from .parsing import (
    MAX_PORT,
    ConntrackParseError,
    ParseResult,
    ParseStats,
    SkipReason,
    collector_paused,
    finish,
)

PROTOCOL_NUMBERS: Final[dict[object, int]] = {
    "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5,
    "tcp": 6, "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22,
    "rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38,
    "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47,
    "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93,
    "ipip": 94, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112,
    "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135,
    "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140,
    "wesp": 141, "rohc": 142, "ethernet": 143,
}  # fmt: skip
"""Protocol names of /etc/protocols (IANA keywords), as LuCI passes them in ``layer4``."""

_new_flow: Final = tuple.__new__
_FAST_FIELDS: Final = itemgetter(
    "src", "dst", "packets", "bytes", "timeout", "layer4", "mark", "zone"
)
"""The fields LuCI writes for every entry on a kernel with marks and zones."""


class _Deviation(Exception):  # noqa: N818 - control flow inside parse_luci, never escapes
    """The entry needs a field-by-field look."""


class _Learned:
    """Values already checked, kept across polls: a home's tables repeat them.

    Plain dicts, so the loop can look values up directly; bounded by starting
    afresh when full (the lookups then relearn what is still in use).
    """

    __slots__ = ("addresses", "numbers")
    LIMIT: Final = 1 << 16

    def __init__(self) -> None:
        self.addresses: dict[str, tuple[str, int, AddressScope]] = {}
        self.numbers: dict[str, int] = {}

    def learn_address(self, text: str, info: AddressInfo) -> None:
        """Remember a checked address as a plain tuple (quicker to unpack than AddressInfo)."""
        if len(self.addresses) >= self.LIMIT:
            self.addresses.clear()
        self.addresses[text] = (info.address, info.family, info.scope)

    def learn_number(self, text: str, number: int) -> None:
        """Remember a checked decimal string such as a mark or zone."""
        if len(self.numbers) >= self.LIMIT:
            self.numbers.clear()
        self.numbers[text] = number


_LEARNED: Final = _Learned()


def parse_luci(entries: object) -> ParseResult:
    """Parse the ``result`` list of ``luci getConntrackList``.

    The loop reads entries through values already checked in this or an earlier
    poll; values never seen and anything unusual go through ``_read_entry``,
    which checks field by field and learns. LuCI's ``layer3`` is not
    read: the family comes from the addresses themselves.
    """
    if not isinstance(entries, list):
        raise ConntrackParseError(f"expected a list of entries, got {type(entries).__name__}")
    stats = ParseStats()
    flows: list[Flow] = []
    append = flows.append
    addresses = _LEARNED.addresses
    numbers = _LEARNED.numbers
    protocols = PROTOCOL_NUMBERS
    fields_of = _FAST_FIELDS
    with collector_paused():
        for entry in entries:
            try:
                src, dst, packets, byte_count, timeout, layer4, mark, zone = fields_of(entry)
                sport = entry.get("sport")
                dport = entry.get("dport")
                src_address, family, src_scope = addresses[src]
                dst_address, dst_family, dst_scope = addresses[dst]
                # `|` fails on anything but integers; ports need 16 bits, the rest a sign.
                if (
                    dst_family != family
                    or ((sport | dport) >> 16 if sport is not None else dport is not None)
                    or (packets | byte_count | timeout) < 0
                    or "secctx" in entry
                ):
                    raise _Deviation
                append(
                    _new_flow(
                        Flow,
                        (
                            family,
                            protocols[layer4],
                            src_address,
                            dst_address,
                            sport,
                            dport,
                            src_scope,
                            dst_scope,
                            None,
                            None,
                            None,
                            timeout or None,
                            packets or None,  # a counted flow has at least one packet
                            byte_count if packets else None,
                            None,
                            None,
                            False,
                            numbers[mark],
                            numbers[zone],
                            None,
                        ),
                    )
                )
            except (_Deviation, KeyError, TypeError):
                flow_or_reason = _read_entry(entry)
                if isinstance(flow_or_reason, Flow):
                    append(flow_or_reason)
                else:
                    stats.skipped[flow_or_reason] += 1
    return finish(flows, stats, entries)


def _read_entry(entry: object) -> Flow | SkipReason:  # noqa: PLR0911
    """Check one entry field by field and learn its values: a Flow, or why not."""
    if not isinstance(entry, dict):
        return SkipReason.LAYOUT
    src_text, dst_text = entry.get("src"), entry.get("dst")
    if not (isinstance(src_text, str) and isinstance(dst_text, str)):
        return SkipReason.ADDRESS
    src, dst = address_info(src_text), address_info(dst_text)
    if src is None or dst is None:
        return SkipReason.ADDRESS
    if dst.family != src.family:
        return SkipReason.FAMILY
    sport, dport = entry.get("sport"), entry.get("dport")
    if (sport is None) != (dport is None) or not all(
        port is None or (isinstance(port, int) and 0 <= port <= MAX_PORT) for port in (sport, dport)
    ):
        return SkipReason.PORT
    packets, byte_count, timeout = (entry.get(key, 0) for key in ("packets", "bytes", "timeout"))
    mark_text, zone_text, secctx = (entry.get(key) for key in ("mark", "zone", "secctx"))
    mark, zone = (_decimal("0" if text is None else text) for text in (mark_text, zone_text))
    if not (
        all(isinstance(value, int) and value >= 0 for value in (packets, byte_count, timeout))
        and mark is not None
        and zone is not None
        and (secctx is None or (isinstance(secctx, str) and secctx))
    ):
        return SkipReason.VALUE
    layer4 = entry.get("layer4")
    if not isinstance(layer4, str):
        return SkipReason.PROTOCOL
    _LEARNED.learn_address(src_text, src)
    _LEARNED.learn_address(dst_text, dst)
    for text, number in ((mark_text, mark), (zone_text, zone)):
        if text is not None:
            _LEARNED.learn_number(text, number)
    return Flow(
        src.family,
        PROTOCOL_NUMBERS.get(layer4, UNKNOWN_PROTOCOL),
        src.address,
        dst.address,
        sport,
        dport,
        src.scope,
        dst.scope,
        None,
        None,
        None,
        timeout or None,
        packets or None,
        byte_count if packets else None,
        None,
        None,
        False,
        mark,
        zone,
        secctx,
    )


def _decimal(value: object) -> int | None:
    """The number in a string of ASCII digits, as LuCI passes ``mark`` and ``zone``; else None."""
    if not (isinstance(value, str) and value.isascii() and value.isdecimal()):
        return None
    try:
        return int(value)
    except ValueError:  # more digits than int() converts
        return None
