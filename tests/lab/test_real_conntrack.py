"""The conntrack parsers against a real kernel's table, filled with known traffic.

The router namespace only forwards: no lab process runs in it, and the kernel does
not track neighbour discovery or MLD, so every entry in its table is a probe of the
plan. That lets the tests demand exact equality, with no filtering.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pytest

from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.conntrack import (
    ParseResult,
    parse_luci,
    parse_luci_json,
    parse_proc,
)
from custom_components.phonehome.core.model import Flow

from .netlab import CT_MARK
from .traffic import IPPROTO_TCP

if TYPE_CHECKING:
    from .conftest import LabCapture

pytestmark = pytest.mark.lab

KEY = ("family", "protocol", "src", "dst", "sport", "dport", "replied")
STABLE = (
    *KEY,
    "assured",
    "state",
    "total_packets",
    "total_bytes",
    "reply_packets",
    "reply_bytes",
    "mark",
    "zone",
)
"""Fields that do not change between two reads of an idle table (timeouts do)."""
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
"""Fields LuCI's getConntrackList keeps."""


def _fields(flows: Iterable[Flow], names: tuple[str, ...]) -> Counter[tuple[object, ...]]:
    """The multiset of the named fields of each flow."""
    return Counter(tuple(getattr(flow, name) for name in names) for flow in flows)


def _by_key(flows: Iterable[Flow]) -> dict[tuple[object, ...], Flow]:
    return {tuple(getattr(flow, name) for name in KEY): flow for flow in flows}


@pytest.fixture(scope="module")
def proc(lab_capture: LabCapture) -> ParseResult:
    """The router's /proc/net/nf_conntrack, parsed."""
    return parse_proc(lab_capture.dump.proc)


def _source_text(capture: LabCapture, source: str) -> str:
    dump = capture.dump
    texts = {"proc": dump.proc, "extended": dump.extended, "plain": dump.plain_default}
    texts |= {f"plain-{family}": text for family, text in dump.plain.items()}
    return texts[source]


def test_traffic_got_the_planned_answers(lab_capture: LabCapture) -> None:
    for probe, result in zip(lab_capture.plan, lab_capture.results, strict=True):
        assert result.sent == probe.count, probe
        assert result.replies == (probe.count if probe.reply_expected else 0), probe


def test_proc_holds_exactly_the_traffic_sent(lab_capture: LabCapture, proc: ParseResult) -> None:
    sent = Counter(probe.key for probe in lab_capture.plan)
    assert max(sent.values()) == 1
    assert _fields(proc.flows, KEY) == sent


def test_proc_addresses_are_lab_scopes(proc: ParseResult) -> None:
    for flow in proc.flows:
        lan = AddressScope.LAN if flow.family == 4 else AddressScope.ULA
        assert (flow.src_scope, flow.dst_scope) == (lan, AddressScope.DOCUMENTATION), flow


def test_proc_state_flags_and_mark(lab_capture: LabCapture, proc: ParseResult) -> None:
    flows = _by_key(proc.flows)
    for probe in lab_capture.plan:
        flow = flows[probe.key]
        assert flow.state == probe.tcp_state, flow
        if probe.protocol == IPPROTO_TCP:
            assert flow.assured is True, flow
        assert flow.offloaded is False, flow
        assert flow.mark == (CT_MARK if flow.dst == lab_capture.marked_host else 0), flow
        assert flow.timeout is not None, flow
        assert flow.timeout > 0, flow


def test_proc_counters_match_what_was_sent(lab_capture: LabCapture, proc: ParseResult) -> None:
    flows = _by_key(proc.flows)
    for probe, result in zip(lab_capture.plan, lab_capture.results, strict=True):
        flow = flows[probe.key]
        assert flow.total_packets is not None, flow
        assert flow.total_bytes is not None, flow
        assert flow.reply_bytes is not None, flow
        if probe.reply_expected:
            assert flow.reply_packets is not None, flow
            assert flow.reply_packets >= 1, flow
        else:
            assert (flow.reply_packets, flow.reply_bytes) == (0, 0), flow
        if probe.protocol != IPPROTO_TCP:  # datagrams: the exact numbers are known
            packets = result.sent + result.replies
            assert (flow.total_packets, flow.reply_packets) == (packets, result.replies), flow
            assert flow.total_bytes == packets * probe.datagram_bytes, flow
            assert flow.reply_bytes == result.replies * probe.datagram_bytes, flow


def test_extended_output_matches_proc(lab_capture: LabCapture, proc: ParseResult) -> None:
    extended = parse_proc(lab_capture.dump.extended)
    assert _fields(extended.flows, STABLE) == _fields(proc.flows, STABLE)


def test_plain_output_per_family_matches_proc(lab_capture: LabCapture, proc: ParseResult) -> None:
    plain = [parse_proc(lab_capture.dump.plain[family]) for family in ("ipv4", "ipv6")]
    assert {flow.family for flow in plain[0].flows} == {4}
    assert {flow.family for flow in plain[1].flows} == {6}
    assert _fields(plain[0].flows + plain[1].flows, STABLE) == _fields(proc.flows, STABLE)


def test_plain_output_lists_both_families_by_default(lab_capture: LabCapture) -> None:
    both = parse_proc(lab_capture.dump.plain_default)
    per_family = [parse_proc(text) for text in lab_capture.dump.plain.values()]
    assert _fields(both.flows, STABLE) == _fields(
        [flow for result in per_family for flow in result.flows], STABLE
    )


@pytest.mark.parametrize("source", ["proc", "extended", "plain", "plain-ipv4", "plain-ipv6"])
def test_parse_stats_show_no_skipped_line(lab_capture: LabCapture, source: str) -> None:
    result = parse_proc(_source_text(lab_capture, source))
    assert not result.stats.skipped
    assert result.stats.lines == result.stats.flows == len(result.flows)
    family = {"plain-ipv4": 4, "plain-ipv6": 6}.get(source)
    assert result.stats.flows == sum(family in (None, probe.family) for probe in lab_capture.plan)


def test_luci_entries_match_proc_except_time_wait(
    lab_capture: LabCapture, proc: ParseResult
) -> None:
    luci = parse_luci(lab_capture.luci)
    kept = [flow for flow in proc.flows if flow.state != "TIME_WAIT"]
    assert len(kept) < len(proc.flows), "the plan should leave a TIME_WAIT entry to drop"
    assert not luci.stats.skipped
    assert _fields(luci.flows, LUCI_KEPT) == _fields(kept, LUCI_KEPT)


def test_luci_reply_as_uhttpd_sends_it_gives_the_same_flows(lab_capture: LabCapture) -> None:
    reply = json.dumps({"jsonrpc": "2.0", "id": 1, "result": [0, {"result": lab_capture.luci}]})
    typed = parse_luci_json(reply.encode())
    assert typed.flows == parse_luci(lab_capture.luci).flows
    assert not typed.stats.skipped


def test_luci_entries_lose_flags_and_state(lab_capture: LabCapture) -> None:
    for flow in parse_luci(lab_capture.luci).flows:
        assert (flow.replied, flow.assured, flow.state) == (None, None, None), flow
        assert (flow.reply_packets, flow.reply_bytes) == (None, None), flow
