"""Properties of both parsers, checked with generated input (hypothesis).

- Robustness: any input gives a ParseResult or ConntrackParseError, never another
  exception; damage to some lines or entries never costs the flows of the others.
- Fast path against reference: parse_proc reads common lines through a fast loop,
  parse_luci_json decodes LuCI's reply into typed structs and reads learned values;
  on valid input they must give exactly what the general readers
  (conntrack_text._read_tokens, conntrack_luci._read_entry) give, and what the
  generated line or entry describes.
"""

import json
import socket
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import NamedTuple

import msgspec
from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.phonehome.core import conntrack_luci, conntrack_text
from custom_components.phonehome.core.addresses import address_info
from custom_components.phonehome.core.conntrack import (
    ConntrackParseError,
    ParseResult,
    SkipReason,
    parse_luci,
    parse_luci_json,
    parse_proc,
)
from custom_components.phonehome.core.model import UNKNOWN_PROTOCOL, Flow

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_LINES = [
    line
    for path in sorted(FIXTURES.glob("*.txt"))
    for line in path.read_text(encoding="utf-8").splitlines()
    if line.strip()
]

TCP_STATES = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
]
SCTP_STATES = [
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
]
DCCP_STATES = ["REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT"]
PORT_PROTOCOLS = {"tcp": (6, TCP_STATES), "udp": (17, []), "sctp": (132, SCTP_STATES)}
PORT_PROTOCOLS |= {"dccp": (33, DCCP_STATES)}
SECCTXS = ["system_u:object_r:unlabeled_t:s0", "unconfined_u:object_r:user_t:s0-s0:c0.c1023"]
U32 = st.integers(0, 2**32 - 1)
COUNTER = st.integers(0, 2**48)


def fields(flow: Flow) -> dict[str, object]:
    """A flow's fields by name, so that a failing comparison shows the fields that differ."""
    return msgspec.structs.asdict(flow)


def replace(flow: Flow, **changes: object) -> Flow:
    return msgspec.structs.replace(flow, **changes)


def canonical(address: IPv4Address | IPv6Address) -> str:
    """The text inet_ntop gives, independent of the module under test."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, address.packed)


def scope(address: IPv4Address | IPv6Address) -> object:
    info = address_info(str(address))
    assert info is not None
    return info.scope


# ------------------------------------------------------------------ generated text lines


class Line(NamedTuple):
    """A generated conntrack line and the flow it describes."""

    text: str
    flow: Flow
    zone_known: bool
    """False for a per-direction zone, whose Flow.zone the model leaves open."""


@st.composite
def conntrack_lines(draw: st.DrawFn) -> Line:  # noqa: PLR0912, PLR0915 - one line, field by field
    family = draw(st.sampled_from([4, 6]))
    src = draw(st.ip_addresses(v=family))
    dst = draw(st.ip_addresses(v=family))
    full_form = family == 6 and draw(st.booleans())

    def text(address: IPv4Address | IPv6Address) -> str:
        return address.exploded if full_form else str(address)

    kind = draw(st.sampled_from([*PORT_PROTOCOLS, "icmp", "gre", "unknown"]))
    state = None
    sport = dport = None
    if kind in PORT_PROTOCOLS:
        name, (number, states) = kind, PORT_PROTOCOLS[kind]
        state = draw(st.none() | st.sampled_from(states)) if states else None
        sport, dport = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
        orig_l4 = [f"sport={sport}", f"dport={dport}"]
        reply_l4 = [f"sport={dport}", f"dport={sport}"]
    elif kind == "icmp":
        name, number = ("icmp", 1) if family == 4 else ("icmpv6", 58)
        request, answer = (8, 0) if family == 4 else (128, 129)
        ident = draw(st.integers(0, 65535))
        orig_l4 = [f"type={request}", "code=0", f"id={ident}"]
        reply_l4 = [f"type={answer}", "code=0", f"id={ident}"]
    elif kind == "gre":
        name, number = "gre", 47
        orig_l4 = reply_l4 = ["srckey=0x0", "dstkey=0x0"]
    else:
        name, number = "unknown", draw(st.integers(0, 255))
        orig_l4 = reply_l4 = []
    timeout = draw(st.none() | st.integers(0, 10**6))
    counters = draw(st.none() | st.tuples(COUNTER, COUNTER, COUNTER, COUNTER))
    unreplied = draw(st.booleans())
    flag = draw(st.sampled_from([None, "[ASSURED]", "[OFFLOAD]", "[HW_OFFLOAD]"]))
    mark = draw(st.none() | U32)
    secctx = draw(st.none() | st.sampled_from(SECCTXS))
    zone_kind = draw(st.sampled_from([None, "zone", "zone-orig", "zone-reply"]))
    zone = draw(st.integers(0, 65535))
    timestamp = draw(
        st.sampled_from([None, "delta-time=5", "delta-time=1 [start=Fri Nov 27 08:16:09 2026]"])
    )
    use = draw(st.integers(1, 1000))
    conn_id = draw(st.none() | U32)

    parts = []
    if draw(st.booleans()):
        parts.append(f"{'ipv4' if family == 4 else 'ipv6':<8} {2 if family == 4 else 10}")
    parts.append(f"{name:<8} {number}")
    if timeout is not None:
        parts.append(str(timeout))
    if state is not None:
        parts.append(state)
    parts += [f"src={text(src)}", f"dst={text(dst)}", *orig_l4]
    if zone_kind == "zone-orig":
        parts.append(f"zone-orig={zone}")
    if counters:
        parts += [f"packets={counters[0]}", f"bytes={counters[1]}"]
    if unreplied:
        parts.append("[UNREPLIED]")
    parts += [f"src={text(dst)}", f"dst={text(src)}", *reply_l4]
    if zone_kind == "zone-reply":
        parts.append(f"zone-reply={zone}")
    if counters:
        parts += [f"packets={counters[2]}", f"bytes={counters[3]}"]
    if flag:
        parts.append(flag)
    if mark is not None:
        parts.append(f"mark={mark}")
    if secctx:
        parts.append(f"secctx={secctx}")
    if zone_kind == "zone":
        parts.append(f"zone={zone}")
    if timestamp:
        parts.append(timestamp)
    parts.append(f"use={use}")
    if conn_id is not None:
        parts.append(f"id={conn_id}")

    flow = Flow(
        family=family,
        protocol=number,
        src=canonical(src),
        dst=canonical(dst),
        sport=sport,
        dport=dport,
        src_scope=scope(src),
        dst_scope=scope(dst),
        replied=not unreplied,
        assured=flag is not None,
        state=state,
        timeout=timeout,
        total_packets=counters[0] + counters[2] if counters else None,
        total_bytes=counters[1] + counters[3] if counters else None,
        reply_packets=counters[2] if counters else None,
        reply_bytes=counters[3] if counters else None,
        offloaded=flag in {"[OFFLOAD]", "[HW_OFFLOAD]"},
        mark=mark or 0,
        zone=zone if zone_kind == "zone" else 0,
        secctx=secctx,
    )
    return Line(" ".join(parts), flow, zone_kind in {None, "zone"})


VALID_LINES = conntrack_lines() | st.sampled_from(FIXTURE_LINES).map(
    lambda line: Line(line, conntrack_text._read_tokens(line.split()), zone_known=True)  # type: ignore[arg-type]
)


def general(line: str) -> Flow | SkipReason:
    return conntrack_text._read_tokens(line.split())


@SETTINGS
@given(conntrack_lines())
def test_valid_line_gives_the_flow_it_describes(line: Line) -> None:
    [flow] = parse_proc(line.text).flows
    if not line.zone_known:
        flow = replace(flow, zone=line.flow.zone)
    assert fields(flow) == fields(line.flow), line.text


@SETTINGS
@given(conntrack_lines())
def test_fast_reader_equals_general_reader_on_valid_line(line: Line) -> None:
    assert parse_proc(line.text).flows == [general(line.text)], line.text


@SETTINGS
@given(st.lists(VALID_LINES, min_size=1, max_size=30))
def test_fast_reader_equals_general_reader_on_a_table(lines: list[Line]) -> None:
    texts = [line.text for line in lines]
    result = parse_proc("\n".join(texts))
    assert result.flows == [general(text) for text in texts]
    assert not result.stats.skipped


# ------------------------------------------------------------------ damaged text


def check_result(result: ParseResult) -> None:
    """Statistics add up and every flow is well-formed."""
    assert result.stats.flows == len(result.flows)
    assert result.stats.lines == result.stats.flows + result.stats.skipped.total()
    for flow in result.flows:
        assert type(flow) is Flow
        info = address_info(flow.src)
        assert info is not None
        assert (info.address, info.family, info.scope) == (flow.src, flow.family, flow.src_scope)
        info = address_info(flow.dst)
        assert info is not None
        assert (info.address, info.family, info.scope) == (flow.dst, flow.family, flow.dst_scope)
        assert type(flow.protocol) is int
        assert 0 <= flow.protocol <= 255
        for port in (flow.sport, flow.dport):
            assert port is None or (type(port) is int and 0 <= port <= 65535)
        for value in (flow.timeout, flow.total_packets, flow.total_bytes):
            assert value is None or (type(value) is int and value >= 0)
        for value in (flow.mark, flow.zone):
            assert type(value) is int
            assert value >= 0


def parse_or_error(text: str) -> ParseResult | None:
    """parse_proc's result, or None for ConntrackParseError; any other exception fails."""
    try:
        result = parse_proc(text)
    except ConntrackParseError:
        return None
    check_result(result)
    return result


@SETTINGS
@given(st.text())
def test_any_text_gives_result_or_parse_error(text: str) -> None:
    parse_or_error(text)


@SETTINGS
@given(st.lists(st.text(alphabet="ipv46 tcpudrsn=[]ASURED0123456789.:\n", max_size=80)))
def test_text_of_conntrack_like_words_gives_result_or_parse_error(lines: list[str]) -> None:
    parse_or_error("\n".join(lines))


@st.composite
def damaged(draw: st.DrawFn, text: str) -> str:
    """The text, truncated, with characters replaced, inserted or deleted."""
    how = draw(st.sampled_from(["truncate", "replace", "insert", "delete"]))
    chars = list(text)
    if how == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(chars) - 1))
        if how == "replace":
            chars[i] = draw(st.characters())
        elif how == "insert":
            chars.insert(i, draw(st.characters()))
        elif len(chars) > 1:
            del chars[i]
    return "".join(chars)


@SETTINGS
@given(st.lists(st.tuples(VALID_LINES, st.integers(0, 3)), min_size=1, max_size=12), st.data())
def test_damaged_table_keeps_the_flows_of_untouched_lines(
    lines: list[tuple[Line, int]], data: st.DataObject
) -> None:
    texts, untouched = [], []
    for line, action in lines:
        if action == 0:  # untouched
            texts.append(line.text)
            untouched.append(general(line.text))
        elif action == 1:  # damaged
            texts.append(data.draw(damaged(line.text)))
        elif action == 2:
            texts += [line.text, data.draw(st.text())]
            untouched.append(general(line.text))
        else:  # replaced by garbage
            texts.append(data.draw(st.text()))
    result = parse_or_error("\n".join(texts))
    if untouched:
        assert result is not None
        assert Counter(result.flows) >= Counter(untouched)


@SETTINGS
@given(VALID_LINES, st.data())
def test_damaged_line_gives_result_or_parse_error(line: Line, data: st.DataObject) -> None:
    parse_or_error(data.draw(damaged(line.text)))


# ------------------------------------------------------------------ LuCI entries

LAYER4 = {"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33, "icmp": 1, "ipv6-icmp": 58, "gre": 47}
LAYER4 |= {"esp": 50, "unknown": UNKNOWN_PROTOCOL, "bogus": UNKNOWN_PROTOCOL}
WITH_PORTS = {"tcp", "udp", "sctp", "dccp"}
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=10)


class Entry(NamedTuple):
    """A generated LuCI entry and the flow it describes."""

    entry: dict[str, object]
    flow: Flow


@st.composite
def luci_entries(draw: st.DrawFn) -> Entry:
    family = draw(st.sampled_from([4, 6]))
    src = draw(st.ip_addresses(v=family))
    dst = draw(st.ip_addresses(v=family))
    full_form = family == 6 and draw(st.booleans())

    def text(address: IPv4Address | IPv6Address) -> str:
        return address.exploded if full_form else str(address)

    layer4 = draw(st.sampled_from(sorted(LAYER4)))
    packets = draw(st.integers(0, 2**40))
    byte_count = draw(st.integers(0, 2**48))
    timeout = draw(st.integers(0, 10**6))
    entry: dict[str, object] = {
        "bytes": byte_count,
        "packets": packets,
        "layer3": f"ipv{family}",
        "layer4": layer4,
        "timeout": timeout,
        "src": text(src),
        "dst": text(dst),
    }
    sport = dport = None
    if layer4 in WITH_PORTS:
        sport, dport = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
        entry |= {"sport": sport, "dport": dport}
    elif layer4 in {"icmp", "ipv6-icmp"}:
        entry |= {"type": "8", "code": "0", "id": draw(DIGITS)}
    mark = draw(st.none() | DIGITS)
    zone = draw(st.none() | DIGITS)
    secctx = draw(st.none() | st.sampled_from(SECCTXS))
    for key, value in (("mark", mark), ("secctx", secctx), ("zone", zone)):
        if value is not None:
            entry[key] = value
    entry["use"] = draw(DIGITS)
    if draw(st.booleans()):  # LuCI writes keys in line order; order must not matter
        entry = dict(reversed(entry.items()))
    flow = Flow(
        family=family,
        protocol=LAYER4[layer4],
        src=canonical(src),
        dst=canonical(dst),
        sport=sport,
        dport=dport,
        src_scope=scope(src),
        dst_scope=scope(dst),
        replied=None,
        assured=None,
        state=None,
        timeout=timeout or None,
        total_packets=packets or None,
        total_bytes=byte_count if packets else None,
        reply_packets=None,
        reply_bytes=None,
        offloaded=False,
        mark=int(mark or 0),
        zone=int(zone or 0),
        secctx=secctx,
    )
    return Entry(entry, flow)


def reference(entry: object) -> Flow | SkipReason:
    """The field-by-field reader of one entry."""
    return conntrack_luci._read_entry(entry)


def payload(entries: object) -> str:
    """The JSON-RPC reply uhttpd sends for ``call luci getConntrackList``."""
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": [0, {"result": entries}]})


@SETTINGS
@given(luci_entries())
def test_valid_entry_gives_the_flow_it_describes(entry: Entry) -> None:
    expected = [fields(entry.flow)] * 2
    assert [fields(flow) for flow in parse_luci([entry.entry] * 2).flows] == expected
    assert [fields(flow) for flow in parse_luci_json(payload([entry.entry] * 2)).flows] == expected


@SETTINGS
@given(luci_entries())
def test_json_reader_equals_reference_reader_on_valid_entry(entry: Entry) -> None:
    """The first sight goes field by field, the second through the typed loop."""
    assert parse_luci_json(payload([entry.entry] * 2)).flows == [reference(entry.entry)] * 2


@SETTINGS
@given(st.lists(luci_entries(), min_size=1, max_size=30))
def test_json_reader_equals_reference_reader_on_a_list(entries: list[Entry]) -> None:
    values = [entry.entry for entry in entries] * 2
    result = parse_luci_json(payload(values))
    assert result.flows == [reference(value) for value in values]
    assert not result.stats.skipped
    assert parse_luci(values) == result


JSON_KEYS = st.sampled_from(
    ["src", "dst", "sport", "dport", "packets", "bytes", "timeout", "layer4", "mark", "zone"]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["192.168.1.2", "2001:db8::1", "tcp", "ipv6-icmp", "0", "65535", ""])
    | st.sampled_from([0, 1, -1, 65535, 65536, 2**63])
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(JSON_KEYS | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=12,
)


def outcome(parse: Callable[[], ParseResult]) -> ParseResult | None:
    """A parse's result, or None for ConntrackParseError; any other exception fails."""
    try:
        result = parse()
    except ConntrackParseError:
        return None
    assert result.stats.flows == len(result.flows)
    assert result.stats.lines == result.stats.flows + result.stats.skipped.total()
    assert all(type(flow) is Flow for flow in result.flows)
    return result


@SETTINGS
@given(JSON)
def test_any_json_value_gives_result_or_parse_error(value: object) -> None:
    outcome(lambda: parse_luci(value))
    outcome(lambda: parse_luci_json(json.dumps(value)))
    outcome(lambda: parse_luci_json(payload(value)))


@SETTINGS
@given(st.binary() | st.text())
def test_any_reply_gives_result_or_parse_error(reply: bytes | str) -> None:
    outcome(lambda: parse_luci_json(reply))


@SETTINGS
@given(st.lists(JSON, max_size=10))
def test_json_reader_equals_decoded_reader_on_any_list(values: list[object]) -> None:
    decoded = outcome(lambda: parse_luci(values))
    assert outcome(lambda: parse_luci_json(payload(values))) == decoded
    if decoded is not None:
        assert decoded.stats.lines == len(values)


@st.composite
def damaged_entry(draw: st.DrawFn, entry: dict[str, object]) -> object:
    """The entry with values replaced by random JSON values, or keys deleted or added."""
    entry = dict(entry)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        if how == "replace" or (how == "delete" and not entry):
            entry[draw(st.sampled_from(sorted(entry) or ["src"]))] = draw(JSON)
        elif how == "delete":
            del entry[draw(st.sampled_from(sorted(entry)))]
        else:
            entry[draw(JSON_KEYS | st.text(max_size=6))] = draw(JSON)
    return entry


@SETTINGS
@given(st.lists(st.tuples(luci_entries(), st.integers(0, 3)), min_size=1, max_size=12), st.data())
def test_damaged_entries_keep_the_flows_of_untouched_entries(
    entries: list[tuple[Entry, int]], data: st.DataObject
) -> None:
    values: list[object] = []
    untouched = []
    for entry, action in entries:
        if action == 0:  # untouched
            values.append(entry.entry)
            untouched.append(entry.flow)
        elif action == 1:  # damaged
            values.append(data.draw(damaged_entry(entry.entry)))
        elif action == 2:  # untouched, with a random value after it
            values += [entry.entry, data.draw(JSON)]
            untouched.append(entry.flow)
        else:  # replaced by a random value
            values.append(data.draw(JSON))
    for parse in (lambda: parse_luci(values), lambda: parse_luci_json(payload(values))):
        result = outcome(parse)
        if untouched:
            assert result is not None
            assert Counter(result.flows) >= Counter(untouched)
