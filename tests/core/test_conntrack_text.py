"""parse_proc: /proc/net/nf_conntrack and conntrack -L text, field by field and line by line.

The fixtures hold real lines of a Linux 6.18 kernel (proc_lab.txt) and of
conntrack-tools (extended_lab.txt), and the documented variants of that layout
(accounting off, offload, SELinux, GRE, SCTP, DCCP, zones, ids, timestamps).
"""

import gc
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from custom_components.phonehome.core import conntrack_text
from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.conntrack import (
    ConntrackParseError,
    ParseResult,
    SkipReason,
    parse_proc,
)
from custom_components.phonehome.core.model import Flow

FIXTURES = Path(__file__).parent / "fixtures"
LAN, ULA, DOC = AddressScope.LAN, AddressScope.ULA, AddressScope.DOCUMENTATION


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_lines(name: str) -> list[str]:
    return [line for line in fixture_text(name).splitlines() if line.strip()]


def fields(flow: Flow) -> dict[str, object]:
    """A flow's fields by name, so that a failing comparison shows the fields that differ."""
    return msgspec.structs.asdict(flow)


def replace(flow: Flow, **changes: object) -> Flow:
    return msgspec.structs.replace(flow, **changes)


def outcome(line: str) -> Flow | SkipReason:
    """What parse_proc makes of one line, read after a good line so that no error is raised."""
    result = parse_proc(f"{GOOD_LINE}\n{line}\n")
    assert result.flows[0] == TCP4
    if len(result.flows) == 2:
        return result.flows[1]
    [reason] = result.stats.skipped
    return reason


TCP4 = Flow(
    family=4,
    protocol=6,
    src="192.168.77.2",
    dst="203.0.113.10",
    sport=40030,
    dport=443,
    src_scope=LAN,
    dst_scope=DOC,
    replied=True,
    assured=True,
    state="ESTABLISHED",
    timeout=431999,
    total_packets=7,
    total_bytes=397,
    reply_packets=3,
    reply_bytes=171,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
UDP4_UNREPLIED = Flow(
    family=4,
    protocol=17,
    src="192.168.77.2",
    dst="203.0.113.11",
    sport=40010,
    dport=32100,
    src_scope=LAN,
    dst_scope=DOC,
    replied=False,
    assured=False,
    state=None,
    timeout=29,
    total_packets=2,
    total_bytes=120,
    reply_packets=0,
    reply_bytes=0,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
ICMP4 = Flow(
    family=4,
    protocol=1,
    src="192.168.77.2",
    dst="203.0.113.10",
    sport=None,
    dport=None,
    src_scope=LAN,
    dst_scope=DOC,
    replied=True,
    assured=False,
    state=None,
    timeout=29,
    total_packets=4,
    total_bytes=240,
    reply_packets=2,
    reply_bytes=120,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
TCP6 = Flow(
    family=6,
    protocol=6,
    src="fd00:77::2",
    dst="2001:db8:1::a",
    sport=40030,
    dport=443,
    src_scope=ULA,
    dst_scope=DOC,
    replied=True,
    assured=True,
    state="ESTABLISHED",
    timeout=431999,
    total_packets=7,
    total_bytes=537,
    reply_packets=3,
    reply_bytes=231,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
UDP6 = Flow(
    family=6,
    protocol=17,
    src="fd00:77::2",
    dst="2001:db8:1::a",
    sport=40001,
    dport=7,
    src_scope=ULA,
    dst_scope=DOC,
    replied=True,
    assured=False,
    state=None,
    timeout=29,
    total_packets=4,
    total_bytes=320,
    reply_packets=2,
    reply_bytes=160,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
ICMP6 = Flow(
    family=6,
    protocol=58,
    src="fd00:77::2",
    dst="2001:db8:1::a",
    sport=None,
    dport=None,
    src_scope=ULA,
    dst_scope=DOC,
    replied=True,
    assured=False,
    state=None,
    timeout=29,
    total_packets=4,
    total_bytes=320,
    reply_packets=2,
    reply_bytes=160,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
TCP4_TIME_WAIT = Flow(
    family=4,
    protocol=6,
    src="192.168.77.2",
    dst="203.0.113.10",
    sport=40032,
    dport=443,
    src_scope=LAN,
    dst_scope=DOC,
    replied=True,
    assured=True,
    state="TIME_WAIT",
    timeout=119,
    total_packets=10,
    total_bytes=553,
    reply_packets=4,
    reply_bytes=223,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
PROC_LAB = [TCP4, UDP4_UNREPLIED, ICMP4, TCP6, UDP6, ICMP6, TCP4_TIME_WAIT]
TOOL_LAB = [TCP4, UDP4_UNREPLIED, ICMP6]
"""The three entries of the conntrack-tools fixtures."""
NO_COUNTERS = {
    "total_packets": None,
    "total_bytes": None,
    "reply_packets": None,
    "reply_bytes": None,
}
SECCTX = "system_u:object_r:unlabeled_t:s0"

GRE4 = Flow(
    family=4,
    protocol=47,
    src="192.168.77.2",
    dst="203.0.113.10",
    sport=None,
    dport=None,
    src_scope=LAN,
    dst_scope=DOC,
    replied=True,
    assured=True,
    state=None,
    timeout=179,
    total_packets=5,
    total_bytes=300,
    reply_packets=2,
    reply_bytes=120,
    offloaded=False,
    mark=0,
    zone=0,
    secctx=None,
)
UNKNOWN4 = replace(
    GRE4,
    protocol=41,
    assured=False,
    timeout=599,
    total_packets=6,
    total_bytes=600,
    reply_packets=1,
    reply_bytes=100,
)
SCTP4 = replace(
    TCP4,
    protocol=132,
    sport=40040,
    dport=5000,
    timeout=210,
    total_packets=9,
    total_bytes=736,
    reply_packets=4,
    reply_bytes=316,
)
DCCP4 = replace(
    TCP4,
    protocol=33,
    sport=40050,
    dport=5001,
    state="OPEN",
    timeout=43187,
    total_packets=5,
    total_bytes=280,
    reply_packets=2,
    reply_bytes=112,
)
OFFLOADED_TCP4 = replace(TCP4, timeout=None, offloaded=True)
HW_OFFLOADED_UDP4 = replace(
    UDP4_UNREPLIED,
    replied=True,
    assured=True,
    timeout=None,
    total_packets=4,
    total_bytes=240,
    reply_packets=2,
    reply_bytes=120,
    offloaded=True,
)

EXPECTED = {
    "proc_lab.txt": PROC_LAB,
    "extended_lab.txt": TOOL_LAB,
    "plain_lab.txt": TOOL_LAB,
    "extended_id.txt": TOOL_LAB,
    "extended_ktimestamp.txt": TOOL_LAB,
    "proc_accounting_off.txt": [replace(flow, **NO_COUNTERS) for flow in PROC_LAB],
    "proc_selinux.txt": [replace(flow, secctx=SECCTX) for flow in PROC_LAB],
    "proc_offload.txt": [OFFLOADED_TCP4, HW_OFFLOADED_UDP4],
    "proc_other_protocols.txt": [GRE4, UNKNOWN4, SCTP4, DCCP4],
    "proc_marks.txt": [
        replace(TCP4, mark=16, zone=3),
        replace(UDP4_UNREPLIED, mark=4294967295, zone=65535),
    ],
}
ALL_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.txt"))
FIXTURE_LINES = [
    pytest.param(line, id=f"{name}:{number}")
    for name in ALL_FIXTURES
    for number, line in enumerate(fixture_lines(name), 1)
]

GOOD_LINE = fixture_lines("proc_lab.txt")[0]
"""The ESTABLISHED IPv4 TCP line: TCP4."""
UDP_LINE = fixture_lines("proc_lab.txt")[1]
"""The unreplied IPv4 UDP line: UDP4_UNREPLIED."""
ICMP_LINE = fixture_lines("proc_lab.txt")[2]
GRE_LINE = fixture_lines("proc_other_protocols.txt")[0]
UNKNOWN_LINE = fixture_lines("proc_other_protocols.txt")[1]
SUMMARY_LINE = "conntrack v1.4.8 (conntrack-tools): 3 flow entries have been shown."


# ------------------------------------------------------------------ formats, field by field


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_gives_expected_flows_field_by_field(name: str) -> None:
    result = parse_proc(fixture_text(name))
    assert [fields(flow) for flow in result.flows] == [fields(flow) for flow in EXPECTED[name]]


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_has_no_skipped_line(name: str) -> None:
    result = parse_proc(fixture_text(name))
    assert not result.stats.skipped
    assert result.stats.lines == result.stats.flows == len(fixture_lines(name))


@pytest.mark.parametrize("line", FIXTURE_LINES)
def test_fast_reader_agrees_with_general_reader_on_fixture_line(line: str) -> None:
    assert parse_proc(line).flows == [conntrack_text._read_tokens(line.split())]


def test_every_fixture_has_expected_flows_or_own_test() -> None:
    assert set(ALL_FIXTURES) == {*EXPECTED, "proc_zone_directions.txt"}


def _by_key(flows: list[Flow]) -> dict[tuple[object, ...], Flow]:
    return {(f.family, f.protocol, f.src, f.dst, f.sport, f.dport): f for f in flows}


@pytest.mark.parametrize("name", ["extended_lab.txt", "plain_lab.txt"])
def test_tool_output_equals_proc_on_every_field_but_zone_and_timeout(name: str) -> None:
    proc = _by_key(parse_proc(fixture_text("proc_lab.txt")).flows)
    tool = parse_proc(fixture_text(name)).flows
    assert len(tool) == len(TOOL_LAB)
    for flow in tool:
        match = proc[flow.family, flow.protocol, flow.src, flow.dst, flow.sport, flow.dport]
        assert fields(replace(flow, zone=0, timeout=None)) == fields(
            replace(match, zone=0, timeout=None)
        )


def test_plain_output_equals_extended_output() -> None:
    assert parse_proc(fixture_text("plain_lab.txt")) == parse_proc(fixture_text("extended_lab.txt"))


def test_full_form_ipv6_from_proc_becomes_compressed() -> None:
    flows = parse_proc(fixture_text("proc_lab.txt")).flows
    assert {(f.src, f.dst) for f in flows if f.family == 6} == {("fd00:77::2", "2001:db8:1::a")}


def test_ipv4_address_text_is_unchanged() -> None:
    flow = parse_proc(GOOD_LINE).flows[0]
    assert (flow.src, flow.dst) == ("192.168.77.2", "203.0.113.10")


def test_family_comes_from_the_addresses() -> None:
    assert [f.family for f in parse_proc(fixture_text("plain_lab.txt")).flows] == [4, 4, 6]


def test_time_wait_entry_is_kept_with_its_state() -> None:
    flows = parse_proc(fixture_text("proc_lab.txt")).flows
    assert [f for f in flows if f.state == "TIME_WAIT"] == [TCP4_TIME_WAIT]


@pytest.mark.parametrize("name", ["proc_lab.txt", "extended_lab.txt"])
def test_icmp_flows_have_no_ports(name: str) -> None:
    icmp = [f for f in parse_proc(fixture_text(name)).flows if f.protocol in {1, 58}]
    assert icmp
    assert {(f.sport, f.dport) for f in icmp} == {(None, None)}


def test_gre_and_unknown_protocol_flows_have_no_ports() -> None:
    flows = parse_proc(fixture_text("proc_other_protocols.txt")).flows
    assert [(f.protocol, f.sport, f.dport) for f in flows[:2]] == [
        (47, None, None),
        (41, None, None),
    ]


@pytest.mark.parametrize(
    ("line_number", "state"), [(3, "ESTABLISHED"), (4, "OPEN")], ids=["sctp", "dccp"]
)
def test_sctp_and_dccp_lines_keep_ports_and_state(line_number: int, state: str) -> None:
    line = fixture_lines("proc_other_protocols.txt")[line_number - 1]
    flow = parse_proc(line).flows[0]
    assert (flow.state, flow.sport is not None, flow.dport is not None) == (state, True, True)


def test_unreplied_udp_line_is_not_replied() -> None:
    flow = parse_proc(UDP_LINE).flows[0]
    assert (flow.replied, flow.assured) == (False, False)


def test_udp_line_without_flags_is_replied_but_not_assured() -> None:
    flow = parse_proc(fixture_lines("proc_lab.txt")[4]).flows[0]
    assert (flow.protocol, flow.replied, flow.assured) == (17, True, False)


def test_totals_are_original_plus_reply_counters() -> None:
    flow = parse_proc(GOOD_LINE).flows[0]
    assert (flow.total_packets, flow.total_bytes) == (4 + 3, 226 + 171)
    assert (flow.reply_packets, flow.reply_bytes) == (3, 171)


def test_accounting_off_gives_none_counters() -> None:
    for flow in parse_proc(fixture_text("proc_accounting_off.txt")).flows:
        assert (flow.total_packets, flow.total_bytes) == (None, None), flow
        assert (flow.reply_packets, flow.reply_bytes) == (None, None), flow


def test_connection_id_suffix_does_not_change_the_flows() -> None:
    assert (
        parse_proc(fixture_text("extended_id.txt")).flows
        == parse_proc(fixture_text("extended_lab.txt")).flows
    )


def test_timestamp_with_multi_word_bracket_does_not_change_the_flows() -> None:
    assert (
        parse_proc(fixture_text("extended_ktimestamp.txt")).flows
        == parse_proc(fixture_text("extended_lab.txt")).flows
    )


def test_offloaded_entries_have_no_timeout_and_count_as_assured() -> None:
    flows = parse_proc(fixture_text("proc_offload.txt")).flows
    assert [(f.offloaded, f.assured, f.timeout) for f in flows] == [(True, True, None)] * 2


def test_offloaded_tcp_entry_keeps_its_state() -> None:
    assert parse_proc(fixture_text("proc_offload.txt")).flows[0].state == "ESTABLISHED"


def test_selinux_security_context_is_kept() -> None:
    flows = parse_proc(fixture_text("proc_selinux.txt")).flows
    assert {f.secctx for f in flows} == {SECCTX}


def test_mark_and_zone_are_read_as_numbers() -> None:
    flow = parse_proc(fixture_lines("proc_marks.txt")[0]).flows[0]
    assert (flow.mark, flow.zone) == (16, 3)


def test_zone_defaults_to_zero_when_absent() -> None:
    assert {f.zone for f in parse_proc(fixture_text("extended_lab.txt")).flows} == {0}


def test_mark_defaults_to_zero_when_absent() -> None:
    line = GOOD_LINE.replace(" mark=0", "")
    assert parse_proc(line).flows == [TCP4]


def test_secctx_is_none_when_absent() -> None:
    assert {f.secctx for f in parse_proc(fixture_text("proc_lab.txt")).flows} == {None}


@pytest.mark.parametrize(
    ("line_number", "expected"),
    [(1, UDP4_UNREPLIED), (2, replace(UDP4_UNREPLIED, sport=40011, dport=32100))],
    ids=["zone-orig", "zone-reply"],
)
def test_per_direction_zone_line_parses(line_number: int, expected: Flow) -> None:
    line = fixture_lines("proc_zone_directions.txt")[line_number - 1]
    [flow] = parse_proc(line).flows
    # Which zone a one-direction zone should report is the model's call; all else is fixed.
    assert fields(replace(flow, zone=0)) == fields(expected)


# ------------------------------------------------------------------ lines that are skipped


def test_blank_lines_are_ignored_and_not_counted() -> None:
    text = f"\n\n   \n{GOOD_LINE}\n\t\n\n{UDP_LINE}\n  \n"
    result = parse_proc(text)
    assert result.flows == [TCP4, UDP4_UNREPLIED]
    assert (result.stats.lines, result.stats.flows, result.stats.skipped) == (2, 2, Counter())


def test_conntrack_tools_summary_line_is_counted_as_summary() -> None:
    result = parse_proc(fixture_text("extended_lab.txt") + SUMMARY_LINE + "\n")
    assert result.flows == TOOL_LAB
    assert result.stats.skipped == Counter({SkipReason.SUMMARY: 1})


def test_garbage_line_between_good_lines_is_skipped_as_layout() -> None:
    result = parse_proc(f"{GOOD_LINE}\nthis is not conntrack at all\n{UDP_LINE}\n")
    assert result.flows == [TCP4, UDP4_UNREPLIED]
    assert result.stats.skipped == Counter({SkipReason.LAYOUT: 1})


BAD_LINES = [
    pytest.param(
        GOOD_LINE.replace("src=192.168.77.2", "src=192.168.77.300", 1),
        SkipReason.ADDRESS,
        id="invalid-src-address",
    ),
    pytest.param(
        GOOD_LINE.replace("dst=203.0.113.10", "dst=fe80::1%eth0", 1),
        SkipReason.ADDRESS,
        id="scoped-ipv6-dst",
    ),
    pytest.param(
        GOOD_LINE.replace("dst=203.0.113.10", "dst=2001:db8::a", 1),
        SkipReason.FAMILY,
        id="ipv4-src-ipv6-dst",
    ),
    pytest.param(
        GOOD_LINE.replace("ipv4     2", "ipv6     10"),
        SkipReason.FAMILY,
        id="ipv6-header-ipv4-addresses",
    ),
    pytest.param(
        GOOD_LINE.replace("sport=40030", "sport=70000", 1),
        SkipReason.PORT,
        id="sport-70000",
    ),
    pytest.param(
        GOOD_LINE.replace("dport=443", "dport=70000", 1),
        SkipReason.PORT,
        id="dport-70000",
    ),
    pytest.param(
        GOOD_LINE.replace("dport=443", "dport=https", 1),
        SkipReason.PORT,
        id="dport-name",
    ),
    pytest.param(
        GOOD_LINE.replace("sport=40030", "sport=-1", 1),
        SkipReason.PORT,
        id="sport-negative",
    ),
    pytest.param(
        GOOD_LINE.replace("tcp      6", "tcp      300"),
        SkipReason.PROTOCOL,
        id="protocol-300",
    ),
    pytest.param(
        GOOD_LINE.replace("packets=4", "packets=four", 1),
        SkipReason.VALUE,
        id="packets-word",
    ),
    pytest.param(
        GOOD_LINE.replace("bytes=171", "bytes=-171", 1),
        SkipReason.VALUE,
        id="bytes-negative",
    ),
    pytest.param(
        GOOD_LINE.replace(" packets=3 bytes=171", ""),
        SkipReason.VALUE,
        id="counters-in-one-direction-only",
    ),
    pytest.param(
        GOOD_LINE.replace(" bytes=226", ""),
        SkipReason.VALUE,
        id="orig-bytes-missing",
    ),
    pytest.param(
        GOOD_LINE.replace(" bytes=171", ""),
        SkipReason.VALUE,
        id="reply-bytes-missing",
    ),
    pytest.param(
        GOOD_LINE.replace(" packets=3", ""),
        SkipReason.VALUE,
        id="reply-packets-missing",
    ),
    pytest.param(
        GOOD_LINE.replace("mark=0", "mark=0x10"),
        SkipReason.LAYOUT,
        id="hex-mark",
    ),
    pytest.param(
        GOOD_LINE.replace("[ASSURED]", "[BOGUS]"),
        SkipReason.LAYOUT,
        id="unknown-flag",
    ),
    pytest.param(
        GOOD_LINE.replace("tcp      6", "tcp      six"),
        SkipReason.LAYOUT,
        id="protocol-word",
    ),
    pytest.param(GOOD_LINE.split(" src=203.0.113.10")[0], SkipReason.LAYOUT, id="no-reply-tuple"),
    pytest.param(GOOD_LINE.rsplit(" use=", 1)[0], SkipReason.LAYOUT, id="no-use"),
    pytest.param(GOOD_LINE + " stray", SkipReason.LAYOUT, id="word-after-use"),
    pytest.param("ipv4     2 tcp      6", SkipReason.LAYOUT, id="header-only"),
    pytest.param("ipv4", SkipReason.LAYOUT, id="family-only"),
    pytest.param("[ASSURED]", SkipReason.LAYOUT, id="flag-only"),
    pytest.param("use=2", SkipReason.LAYOUT, id="use-only"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_line_is_skipped_with_its_reason_and_neighbours_parse(
    line: str, reason: SkipReason
) -> None:
    result = parse_proc(f"{GOOD_LINE}\n{line}\n{UDP_LINE}\n")
    assert result.flows == [TCP4, UDP4_UNREPLIED]
    assert result.stats.skipped == Counter({reason: 1})


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_general_reader_gives_the_same_reason_for_bad_line(line: str, reason: SkipReason) -> None:
    assert conntrack_text._read_tokens(line.split()) == reason


@pytest.mark.parametrize("line", FIXTURE_LINES)
def test_line_cut_before_use_is_skipped(line: str) -> None:
    cut = line.rsplit(" use=", 1)[0]
    result = parse_proc(f"{GOOD_LINE}\n{cut}\n")
    assert result.flows == [TCP4]
    assert result.stats.skipped.total() == 1


@pytest.mark.parametrize("length", [1, 10, 40, 80, 120, 160, 200])
def test_line_cut_anywhere_is_skipped(length: int) -> None:
    result = parse_proc(f"{GOOD_LINE}\n{UDP_LINE[:length]}\n")
    assert result.flows == [TCP4]
    assert result.stats.skipped.total() == 1


@pytest.mark.parametrize("text", ["", "\n", "   \n\n\t\n", "\r\n"])
def test_empty_text_gives_no_flows_and_no_error(text: str) -> None:
    result = parse_proc(text)
    assert result.flows == []
    assert (result.stats.lines, result.stats.flows, result.stats.skipped) == (0, 0, Counter())


def test_summary_line_alone_gives_no_flows_and_an_error() -> None:
    with pytest.raises(ConntrackParseError, match="1 conntrack-tools summary line"):
        parse_proc(SUMMARY_LINE)


def test_text_of_only_garbage_raises_error_naming_count_and_reason() -> None:
    with pytest.raises(ConntrackParseError) as caught:
        parse_proc("garbage\nmore garbage\nsrc=1.2.3.4\n")
    message = str(caught.value)
    assert "3" in message
    assert f"3 {SkipReason.LAYOUT}" in message


def test_error_message_names_every_reason() -> None:
    text = "\n".join(line for line, _ in (p.values for p in BAD_LINES[:9]))
    with pytest.raises(ConntrackParseError) as caught:
        parse_proc(text)
    message = str(caught.value)
    for reason in (SkipReason.ADDRESS, SkipReason.FAMILY, SkipReason.PORT, SkipReason.PROTOCOL):
        assert reason in message


def test_error_message_of_a_huge_garbage_text_stays_short() -> None:
    with pytest.raises(ConntrackParseError) as caught:
        parse_proc("x" * 100_000)
    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize(
    "value",
    [b"ipv4 2 tcp 6", None, 5, ["line"], bytearray(b"x")],
    ids=lambda value: type(value).__name__,
)
def test_non_text_input_raises_parse_error(value: object) -> None:
    with pytest.raises(ConntrackParseError, match=type(value).__name__):
        parse_proc(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(fixture_text("proc_lab.txt"), id="proc"),
        pytest.param(f"{GOOD_LINE}\ngarbage\n\n{SUMMARY_LINE}\n{UDP_LINE}", id="mixed"),
        pytest.param("\n".join(p.values[0] for p in BAD_LINES) + "\n" + GOOD_LINE, id="bad"),
    ],
)
def test_stats_lines_equal_flows_plus_skipped(text: str) -> None:
    result = parse_proc(text)
    assert isinstance(result, ParseResult)
    assert result.stats.flows == len(result.flows)
    assert result.stats.lines == result.stats.flows + result.stats.skipped.total()


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_crlf_line_endings_parse_like_lf(name: str) -> None:
    text = fixture_text(name)
    assert parse_proc(text.replace("\n", "\r\n")) == parse_proc(text)


def test_text_without_final_newline_parses_its_last_line() -> None:
    assert parse_proc(f"{GOOD_LINE}\n{UDP_LINE}").flows == [TCP4, UDP4_UNREPLIED]


def test_lines_separated_by_tabs_and_runs_of_spaces_parse() -> None:
    assert parse_proc(GOOD_LINE.replace(" ", " \t ")).flows == [TCP4]


def test_repeated_lines_give_equal_flows() -> None:
    result = parse_proc("\n".join([GOOD_LINE] * 50))
    assert result.flows == [TCP4] * 50


# ------------------------------------------------------------------ edge cases and damage

_HUGE = "1" * 5000
"""More digits than int() converts by default (sys.get_int_max_str_digits() is 4300)."""


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(GOOD_LINE.replace("tcp      6", f"tcp      {_HUGE}"), id="protocol"),
        pytest.param(GOOD_LINE.replace("431999", _HUGE), id="timeout"),
        pytest.param(GOOD_LINE.replace("sport=40030", f"sport={_HUGE}", 1), id="sport"),
        pytest.param(GOOD_LINE.replace("dport=443", f"dport={_HUGE}", 1), id="dport"),
        pytest.param(GOOD_LINE.replace("packets=4", f"packets={_HUGE}", 1), id="packets"),
        pytest.param(GOOD_LINE.replace("bytes=171", f"bytes={_HUGE}", 1), id="reply-bytes"),
        pytest.param(GOOD_LINE.replace("mark=0", f"mark={_HUGE}"), id="mark"),
        pytest.param(GOOD_LINE.replace("zone=0", f"zone={_HUGE}"), id="zone"),
    ],
)
def test_line_with_a_number_too_long_for_int_is_skipped(line: str) -> None:
    result = parse_proc(f"{GOOD_LINE}\n{line}\n")
    assert result.flows[0] == TCP4
    assert result.stats.lines == 2


GENERIC_GRE_LINES = [
    "ipv4     2 unknown  47 599 src=192.168.77.2 dst=203.0.113.10 packets=5 bytes=500 "
    "src=203.0.113.10 dst=192.168.77.2 packets=1 bytes=100 mark=0 zone=0 use=2",
    "ipv4     2 unknown  47 599 src=192.168.77.2 dst=203.0.113.10 packets=5 bytes=500 "
    "[UNREPLIED] src=203.0.113.10 dst=192.168.77.2 packets=0 bytes=0 mark=0 zone=0 use=2",
]
"""GRE tracked by the kernel's generic tracker, as on kernels without GRE conntrack support
(CONFIG_NF_CT_PROTO_GRE off, or the nf_conntrack_proto_gre module not loaded): the
protocol prints as ``unknown  47`` and the tuples have no srckey/dstkey."""
GENERIC_GRE_FLOWS = [
    replace(UNKNOWN4, protocol=47),
    replace(
        UNKNOWN4,
        protocol=47,
        replied=False,
        total_packets=5,
        total_bytes=500,
        reply_packets=0,
        reply_bytes=0,
    ),
]


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(GENERIC_GRE_LINES, GENERIC_GRE_FLOWS, strict=True)),
    ids=["replied", "unreplied"],
)
def test_gre_line_of_the_generic_tracker_keeps_its_counters(line: str, expected: Flow) -> None:
    assert [fields(flow) for flow in parse_proc(line).flows] == [fields(expected)]


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(GENERIC_GRE_LINES, GENERIC_GRE_FLOWS, strict=True)),
    ids=["replied", "unreplied"],
)
def test_general_reader_reads_gre_line_of_the_generic_tracker(line: str, expected: Flow) -> None:
    assert conntrack_text._read_tokens(line.split()) == expected


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(GOOD_LINE.replace("sport=40030", "sport=-1", 1), id="negative-sport"),
        pytest.param(GOOD_LINE.replace("dport=443", "dport=+443", 1), id="plus-dport"),
        pytest.param(GOOD_LINE.replace(" ESTABLISHED", ""), id="no-state"),
        pytest.param(GOOD_LINE.replace("431999 ", ""), id="no-timeout"),
        pytest.param(GOOD_LINE.replace("[ASSURED]", "[UNREPLIED]"), id="unreplied-late"),
        pytest.param(
            GOOD_LINE.replace("sport=40030", "sport=+40030", 1),
            id="plus-sport",
        ),
        pytest.param(
            GOOD_LINE.replace("sport=40030", "sport=40_030", 1),
            id="underscore-sport",
        ),
        pytest.param(
            GOOD_LINE.replace("sport=40030", "sport=\u0664\u0660\u0660\u0663\u0660", 1),
            id="arabic-digit-sport",
        ),
        pytest.param(GOOD_LINE.replace("packets=4", "packets=+4", 1), id="plus-packets"),
        pytest.param(
            GOOD_LINE.replace("bytes=171", "bytes=1_71", 1),
            id="underscore-bytes",
        ),
        pytest.param(
            GOOD_LINE.replace("431999", "\u0664\u0663"),
            id="arabic-digit-timeout",
        ),
        pytest.param(
            GOOD_LINE.replace("dst=192.168.77.2", "dsx=192.168.77.2"),
            id="reply-dst-key-damaged",
        ),
        pytest.param(GOOD_LINE.replace("sport=443", "sport443"), id="reply-sport-without-equals"),
        pytest.param(ICMP_LINE.replace("type=8", "type8"), id="icmp-type-without-equals"),
        pytest.param(
            ICMP_LINE.replace("type=0 code=0", "type=0 code0"), id="icmp-reply-code-without-equals"
        ),
        pytest.param(
            GRE_LINE.replace("srckey=0x0", "srckey0x0", 1), id="gre-srckey-without-equals"
        ),
        pytest.param(
            UNKNOWN_LINE.replace("unknown  41", "unknown  1"), id="unknown-with-icmp-number"
        ),
        pytest.param(
            UNKNOWN_LINE.replace("unknown  41", "unknown  58"), id="unknown-with-icmpv6-number"
        ),
        pytest.param(
            "unknown  1 src=0.0.0.0 dst=0.0.0.0 zone-orig=0 packets=1 bytes=2 "
            "src=0.0.0.0 dst=0.0.0.0 packets=3 bytes=4 mark=5 use=1",
            id="unknown-with-icmp-number-and-zone-orig",
        ),
        pytest.param(ICMP_LINE.replace("id=4660", "id=x", 1), id="icmp-id-word"),
        pytest.param(ICMP_LINE.replace(" id=4660", "", 1), id="icmp-without-id"),
        pytest.param(GRE_LINE.replace(" dstkey=0x0", "", 1), id="gre-without-dstkey"),
        pytest.param(UDP_LINE.replace("udp      17", "udp      1"), id="udp-with-icmp-number"),
        pytest.param(ICMP_LINE.replace("icmp     1", "icmp     6"), id="icmp-with-tcp-number"),
        pytest.param(GOOD_LINE.replace("ESTABLISHED", "ES=TABLISHED"), id="state-with-equals"),
    ],
)
def test_parse_proc_agrees_with_general_reader_on_damaged_line(line: str) -> None:
    assert outcome(line) == conntrack_text._read_tokens(line.split())


# ------------------------------------------------------------------ garbage collector


def test_collector_is_enabled_again_after_a_parse() -> None:
    assert gc.isenabled()
    parse_proc(fixture_text("proc_lab.txt"))
    assert gc.isenabled()


def test_collector_is_enabled_again_after_a_parse_error() -> None:
    with pytest.raises(ConntrackParseError):
        parse_proc("garbage")
    assert gc.isenabled()


def test_collector_disabled_by_the_caller_stays_disabled() -> None:
    gc.disable()
    try:
        parse_proc(fixture_text("proc_lab.txt"))
        assert not gc.isenabled()
    finally:
        gc.enable()
