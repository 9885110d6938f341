"""Reader of the kernel's text form of the conntrack table.

``/proc/net/nf_conntrack`` and ``conntrack -L`` (plain or ``-o extended``) share
one layout, one entry per line, fields in this order::

    [ipv4 2] tcp 6 [timeout] [STATE] src= dst= [sport= dport=] [packets= bytes=]
    [[UNREPLIED]] src= dst= [sport= dport=] [packets= bytes=] [[ASSURED]]
    [mark=] [secctx=] [zone=] [delta-time=] ... use=N [id=N]

``parse_proc`` reads the common layout (ports or ICMP/GRE keys, optional
counters) by position and learns repeated tokens once per table, which keeps
65,536 lines within a small multiple of the cost of splitting them. Other lines
(per-direction zones, timestamps, trackers not loaded, damage) go to
``_read_tokens``, which accepts any key order. Both readers must agree on every
line the fast one accepts; the tests compare them.
"""

import re
from typing import Final, NamedTuple

from .addresses import AddressInfo, AddressScope, address_info
from .model import Flow
from .parsing import (
    FAMILY_NAMES,
    MAX_PORT,
    MAX_PROTOCOL,
    ConntrackParseError,
    ParseResult,
    ParseStats,
    SkipReason,
    finish,
)

_FAMILY_TOKENS: Final = frozenset(FAMILY_NAMES.values())
_STATES: Final = {
    state: state
    for state in (
        *("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT"),
        *("LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"),  # TCP
        *("CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "SHUTDOWN_SENT", "SHUTDOWN_RECD"),
        *("SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT"),  # SCTP
        *("REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT"),
        *("IGNORE", "INVALID"),  # DCCP
    )
}
"""Known protocol states, so that 65,536 flows share a handful of strings."""
_ASSURED_FLAGS: Final = frozenset({"[ASSURED]", "[OFFLOAD]", "[HW_OFFLOAD]"})
_OFFLOAD_FLAGS: Final = frozenset({"[OFFLOAD]", "[HW_OFFLOAD]"})
_FLAGS: Final = _ASSURED_FLAGS | {"[UNREPLIED]"}
_TUPLE_KEYS: Final = frozenset(
    {"src", "dst", "sport", "dport", "type", "code", "id", "srckey", "dstkey", "packets", "bytes"}
)
_COUNTER_KEYS: Final = frozenset({"packets", "bytes"})
_DIRECTIONS: Final = 2
_PORT_PROTOCOLS: Final = frozenset({6, 17, 33, 132, 136})  # TCP, UDP, DCCP, SCTP, UDP-Lite
_TUPLE_WIDTHS: Final = {"icmp": 5, "icmpv6": 5, "gre": 4}
"""Tokens of one tuple for trackers without ports, by the tracker's name: src, dst,
then ICMP's type, code and id, GRE's srckey and dstkey; the generic tracker
("unknown", also GRE's number when its tracker is not loaded) prints none."""
_MIN_TOKENS: Final = 6  # protocol name and number, src and dst of both directions
_SUMMARY: Final = re.compile(r"conntrack v[\d.]+ \(conntrack-tools\):")

_Tail = tuple[bool, bool, int, int, str | None]
"""What follows the reply tuple: assured, offloaded, mark, zone, secctx."""


class _Deviation(Exception):  # noqa: N818 - control flow inside parse_proc, never escapes
    """The line leaves the common layout: read it with the general reader."""


class _Learned:
    """Tokens checked once per table: most of a 65,536-line table repeats them."""

    __slots__ = ("destinations", "dports", "protocols", "sources", "tails")

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, int, AddressScope]] = {}
        self.destinations: dict[str, tuple[str, int, AddressScope]] = {}
        self.protocols: dict[str, int] = {}
        self.dports: dict[str, int] = {}
        self.tails: dict[tuple[str, ...], _Tail] = {}

    def protocol(self, token: str) -> int:
        """Learn a layer-4 protocol number."""
        number = int(token) if token.isdecimal() else MAX_PROTOCOL + 1
        if number > MAX_PROTOCOL:
            raise _Deviation
        self.protocols[token] = number
        return number

    def address(self, token: str, key: str) -> tuple[str, int, AddressScope]:
        """Learn a ``src=`` or ``dst=`` token, as a plain tuple (quicker to unpack)."""
        info = address_info(token[4:]) if token[:4] == key else None
        if info is None:
            raise _Deviation
        learned = (info.address, info.family, info.scope)
        (self.sources if key == "src=" else self.destinations)[token] = learned
        return learned

    def dport(self, token: str) -> int:
        """Learn a ``dport=`` token."""
        port = _count(token[6:]) if token[:6] == "dport=" else None
        if port is None or port > MAX_PORT:
            raise _Deviation
        self.dports[token] = port
        return port

    def tail(self, tokens: tuple[str, ...]) -> _Tail:
        """Learn the flags and keys after the reply tuple, which must end in ``use=``."""
        flags = {token for token in tokens if token[:1] == "["}
        keyed = [token for token in tokens if token[:1] != "["]
        fields = dict(token.partition("=")[::2] for token in keyed)
        # Left to the general reader: a key repeated after an empty value ("use= use=1"),
        # and counters after the tuples (one direction counted, or counted twice).
        if (
            not flags <= _ASSURED_FLAGS
            or not _all_keyed(keyed)
            or not _valid_fields(fields)
            or not _COUNTER_KEYS.isdisjoint(fields)
        ):
            raise _Deviation
        tail = (
            bool(flags),
            bool(flags & _OFFLOAD_FLAGS),
            int(fields.get("mark", 0)),
            int(fields.get("zone", 0)),
            fields.get("secctx"),
        )
        self.tails[tokens] = tail
        return tail


def parse_proc(text: str) -> ParseResult:  # noqa: PLR0912, PLR0915 - one hot loop, inlined
    """Parse ``/proc/net/nf_conntrack`` or ``conntrack -L [-o extended]`` output."""
    if not isinstance(text, str):
        raise ConntrackParseError(f"expected text, got {type(text).__name__}")
    stats = ParseStats()
    flows: list[Flow] = []
    append = flows.append
    learned = _Learned()
    sources = learned.sources
    destinations = learned.destinations
    protocols = learned.protocols
    dports = learned.dports
    tails = learned.tails
    states = _STATES
    for t in map(str.split, text.split("\n")):
        if not t:
            continue
        try:
            b = 2 if t[0] in _FAMILY_TOKENS else 0
            tracker = t[b]
            x = t[b + 1]
            protocol = protocols.get(x) or learned.protocol(x)
            x = t[b + 2]
            if x[:4] == "src=":
                timeout = state = None
                b += 2
            elif x.isdecimal():
                timeout = int(x)
                x = t[b + 3]
                state = None if x[:4] == "src=" else states.get(x) or _unknown_state(x)
                b += 3 if state is None else 4
            else:
                timeout = None
                state = states.get(x) or _unknown_state(x)
                b += 3
            x = t[b]
            src_address, family, src_scope = sources.get(x) or learned.address(x, "src=")
            x = t[b + 1]
            dst_address, dst_family, dst_scope = destinations.get(x) or learned.address(x, "dst=")
            x = t[b + 2]
            if protocol in _PORT_PROTOCOLS:
                if x[:6] != "sport=":
                    raise _Deviation
                sport: int | None = int(x[6:])
                x = t[b + 3]
                dport: int | None = dports.get(x) or learned.dport(x)
                width = 4
            else:
                sport = dport = None
                width = _TUPLE_WIDTHS.get(tracker, 2)
                if not _all_keyed(t[b + 2 : b + width]):
                    raise _Deviation
            b += width
            x = t[b]
            if x[:8] == "packets=":
                orig_packets: int | None = int(x[8:])
                x = t[b + 1]
                if x[:6] != "bytes=":
                    raise _Deviation
                orig_bytes: int | None = int(x[6:])
                b += 2
            else:
                orig_packets = orig_bytes = None
            replied = t[b] != "[UNREPLIED]"
            if not replied:
                b += 1
            if (
                t[b][:4] != "src="
                or t[b + 1][:4] != "dst="
                or len(t[b]) == 4  # noqa: PLR2004 - "src=" without a value
                or len(t[b + 1]) == 4  # noqa: PLR2004
                or (
                    t[b + 2][:6] != "sport="
                    or t[b + 3][:6] != "dport="
                    or len(t[b + 2]) == 6  # noqa: PLR2004
                    or len(t[b + 3]) == 6  # noqa: PLR2004
                    if sport is not None
                    else not _all_keyed(t[b + 2 : b + width])
                )
            ):
                raise _Deviation
            b += width
            if orig_packets is None or orig_bytes is None:
                reply_packets: int | None = None
                reply_bytes: int | None = None
                total_packets: int | None = None
                total_bytes: int | None = None
            else:
                x = t[b]
                if x[:8] != "packets=":
                    raise _Deviation
                reply_packets = int(x[8:])
                x = t[b + 1]
                if x[:6] != "bytes=":
                    raise _Deviation
                reply_bytes = int(x[6:])
                if orig_packets | orig_bytes | reply_packets | reply_bytes < 0:  # any negative
                    raise _Deviation
                total_packets = orig_packets + reply_packets
                total_bytes = orig_bytes + reply_bytes
                b += 2
            tail = tuple(t[b:])
            assured, offloaded, mark, zone, secctx = tails.get(tail) or learned.tail(tail)
            if (
                family != dst_family
                or (sport is not None and not 0 <= sport <= MAX_PORT)
                or (t[0] in _FAMILY_TOKENS and t[0] != FAMILY_NAMES[family])
            ):
                raise _Deviation
        except (_Deviation, IndexError, TypeError, ValueError):
            flow_or_reason = _read_tokens(t)
            if isinstance(flow_or_reason, Flow):
                append(flow_or_reason)
            else:
                stats.skipped[flow_or_reason] += 1
            continue
        append(
            Flow(
                family,
                protocol,
                src_address,
                dst_address,
                sport,
                dport,
                src_scope,
                dst_scope,
                replied,
                assured,
                state,
                timeout,
                total_packets,
                total_bytes,
                reply_packets,
                reply_bytes,
                offloaded,
                mark,
                zone,
                secctx,
            )
        )
    return finish(flows, stats, text)


class _Parts(NamedTuple):
    """One entry's tokens sorted by the general reader."""

    family_token: str | None
    protocol: int
    timeout: int | None
    state: str | None
    orig: dict[str, str]
    reply: dict[str, str]
    fields: dict[str, str]
    flags: set[str]


def _read_tokens(t: list[str]) -> Flow | SkipReason:
    """Read one entry's tokens in any key order: a Flow, or why it cannot be one."""
    parts = _sort_tokens(t)
    if isinstance(parts, SkipReason):
        return parts
    checked = _check(parts)
    if isinstance(checked, SkipReason):
        return checked
    src, dst = checked
    orig, reply = parts.orig, parts.reply
    counted = "packets" in orig
    return Flow(
        src.family,
        parts.protocol,
        src.address,
        dst.address,
        int(orig["sport"]) if "sport" in orig else None,
        int(orig["dport"]) if "dport" in orig else None,
        src.scope,
        dst.scope,
        "[UNREPLIED]" not in parts.flags,
        bool(parts.flags & _ASSURED_FLAGS),
        parts.state,
        parts.timeout,
        int(orig["packets"]) + int(reply["packets"]) if counted else None,
        int(orig["bytes"]) + int(reply["bytes"]) if counted else None,
        int(reply["packets"]) if counted else None,
        int(reply["bytes"]) if counted else None,
        bool(parts.flags & _OFFLOAD_FLAGS),
        int(parts.fields.get("mark", 0)),
        int(parts.fields.get("zone", 0)),
        parts.fields.get("secctx"),
    )


def _sort_tokens(t: list[str]) -> _Parts | SkipReason:
    """Sort an entry's tokens into header, the two tuples, the other keys and the flags."""
    family_token = t[0] if t[0] in _FAMILY_TOKENS else None
    i = 0 if family_token is None else 2
    protocol = _decimal(t[i + 1]) if len(t) >= i + _MIN_TOKENS else None
    if protocol is None:
        return SkipReason.SUMMARY if _SUMMARY.match(" ".join(t)) else SkipReason.LAYOUT
    i += 2
    timeout = _decimal(t[i])
    if timeout is not None:
        i += 1
    state = None
    if "=" not in t[i] and t[i][:1] != "[":
        state = _STATES.get(t[i], t[i])
        i += 1
    tuples: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    flags: set[str] = set()
    bracket = False  # inside a multi-word bracket such as [start=Fri Nov 27 08:16:09 2026]
    for token in t[i:]:
        if bracket or token[:1] == "[":
            if not bracket and token[-1:] == "]" and token[1:2].isupper():
                flags.add(token)
            bracket = token[-1:] != "]"
            continue
        key, _, value = token.partition("=")
        if not value:
            return SkipReason.LAYOUT
        if key == "src" and len(tuples) < _DIRECTIONS:
            tuples.append({})
        in_tuple = tuples and key in _TUPLE_KEYS and key not in tuples[-1]
        (tuples[-1] if in_tuple else fields)[key] = value
    if len(tuples) != _DIRECTIONS or bracket or not flags <= _FLAGS:
        return SkipReason.LAYOUT
    return _Parts(family_token, protocol, timeout, state, tuples[0], tuples[1], fields, flags)


def _check(parts: _Parts) -> SkipReason | tuple[AddressInfo, AddressInfo]:  # noqa: PLR0911
    """Why an entry's parts do not make a flow, or else its source and destination."""
    orig, reply = parts.orig, parts.reply
    if not (_valid_fields(parts.fields) and "dst" in orig and "dst" in reply):
        return SkipReason.LAYOUT
    if parts.protocol > MAX_PROTOCOL:
        return SkipReason.PROTOCOL
    src, dst = address_info(orig["src"]), address_info(orig["dst"])
    if src is None or dst is None:
        return SkipReason.ADDRESS
    if src.family != dst.family or parts.family_token not in {None, FAMILY_NAMES[src.family]}:
        return SkipReason.FAMILY
    ports = [orig.get(key) for key in ("sport", "dport")]
    if ports != [None, None] and not all(port is not None and _is_port(port) for port in ports):
        return SkipReason.PORT
    counters = [tup.get(key) for tup in (orig, reply) for key in ("packets", "bytes")]
    if any(counters) and not all(
        value is not None and _count(value) is not None for value in counters
    ):
        return SkipReason.VALUE
    return src, dst


def _valid_fields(fields: dict[str, str]) -> bool:
    """The keys after the tuples: ``use=`` present, every value set, numbers where due."""
    return (
        "use" in fields
        and all(fields.values())
        and all(_count(fields[key]) is not None for key in ("mark", "zone", "use") if key in fields)
    )


def _unknown_state(token: str) -> str:
    """A state name the table has not shown before; a key=value or flag is no state."""
    if "=" in token or token[:1] == "[":
        raise _Deviation
    return token


def _all_keyed(tokens: list[str]) -> bool:
    """True when every token is key=value with a value, as tuple keys must be."""
    return all(token.partition("=")[2] for token in tokens)


def _decimal(text: str) -> int | None:
    """The number in a header field (protocol, timeout): decimal digits only, else None."""
    return _count(text) if text.isdecimal() else None


def _count(text: str) -> int | None:
    """A non-negative integer as ``int()`` reads it (the rule the fast path applies), or None."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _is_port(text: str) -> bool:
    """True for a port number 0-65535."""
    port = _count(text)
    return port is not None and port <= MAX_PORT
