"""parse_luci and parse_luci_json: LuCI's getConntrackList, built by the emulator from /proc text.

Every behaviour is checked through three doors: ``parse_luci`` on the decoded entry
list, and ``parse_luci_json`` on the JSON-RPC reply as text and as bytes (the typed
msgspec decode, with ``parse_luci`` as its fallback for replies it cannot type).
"""

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from custom_components.phonehome.core import conntrack_luci
from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.conntrack import (
    ConntrackParseError,
    ParseResult,
    SkipReason,
    parse_luci,
    parse_luci_json,
    parse_proc,
)
from custom_components.phonehome.core.model import UNKNOWN_PROTOCOL, Flow
from tests.emulators.luci_conntrack import conntrack_list

FIXTURES = Path(__file__).parent / "fixtures"
PROC_TEXT = (FIXTURES / "proc_lab.txt").read_text(encoding="utf-8")
LUCI_KEPT = (
    "family",
    "protocol",
    "src",
    "dst",
    "sport",
    "dport",
    "total_packets",
    "total_bytes",
    "mark",
    "zone",
)
"""Flow fields LuCI's getConntrackList keeps."""


def fields(flow: Flow) -> dict[str, object]:
    """A flow's fields by name, so that a failing comparison shows the fields that differ."""
    return msgspec.structs.asdict(flow)


def replace(flow: Flow, **changes: object) -> Flow:
    return msgspec.structs.replace(flow, **changes)


def luci_entries(proc_text: str = PROC_TEXT) -> list[dict[str, object]]:
    """What LuCI returns for this /proc text, after the JSON round trip of ubus."""
    return json.loads(json.dumps(conntrack_list(proc_text)))


def payload(entries: object) -> str:
    """The JSON-RPC reply uhttpd sends for ``call luci getConntrackList``."""
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": [0, {"result": entries}]})


def reference(entry: object) -> Flow | SkipReason:
    """The field-by-field reader of one entry."""
    return conntrack_luci._read_entry(entry)


def kept(flows: list[Flow]) -> Counter[tuple[object, ...]]:
    return Counter(tuple(getattr(flow, name) for name in LUCI_KEPT) for flow in flows)


Reader = Callable[[list[object]], ParseResult]
READERS: dict[str, Reader] = {
    "decoded": parse_luci,
    "json-text": lambda entries: parse_luci_json(payload(entries)),
    "json-bytes": lambda entries: parse_luci_json(payload(entries).encode()),
}


@pytest.fixture(params=sorted(READERS))
def read(request: pytest.FixtureRequest) -> Reader:
    """Each way into the LuCI parser, given the entry list."""
    return READERS[request.param]


GOOD: dict[str, object] = {
    "bytes": 397,
    "packets": 7,
    "layer3": "ipv4",
    "layer4": "tcp",
    "timeout": 431999,
    "src": "192.168.77.2",
    "dst": "203.0.113.10",
    "sport": 40030,
    "dport": 443,
    "mark": "0",
    "zone": "0",
    "use": "2",
}
"""The ESTABLISHED TCP entry of proc_lab.txt, as LuCI returns it."""
GOOD_FLOW = Flow(
    family=4,
    protocol=6,
    src="192.168.77.2",
    dst="203.0.113.10",
    sport=40030,
    dport=443,
    src_scope=AddressScope.LAN,
    dst_scope=AddressScope.DOCUMENTATION,
    replied=None,
    assured=None,
    state=None,
    timeout=431999,
    total_packets=7,
    total_bytes=397,
    reply_packets=None,
    reply_bytes=None,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
OTHER: dict[str, object] = GOOD | {"sport": 40031, "packets": 2, "bytes": 120}
OTHER_FLOW = replace(GOOD_FLOW, sport=40031, total_packets=2, total_bytes=120)


def one(read: Reader, entry: dict[str, object]) -> Flow:
    """The flow of one entry read between good ones, at first sight and once learned."""
    result = read([GOOD, entry, OTHER, entry])
    assert result.flows[0] == GOOD_FLOW
    assert result.flows[2] == OTHER_FLOW
    assert len(result.flows) == 4, result.stats
    assert result.flows[1] == result.flows[3]
    return result.flows[1]


# ------------------------------------------------------------------ against /proc


def test_emulator_entries_parse_without_skips(read: Reader) -> None:
    entries = luci_entries()
    result = read(entries)
    assert not result.stats.skipped
    assert result.stats.lines == result.stats.flows == len(entries) == 6


def test_luci_flows_agree_with_proc_flows_on_kept_fields(read: Reader) -> None:
    proc = [flow for flow in parse_proc(PROC_TEXT).flows if flow.state != "TIME_WAIT"]
    assert kept(read(luci_entries()).flows) == kept(proc)


def test_luci_flows_have_canonical_addresses_and_scopes_of_proc(read: Reader) -> None:
    proc = [flow for flow in parse_proc(PROC_TEXT).flows if flow.state != "TIME_WAIT"]
    scopes = Counter((f.src, f.src_scope, f.dst, f.dst_scope) for f in proc)
    luci = read(luci_entries()).flows
    assert Counter((f.src, f.src_scope, f.dst, f.dst_scope) for f in luci) == scopes


def test_luci_drops_the_time_wait_entry(read: Reader) -> None:
    flows = read(luci_entries()).flows
    assert 40032 not in {flow.sport for flow in flows}


def test_luci_flows_have_no_flags_state_or_reply_counters(read: Reader) -> None:
    for flow in read(luci_entries()).flows:
        assert (flow.replied, flow.assured, flow.state) == (None, None, None), flow
        assert (flow.reply_packets, flow.reply_bytes) == (None, None), flow
        assert flow.offloaded is False, flow


def test_luci_icmp_flows_have_no_ports(read: Reader) -> None:
    icmp = [f for f in read(luci_entries()).flows if f.protocol in {1, 58}]
    assert len(icmp) == 2
    assert {(f.sport, f.dport) for f in icmp} == {(None, None)}


@pytest.mark.parametrize("index", range(6))
def test_json_reader_agrees_with_reference_reader_on_emulator_entry(index: int) -> None:
    entry = luci_entries()[index]
    assert parse_luci_json(payload([entry, entry])).flows == [reference(entry)] * 2


def test_json_reader_agrees_with_decoded_reader_on_emulator_table() -> None:
    entries = luci_entries()
    assert parse_luci_json(payload(entries)) == parse_luci(entries)


def test_secctx_from_selinux_kernel_is_kept(read: Reader) -> None:
    entries = luci_entries((FIXTURES / "proc_selinux.txt").read_text(encoding="utf-8"))
    flows = read(entries).flows
    assert {flow.secctx for flow in flows} == {"system_u:object_r:unlabeled_t:s0"}


def test_accounting_off_gives_none_counters(read: Reader) -> None:
    entries = luci_entries((FIXTURES / "proc_accounting_off.txt").read_text(encoding="utf-8"))
    flows = read(entries).flows
    assert {(f.total_packets, f.total_bytes) for f in flows} == {(None, None)}


def test_offloaded_entries_have_no_timeout(read: Reader) -> None:
    entries = luci_entries((FIXTURES / "proc_offload.txt").read_text(encoding="utf-8"))
    assert {flow.timeout for flow in read(entries).flows} == {None}


def test_marks_and_zones_from_proc_become_numbers(read: Reader) -> None:
    entries = luci_entries((FIXTURES / "proc_marks.txt").read_text(encoding="utf-8"))
    assert [(f.mark, f.zone) for f in read(entries).flows] == [(16, 3), (4294967295, 65535)]


# ------------------------------------------------------------------ fields


def test_good_entry_gives_its_flow_field_by_field(read: Reader) -> None:
    assert [fields(flow) for flow in read([GOOD]).flows] == [fields(GOOD_FLOW)]


@pytest.mark.parametrize(
    ("layer4", "protocol"),
    [
        ("tcp", 6),
        ("udp", 17),
        ("icmp", 1),
        ("ipv6-icmp", 58),
        ("gre", 47),
        ("sctp", 132),
        ("esp", 50),
        ("unknown", UNKNOWN_PROTOCOL),
        ("no-such-protocol", UNKNOWN_PROTOCOL),
        ("", UNKNOWN_PROTOCOL),
    ],
)
def test_layer4_name_maps_to_protocol_number(read: Reader, layer4: str, protocol: int) -> None:
    assert one(read, GOOD | {"layer4": layer4}).protocol == protocol


def test_unknown_protocol_is_minus_one() -> None:
    assert UNKNOWN_PROTOCOL == -1


def test_timeout_zero_gives_none(read: Reader) -> None:
    assert one(read, GOOD | {"timeout": 0}).timeout is None


def test_absent_timeout_gives_none(read: Reader) -> None:
    entry = {key: value for key, value in GOOD.items() if key != "timeout"}
    assert one(read, entry).timeout is None


def test_zero_packets_give_none_counters(read: Reader) -> None:
    flow = one(read, GOOD | {"packets": 0, "bytes": 0})
    assert (flow.total_packets, flow.total_bytes) == (None, None)


def test_absent_counters_give_none(read: Reader) -> None:
    entry = {key: value for key, value in GOOD.items() if key not in {"packets", "bytes"}}
    flow = one(read, entry)
    assert (flow.total_packets, flow.total_bytes) == (None, None)


def test_counters_beyond_64_bits_are_kept(read: Reader) -> None:
    flow = one(read, GOOD | {"packets": 2**64 + 1, "bytes": 2**70})
    assert (flow.total_packets, flow.total_bytes) == (2**64 + 1, 2**70)


def test_mark_and_zone_strings_become_numbers(read: Reader) -> None:
    flow = one(read, GOOD | {"mark": "16", "zone": "3"})
    assert (flow.mark, flow.zone) == (16, 3)


def test_absent_mark_and_zone_give_zero(read: Reader) -> None:
    entry = {key: value for key, value in GOOD.items() if key not in {"mark", "zone"}}
    flow = one(read, entry)
    assert (flow.mark, flow.zone) == (0, 0)


def test_null_mark_and_zone_give_zero(read: Reader) -> None:
    flow = one(read, GOOD | {"mark": None, "zone": None})
    assert (flow.mark, flow.zone) == (0, 0)


def test_secctx_is_kept(read: Reader) -> None:
    assert one(read, GOOD | {"secctx": "system_u:object_r:unlabeled_t:s0"}).secctx == (
        "system_u:object_r:unlabeled_t:s0"
    )


def test_full_form_ipv6_becomes_canonical(read: Reader) -> None:
    flow = one(
        read,
        GOOD
        | {
            "layer3": "ipv6",
            "src": "fd00:0077:0000:0000:0000:0000:0000:0002",
            "dst": "2001:0DB8:0001:0000:0000:0000:0000:000A",
        },
    )
    assert (flow.family, flow.src, flow.dst) == (6, "fd00:77::2", "2001:db8:1::a")
    assert (flow.src_scope, flow.dst_scope) == (AddressScope.ULA, AddressScope.DOCUMENTATION)


def test_family_comes_from_addresses_not_layer3(read: Reader) -> None:
    assert one(read, GOOD | {"layer3": "ipv6"}).family == 4


def test_entry_without_ports_has_none_ports(read: Reader) -> None:
    entry = {key: value for key, value in GOOD.items() if key not in {"sport", "dport"}}
    flow = one(read, entry | {"layer4": "icmp", "type": "8", "code": "0", "id": "4660"})
    assert (flow.protocol, flow.sport, flow.dport) == (1, None, None)


def test_null_ports_are_no_ports(read: Reader) -> None:
    flow = one(read, GOOD | {"layer4": "gre", "sport": None, "dport": None})
    assert (flow.protocol, flow.sport, flow.dport) == (47, None, None)


def test_unknown_keys_are_ignored(read: Reader) -> None:
    assert (
        one(read, GOOD | {"delta": "1", "zone-orig": "5", "extra": [1, {"a": None}]}) == GOOD_FLOW
    )


# ------------------------------------------------------------------ bad entries

_WITHOUT = object()
"""Marks a key to remove from GOOD."""


def bad(**changes: object) -> dict[str, object]:
    entry = GOOD | changes
    return {key: value for key, value in entry.items() if value is not _WITHOUT}


BAD_ENTRIES = [
    pytest.param(None, SkipReason.LAYOUT, id="none"),
    pytest.param("entry", SkipReason.LAYOUT, id="string"),
    pytest.param(5, SkipReason.LAYOUT, id="int"),
    pytest.param([GOOD], SkipReason.LAYOUT, id="list"),
    pytest.param(list(GOOD.items()), SkipReason.LAYOUT, id="pairs"),
    pytest.param({}, SkipReason.ADDRESS, id="empty-dict"),
    pytest.param(bad(src=_WITHOUT), SkipReason.ADDRESS, id="missing-src"),
    pytest.param(bad(dst=_WITHOUT), SkipReason.ADDRESS, id="missing-dst"),
    pytest.param(bad(src=None), SkipReason.ADDRESS, id="null-src"),
    pytest.param(bad(src="192.168.77.300"), SkipReason.ADDRESS, id="invalid-src"),
    pytest.param(bad(dst="fe80::1%eth0"), SkipReason.ADDRESS, id="scoped-dst"),
    pytest.param(bad(src=3232255234), SkipReason.ADDRESS, id="int-src"),
    pytest.param(bad(src=["192.168.77.2"]), SkipReason.ADDRESS, id="list-src"),
    pytest.param(bad(dst={"a": 1}), SkipReason.ADDRESS, id="dict-dst"),
    pytest.param(bad(dst="2001:db8::a"), SkipReason.FAMILY, id="mixed-family"),
    pytest.param(bad(sport="40030"), SkipReason.PORT, id="str-sport"),
    pytest.param(bad(dport="443"), SkipReason.PORT, id="str-dport"),
    pytest.param(bad(sport=70000), SkipReason.PORT, id="sport-70000"),
    pytest.param(bad(dport=65536), SkipReason.PORT, id="dport-65536"),
    pytest.param(bad(sport=-1), SkipReason.PORT, id="negative-sport"),
    pytest.param(bad(sport=443.0), SkipReason.PORT, id="float-sport"),
    pytest.param(bad(sport=None), SkipReason.PORT, id="null-sport-only"),
    pytest.param(bad(dport=_WITHOUT), SkipReason.PORT, id="missing-dport-only"),
    pytest.param(bad(sport=_WITHOUT), SkipReason.PORT, id="missing-sport-only"),
    pytest.param(bad(sport=[1]), SkipReason.PORT, id="list-sport"),
    pytest.param(bad(packets=-1), SkipReason.VALUE, id="negative-packets"),
    pytest.param(bad(bytes=-397), SkipReason.VALUE, id="negative-bytes"),
    pytest.param(bad(timeout=-1), SkipReason.VALUE, id="negative-timeout"),
    pytest.param(bad(packets=7.0), SkipReason.VALUE, id="float-packets"),
    pytest.param(bad(bytes=1.5), SkipReason.VALUE, id="float-bytes"),
    pytest.param(bad(timeout="431999"), SkipReason.VALUE, id="str-timeout"),
    pytest.param(bad(packets=None), SkipReason.VALUE, id="null-packets"),
    pytest.param(bad(mark=16), SkipReason.VALUE, id="int-mark"),
    pytest.param(bad(mark="0x10"), SkipReason.VALUE, id="hex-mark"),
    pytest.param(bad(zone="-1"), SkipReason.VALUE, id="negative-zone"),
    pytest.param(bad(zone=""), SkipReason.VALUE, id="empty-zone"),
    pytest.param(bad(mark=["0"]), SkipReason.VALUE, id="list-mark"),
    pytest.param(bad(secctx=""), SkipReason.VALUE, id="empty-secctx"),
    pytest.param(bad(secctx=5), SkipReason.VALUE, id="int-secctx"),
    pytest.param(bad(layer4=["tcp"]), SkipReason.PROTOCOL, id="list-layer4"),
    pytest.param(bad(layer4=6), SkipReason.PROTOCOL, id="int-layer4"),
    pytest.param(bad(layer4=None), SkipReason.PROTOCOL, id="null-layer4"),
    pytest.param(bad(layer4=_WITHOUT), SkipReason.PROTOCOL, id="missing-layer4"),
]

_HUGE = "1" * 5000
"""More digits than int() converts by default (sys.get_int_max_str_digits() is 4300)."""
BAD_ENTRIES += [
    pytest.param(bad(sport=True), SkipReason.PORT, id="bool-sport"),
    pytest.param(bad(dport=False), SkipReason.PORT, id="bool-dport"),
    pytest.param(bad(packets=True), SkipReason.VALUE, id="bool-packets"),
    pytest.param(bad(bytes=True), SkipReason.VALUE, id="bool-bytes"),
    pytest.param(bad(timeout=False), SkipReason.VALUE, id="bool-timeout"),
    pytest.param(bad(mark=_HUGE), SkipReason.VALUE, id="mark-too-long-for-int"),
    pytest.param(bad(zone=_HUGE), SkipReason.VALUE, id="zone-too-long-for-int"),
]


@pytest.mark.parametrize(("entry", "reason"), BAD_ENTRIES)
def test_bad_entry_is_skipped_with_its_reason_and_neighbours_parse(
    read: Reader, entry: object, reason: SkipReason
) -> None:
    result = read([GOOD, entry, OTHER])
    assert result.flows == [GOOD_FLOW, OTHER_FLOW]
    assert result.stats.skipped == Counter({reason: 1})


@pytest.mark.parametrize(("entry", "reason"), BAD_ENTRIES)
def test_reference_reader_gives_the_reason_for_bad_entry(entry: object, reason: SkipReason) -> None:
    assert reference(entry) == reason


@pytest.mark.parametrize(
    "value",
    [None, "[]", {"result": []}, 5, (GOOD,), b"[]"],
    ids=lambda value: type(value).__name__,
)
def test_non_list_raises_parse_error(value: object) -> None:
    with pytest.raises(ConntrackParseError, match=type(value).__name__):
        parse_luci(value)


def test_list_of_only_bad_entries_raises_error_naming_count_and_reasons(read: Reader) -> None:
    with pytest.raises(ConntrackParseError) as caught:
        read([None, "x", bad(src="nope"), bad(sport=70000)])
    message = str(caught.value)
    assert f"2 {SkipReason.LAYOUT}" in message
    assert f"1 {SkipReason.ADDRESS}" in message
    assert f"1 {SkipReason.PORT}" in message


def test_error_message_of_a_huge_bad_list_stays_short(read: Reader) -> None:
    with pytest.raises(ConntrackParseError) as caught:
        read([{"src": "x" * 10_000, "dst": list(range(10_000))}] * 100)
    assert len(str(caught.value)) < 1000


def test_empty_list_gives_no_flows_and_no_error(read: Reader) -> None:
    result = read([])
    assert result.flows == []
    assert (result.stats.lines, result.stats.flows, result.stats.skipped) == (0, 0, Counter())


def test_stats_lines_equal_flows_plus_skipped(read: Reader) -> None:
    entries = [GOOD, None, *luci_entries(), bad(sport=70000), OTHER, "x"]
    result = read(entries)
    assert result.stats.flows == len(result.flows) == 8
    assert result.stats.lines == len(entries)
    assert result.stats.lines == result.stats.flows + result.stats.skipped.total()


def test_entries_are_not_modified() -> None:
    entries = luci_entries()
    before = json.dumps(entries)
    parse_luci(entries)
    assert json.dumps(entries) == before


# ------------------------------------------------------------------ the JSON-RPC reply

NOT_A_RESULT = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\xff\xfe\x00", id="not-utf8"),
    pytest.param("<html>502 Bad Gateway</html>", id="html"),
    pytest.param(payload([GOOD])[:-5], id="truncated"),
    pytest.param("[]", id="list"),
    pytest.param("null", id="null"),
    pytest.param('{"jsonrpc": "2.0", "id": 1, "result": [6]}', id="ubus-status-only"),
    pytest.param(
        '{"jsonrpc": "2.0", "id": 1, "error": {"code": -32002, "message": "Access denied"}}',
        id="rpc-error",
    ),
    pytest.param('{"jsonrpc": "2.0", "id": 1, "result": [0, {}]}', id="no-result-list"),
    pytest.param('{"jsonrpc": "2.0", "id": 1, "result": [0, {"result": null}]}', id="null-list"),
    pytest.param('{"jsonrpc": "2.0", "id": 1, "result": [0, {"result": {}}]}', id="dict-list"),
    pytest.param('{"result": [0, {"result": [' + json.dumps(GOOD) + "]}", id="unclosed"),
]


@pytest.mark.parametrize("reply", NOT_A_RESULT)
def test_reply_that_is_not_a_conntrack_list_raises_parse_error(reply: str | bytes) -> None:
    with pytest.raises(ConntrackParseError):
        parse_luci_json(reply)


@pytest.mark.parametrize("reply", [None, 5, ["[]"]], ids=lambda value: type(value).__name__)
def test_reply_of_the_wrong_type_raises_parse_error(reply: object) -> None:
    with pytest.raises(ConntrackParseError):
        parse_luci_json(reply)  # type: ignore[arg-type]


def test_reply_with_extra_members_parses() -> None:
    reply = json.loads(payload([GOOD]))
    reply["result"][1]["extra"] = {"x": [1, 2]}
    reply["extra"] = None
    assert parse_luci_json(json.dumps(reply)).flows == [GOOD_FLOW]


def test_reply_as_bytearray_parses() -> None:
    assert parse_luci_json(bytearray(payload([GOOD]).encode())).flows == [GOOD_FLOW]  # type: ignore[arg-type]


def test_compact_and_pretty_replies_give_the_same_flows() -> None:
    document = json.loads(payload(luci_entries()))
    compact = json.dumps(document, separators=(",", ":"))
    pretty = json.dumps(document, indent=4)
    assert parse_luci_json(compact) == parse_luci_json(pretty)


# ------------------------------------------------------------------ learned values


def test_values_learned_in_an_earlier_poll_give_the_same_flows(read: Reader) -> None:
    entries = luci_entries()
    first = read(entries)
    assert read(entries) == first


def test_full_learning_table_starts_afresh_and_flows_stay_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conntrack_luci._Learned, "LIMIT", 4)
    entries = [GOOD | {"src": f"192.168.1.{i}", "mark": str(i)} for i in range(1, 21)]
    for _ in range(2):  # first sight, then through the typed loop
        flows = parse_luci_json(payload(entries)).flows
        assert [(f.src, f.mark) for f in flows] == [(f"192.168.1.{i}", i) for i in range(1, 21)]
    assert len(conntrack_luci._LEARNED.addresses) <= 4
    assert len(conntrack_luci._LEARNED.numbers) <= 4
