"""Reader of LuCI's ``luci getConntrackList`` reply (OpenWrt's rpcd ucode plugin).

LuCI reads /proc/net/nf_conntrack line by line and returns, per entry, the
original-direction ``src``/``dst``/``sport``/``dport``, ``bytes`` and ``packets``
summed over both directions, ``layer3`` and ``layer4`` names, and ``timeout``
(0 where the kernel printed none); every other ``key=value`` comes as a string
(``mark``, ``zone``, ``use``, ICMP ``type``...). It drops TIME_WAIT entries, the
TCP state and the [UNREPLIED]/[ASSURED] flags, so those fields are None here.

``parse_luci_json`` takes the reply as uhttpd sends it and decodes it straight
into typed structs (msgspec checks every type and range in C); a reply that
does not decode so goes, entry by entry, through ``parse_luci``, which skips
and counts what it cannot use.
"""

from collections.abc import Buffer
from typing import Annotated, Final

import msgspec

from .addresses import AddressInfo, AddressScope, address_info
from .model import UNKNOWN_PROTOCOL, Flow
from .parsing import (
    MAX_PORT,
    ConntrackParseError,
    ParseResult,
    ParseStats,
    SkipReason,
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

_Port = Annotated[int, msgspec.Meta(ge=0, le=MAX_PORT)]
_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Entry(msgspec.Struct, gc=False):
    """The fields of an entry that become a Flow; LuCI's others are ignored."""

    src: str
    dst: str
    layer4: str
    sport: _Port | None = None
    dport: _Port | None = None
    packets: _Count = 0
    byte_count: _Count = msgspec.field(default=0, name="bytes")
    timeout: _Count = 0
    mark: str = "0"
    zone: str = "0"
    secctx: str | None = None


class _CallResult(msgspec.Struct, gc=False):
    """The data of the call: ``{"result": [entries]}``."""

    result: list[_Entry]


class _Reply(msgspec.Struct, gc=False):
    """A JSON-RPC reply of a ubus call: ``{"result": [status, data]}``."""

    result: tuple[int, _CallResult]


_DECODER: Final = msgspec.json.Decoder(_Reply)


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


def parse_luci_json(payload: Buffer | str) -> ParseResult:
    """Parse the JSON-RPC reply of ``call luci getConntrackList``, as uhttpd sends it."""
    if not isinstance(payload, Buffer | str):
        raise ConntrackParseError(f"expected the reply's bytes, got {type(payload).__name__}")
    try:
        entries = _DECODER.decode(payload).result[1].result
    except UnicodeError:  # invalid UTF-8 in a string: the other entries still count
        return parse_luci_json(_valid_utf8(payload))
    except (msgspec.MsgspecError, RecursionError):  # RecursionError: nested too deep
        return parse_luci(_entries_of(payload))
    stats = ParseStats()
    flows: list[Flow] = []
    append = flows.append
    addresses = _LEARNED.addresses
    numbers = _LEARNED.numbers
    protocols = PROTOCOL_NUMBERS
    for entry in entries:
        try:
            src_address, family, src_scope = addresses[entry.src]
            dst_address, dst_family, dst_scope = addresses[entry.dst]
            sport = entry.sport
            dport = entry.dport
            mark = numbers[entry.mark]
            zone = numbers[entry.zone]
            secctx = entry.secctx
            if dst_family != family or (sport is None) is not (dport is None) or secctx == "":
                raise KeyError
        except KeyError:  # a value not seen before, or one that does not fit
            flow_or_reason = _read_entry(msgspec.to_builtins(entry))
            if isinstance(flow_or_reason, Flow):
                append(flow_or_reason)
            else:
                stats.skipped[flow_or_reason] += 1
            continue
        packets = entry.packets
        append(
            Flow(
                family,
                protocols.get(entry.layer4, UNKNOWN_PROTOCOL),
                src_address,
                dst_address,
                sport,
                dport,
                src_scope,
                dst_scope,
                None,
                None,
                None,
                entry.timeout or None,
                packets or None,  # a counted flow has at least one packet
                entry.byte_count if packets else None,
                None,
                None,
                False,
                mark,
                zone,
                secctx,
            )
        )
    return finish(flows, stats, payload)


def _entries_of(payload: Buffer | str) -> object:
    """The entry list of a reply that did not decode into the typed structs."""
    try:
        document = msgspec.json.decode(payload)
    except UnicodeError:  # invalid UTF-8 in a string: the other entries still count
        return _entries_of(_valid_utf8(payload))
    except (msgspec.DecodeError, RecursionError) as err:
        raise ConntrackParseError(f"the getConntrackList reply is not JSON: {err}") from err
    try:
        return document["result"][1]["result"]
    except (KeyError, IndexError, TypeError) as err:
        raise ConntrackParseError(
            "the reply is not a getConntrackList result: expected "
            '{"result": [0, {"result": [...]}]}'
        ) from err


def _valid_utf8(payload: Buffer | str) -> str:
    """The payload as text with U+FFFD (or ``?``, for a lone surrogate) for what is not UTF-8."""
    if isinstance(payload, str):
        return payload.encode(errors="replace").decode()
    return bytes(payload).decode(errors="replace")


def parse_luci(entries: object) -> ParseResult:
    """Parse the ``result`` list of ``luci getConntrackList``, already decoded from JSON.

    Reads every entry field by field, skipping and counting what it cannot use.
    """
    if not isinstance(entries, list):
        raise ConntrackParseError(f"expected a list of entries, got {type(entries).__name__}")
    stats = ParseStats()
    flows: list[Flow] = []
    for entry in entries:
        flow_or_reason = _read_entry(entry)
        if isinstance(flow_or_reason, Flow):
            flows.append(flow_or_reason)
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
        port is None or (type(port) is int and 0 <= port <= MAX_PORT) for port in (sport, dport)
    ):
        return SkipReason.PORT
    packets, byte_count, timeout = (entry.get(key, 0) for key in ("packets", "bytes", "timeout"))
    mark_text, zone_text, secctx = (entry.get(key) for key in ("mark", "zone", "secctx"))
    mark, zone = (_decimal("0" if text is None else text) for text in (mark_text, zone_text))
    if not (
        all(type(value) is int and value >= 0 for value in (packets, byte_count, timeout))
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
