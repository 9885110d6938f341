"""The benchmark's synthetic table: parseable in all three formats, consistent, realistic.

Correctness only, no timing: the benchmark itself is ``scripts/bench``.
"""

import json
import re
import subprocess
import sys
from collections import Counter
from copy import replace
from ipaddress import ip_address
from pathlib import Path

import orjson
import pytest

from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.conntrack import (
    ParseResult,
    parse_luci,
    parse_luci_json,
    parse_proc,
)
from custom_components.phonehome.core.model import Flow
from tests.bench import synthetic

SMALL = 3000
REPO = Path(__file__).resolve().parents[2]
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "gre": 47}
LAN_SOURCES = {f"192.168.1.{host}" for host in range(10, 210)}


def _luci(payload: bytes) -> ParseResult:
    reply = orjson.loads(payload)
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == 1
    assert reply["result"][0] == 0
    return parse_luci(reply["result"][1]["result"])


@pytest.fixture(scope="module")
def proc() -> ParseResult:
    return parse_proc(synthetic.proc_text(SMALL))


@pytest.fixture(scope="module")
def conntrack() -> ParseResult:
    return parse_proc(synthetic.conntrack_text(SMALL))


@pytest.fixture(scope="module")
def luci() -> ParseResult:
    return _luci(synthetic.luci_payload(SMALL))


@pytest.fixture(scope="module")
def full() -> list[Flow]:
    """The benchmark's full 65,536-entry table, from /proc text."""
    return parse_proc(synthetic.proc_text()).flows


def test_every_format_parses_without_skips(
    proc: ParseResult, conntrack: ParseResult, luci: ParseResult
) -> None:
    time_wait = sum(entry.state == "TIME_WAIT" for entry in synthetic.table(SMALL))
    assert time_wait > 0
    for result, expected in ((proc, SMALL), (conntrack, SMALL), (luci, SMALL - time_wait)):
        assert not result.stats.skipped
        assert result.stats.lines == expected
        assert len(result.flows) == expected


def test_proc_and_conntrack_give_the_same_flows(proc: ParseResult, conntrack: ParseResult) -> None:
    def comparable(flows: list[Flow]) -> Counter[Flow]:
        return Counter(replace(flow, zone=0, timeout=None) for flow in flows)

    assert comparable(proc.flows) == comparable(conntrack.flows)


def test_typed_json_path_gives_the_flows_of_the_decoded_path(luci: ParseResult) -> None:
    typed = parse_luci_json(synthetic.luci_payload(SMALL))
    assert typed.stats == luci.stats
    assert typed.flows == luci.flows


def test_luci_agrees_with_proc(proc: ParseResult, luci: ParseResult) -> None:
    def key(flow: Flow) -> tuple[object, ...]:
        return (
            flow.family,
            flow.protocol,
            flow.src,
            flow.dst,
            flow.sport,
            flow.dport,
            flow.total_packets,
            flow.total_bytes,
        )

    expected = Counter(key(flow) for flow in proc.flows if flow.state != "TIME_WAIT")
    assert Counter(map(key, luci.flows)) == expected


def test_flows_are_the_drawn_entries(proc: ParseResult) -> None:
    def drawn(entry: synthetic.Entry) -> tuple[object, ...]:
        return (
            entry.family,
            PROTOCOLS[entry.protocol],
            entry.src,
            entry.dst,
            entry.sport,
            entry.dport,
            entry.replied,
            entry.offloaded,
            entry.state,
            None if entry.offloaded else entry.timeout,
            entry.orig_packets + entry.reply_packets,
            entry.orig_bytes + entry.reply_bytes,
            entry.reply_packets,
            entry.reply_bytes,
        )

    def parsed(flow: Flow) -> tuple[object, ...]:
        return (
            flow.family,
            flow.protocol,
            flow.src,
            flow.dst,
            flow.sport,
            flow.dport,
            flow.replied,
            flow.offloaded,
            flow.state,
            flow.timeout,
            flow.total_packets,
            flow.total_bytes,
            flow.reply_packets,
            flow.reply_bytes,
        )

    assert Counter(map(parsed, proc.flows)) == Counter(map(drawn, synthetic.table(SMALL)))


def test_proc_text_is_in_kernel_layout() -> None:
    lines = synthetic.proc_text(SMALL).splitlines()
    layout = re.compile(
        r"(ipv4     2|ipv6     10) (tcp      6|udp      17|icmp     1|icmpv6   58|gre      47) "
        r"(\d+ )?([A-Z_]+ )?src=\S+ dst=\S+ .* packets=\d+ bytes=\d+ (\[UNREPLIED\] )?"
        r"src=\S+ dst=\S+ .* packets=\d+ bytes=\d+ (\[ASSURED\] |\[OFFLOAD\] )?"
        r"mark=0 zone=0 use=\d+"
    )
    for line in lines:
        match = layout.fullmatch(line)
        assert match, line
        assert (match[3] is None) == ("[OFFLOAD]" in line), line  # offloaded: no timeout
        for address in re.findall(r"(?:src|dst)=(\S+)", line):
            if ":" in address:  # %pI6: eight groups of four hex digits
                assert re.fullmatch(r"[0-9a-f]{4}(:[0-9a-f]{4}){7}", address), line


def test_conntrack_text_is_in_conntrack_tools_layout() -> None:
    for line in synthetic.conntrack_text(SMALL).splitlines():
        assert re.match(r"(tcp      6|udp      17|icmp     1|icmpv6   58|gre      47) \d+ ", line)
        assert "zone=" not in line
        assert line.endswith(" mark=0 use=1")
        for address in re.findall(r"(?:src|dst)=(\S+)", line):
            assert address == str(ip_address(address)), line  # compressed IPv6


def test_the_mix_is_realistic(full: list[Flow]) -> None:
    count = len(full)
    assert count == synthetic.ENTRIES
    share = Counter(flow.protocol for flow in full)
    assert set(share) == set(PROTOCOLS.values())
    assert 0.55 < share[6] / count < 0.65
    assert 0.28 < share[17] / count < 0.38
    assert 0.03 < (share[1] + share[58]) / count < 0.07
    assert 0.01 < share[47] / count < 0.03
    assert 0.15 < sum(flow.family == 6 for flow in full) / count < 0.25

    lan4 = {flow.src for flow in full if flow.family == 4 and flow.src_scope == AddressScope.LAN}
    assert lan4 == LAN_SOURCES
    gua = {flow.src for flow in full if flow.src.startswith("2a02:8071:1234:5600:")}
    assert 80 < len(gua) < 120  # about half the devices have IPv6
    assert any(flow.src_scope == AddressScope.ULA for flow in full)
    remotes = Counter(flow.dst for flow in full if flow.dst_scope == AddressScope.WAN)
    assert len(remotes) > 1000
    assert len({host for host in remotes if ":" in host}) > 1000
    top = sum(hits for _host, hits in remotes.most_common(10))
    assert top > 0.1 * remotes.total()  # a few very popular hosts...
    assert sum(hits <= 5 for hits in remotes.values()) > len(remotes) / 2  # ...and a long tail

    states = Counter(flow.state for flow in full if flow.protocol == 6)
    assert states.most_common(1)[0][0] == "ESTABLISHED"
    assert {"TIME_WAIT", "SYN_SENT", "FIN_WAIT", "CLOSE_WAIT"} <= set(states)
    assert all(not flow.replied for flow in full if flow.state == "SYN_SENT")
    udp = [flow for flow in full if flow.protocol == 17]
    assert 0.2 < sum(not flow.replied for flow in udp) / len(udp) < 0.3
    replied = [flow for flow in udp if flow.replied]
    assert sum(bool(flow.assured) for flow in replied) > len(replied) / 2
    assert {32100, 10001, 8800} <= {flow.dport for flow in udp if not flow.replied}
    assert 0.02 < sum(flow.offloaded for flow in full) / count < 0.04
    assert all(flow.reply_packets == 0 for flow in full if not flow.replied)
    assert any(
        flow.dst == synthetic.SSDP and flow.dport == 1900 and not flow.replied for flow in full
    )
    assert any(flow.dst == synthetic.ROUTER_LAN4 and flow.dport == 53 for flow in full)

    limits = {6: synthetic.TCP_ESTABLISHED, 17: 180, 1: 30, 58: 30, 47: 180}
    for flow in full:
        assert (flow.timeout is None) == flow.offloaded
        assert flow.timeout is None or 0 < flow.timeout <= limits[flow.protocol]
        assert flow.total_packets is not None
        assert flow.total_packets > 0


def test_same_seed_same_table_other_seed_other_table() -> None:
    first = synthetic.proc_text(2000, seed=7)
    synthetic.table.cache_clear()
    assert synthetic.proc_text(2000, seed=7) == first
    assert synthetic.proc_text(2000, seed=8) != first


def test_the_benchmark_runs_and_prints_json() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.bench.parsers",
            "--entries",
            "2000",
            "--repeat",
            "1",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    formats = {result["format"]: result for result in report["formats"]}
    assert set(formats) == {"luci-json", "proc-text", "conntrack-text"}
    assert formats["proc-text"]["entries"] == formats["proc-text"]["flows"] == 2000
    for result in formats.values():
        assert result["skipped"] == 0
        assert result["floor_ms"] > 0
        assert result["parse_ms"] > 0
        assert result["peak_mb"] > 0
