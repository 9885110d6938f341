"""Rows of the phonehome rpcd plugin into flows, and the same analysis as /proc's."""

import gc
import json
import shutil
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from custom_components.phonehome.core import conntrack_plugin
from custom_components.phonehome.core.activity import ActivityTracker, DeviceActivity
from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.conntrack import parse_proc
from custom_components.phonehome.core.conntrack_plugin import (
    decode_plugin_page,
    parse_plugin_rows,
)
from custom_components.phonehome.core.model import Flow
from custom_components.phonehome.core.parsing import ConntrackParseError, SkipReason
from custom_components.phonehome.routers.base import LanDevice
from tests.bench.synthetic import proc_text
from tests.plugin.tools import Plugin, tool_dir

ROW = [4, 17, "192.168.1.20", "203.0.113.5", 10001, 3, 3, 21, 1260, 0, 0, 29]
ROW6 = [6, 6, "fd00:0:0:0:0:0:0:22", "2001:0db8:0000:0000:0000:0000:0000:0001", 443, 2, 0]
ROW6 += [3, 300, 2, 200, None]
ICMP = [4, 1, "192.168.1.21", "198.51.100.7", None, 1, 0, None, None, None, None, 10]


def page(rows: list[Any], **fields: Any) -> bytes:
    document = {"version": "1", "snapshot": "ab12", "total": len(rows), "offset": 0}
    document |= {"rows": rows, "next": None, **fields}
    return json.dumps(document).encode()


def test_rows_become_flows() -> None:
    result = parse_plugin_rows([ROW, ROW6, ICMP])
    udp, tcp6, icmp = result.flows
    assert udp == Flow(
        4,
        17,
        "192.168.1.20",
        "203.0.113.5",
        None,
        10001,
        AddressScope.LAN,
        AddressScope.DOCUMENTATION,
        False,
        None,
        None,
        29,
        21,
        1260,
        0,
        0,
        False,
        0,
        0,
        None,
        3,
    )
    assert (tcp6.src, tcp6.dst, tcp6.replied, tcp6.timeout) == (
        "fd00::22",
        "2001:db8::1",
        True,
        None,
    )
    assert (tcp6.total_packets, tcp6.total_bytes, tcp6.reply_bytes, tcp6.connections) == (
        5,
        500,
        200,
        2,
    )
    assert (icmp.dport, icmp.total_bytes, icmp.reply_packets, icmp.connections) == (
        None,
        None,
        None,
        1,
    )
    assert result.stats.lines == result.stats.flows == 3


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("nope", SkipReason.LAYOUT),
        (ROW[:11], SkipReason.LAYOUT),
        ([4, 17, 5, *ROW[3:]], SkipReason.ADDRESS),
        ([4, 17, "999.1.1.1", *ROW[3:]], SkipReason.ADDRESS),
        ([6, *ROW[1:]], SkipReason.FAMILY),
        ([4, 17, "192.168.1.20", "2001:db8::1", *ROW[4:]], SkipReason.FAMILY),
        ([4, 256, *ROW[2:]], SkipReason.PROTOCOL),
        ([4, "udp", *ROW[2:]], SkipReason.PROTOCOL),
        ([*ROW[:4], 65536, *ROW[5:]], SkipReason.PORT),
        ([*ROW[:4], "443", *ROW[5:]], SkipReason.PORT),
        ([*ROW[:5], 0, 0, *ROW[7:]], SkipReason.VALUE),
        ([*ROW[:5], 3, 1, *ROW[7:]], SkipReason.VALUE),
        ([*ROW[:5], 3, True, *ROW[7:]], SkipReason.VALUE),
        ([*ROW[:7], None, *ROW[8:]], SkipReason.VALUE),
        ([*ROW[:7], -1, *ROW[8:]], SkipReason.VALUE),
        ([*ROW[:11], -5], SkipReason.VALUE),
    ],
)
def test_bad_rows_are_skipped_and_counted(row: object, reason: SkipReason) -> None:
    result = parse_plugin_rows([ROW, row])
    assert len(result.flows) == 1
    assert result.stats.skipped == Counter({reason: 1})
    # Decoded from a page: the typed decoder refuses a row of the wrong type or range
    # (the loose one keeps every row for the check); a typed row whose fields
    # disagree goes from the quick loop to the full check.
    decoded = decode_plugin_page(page([ROW, row]))
    assert parse_plugin_rows(decoded.rows).stats.skipped == Counter({reason: 1})
    assert parse_plugin_rows(decoded.rows).stats.skipped == Counter({reason: 1})  # learned


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([6, *ROW[1:]], SkipReason.FAMILY),
        ([4, 17, "192.168.1.20", "2001:db8::1", *ROW[4:]], SkipReason.FAMILY),
        ([*ROW[:5], 3, 1, *ROW[7:]], SkipReason.VALUE),
        ([*ROW[:7], None, *ROW[8:]], SkipReason.VALUE),
        ([*ROW[:8], None, *ROW[9:]], SkipReason.VALUE),
        ([*ROW[:9], None, *ROW[10:]], SkipReason.VALUE),
        ([*ROW[:10], None, ROW[11]], SkipReason.VALUE),
        ([*ICMP[:8], 0, *ICMP[9:]], SkipReason.VALUE),
        ([*ICMP[:9], 0, *ICMP[10:]], SkipReason.VALUE),
        ([*ICMP[:10], 0, ICMP[11]], SkipReason.VALUE),
    ],
)
def test_typed_rows_whose_fields_disagree_are_skipped(row: list[Any], reason: SkipReason) -> None:
    decoded = decode_plugin_page(page([ROW, ICMP, row])).rows
    assert all(isinstance(each, msgspec.Struct) for each in decoded)
    parse_plugin_rows(decoded[:2])  # their addresses are learned: the quick loop takes them
    result = parse_plugin_rows(decoded)
    assert len(result.flows) == 2
    assert result.stats.skipped == Counter({reason: 1})


def test_typed_rows_give_the_flows_of_plain_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conntrack_plugin, "_LEARNED", {})
    rows = [ROW, ROW6, ICMP]
    decoded = decode_plugin_page(page(rows)).rows
    plain = parse_plugin_rows(rows).flows
    assert conntrack_plugin._LEARNED  # the full check learned the addresses
    assert parse_plugin_rows(decoded).flows == plain
    conntrack_plugin._LEARNED.clear()
    assert parse_plugin_rows(decoded).flows == plain  # unseen addresses: the full check


def test_learned_addresses_start_afresh_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conntrack_plugin, "_LEARNED", {})
    monkeypatch.setattr(conntrack_plugin, "_LEARNED_LIMIT", 2)
    parse_plugin_rows([ROW])
    assert sorted(conntrack_plugin._LEARNED) == ["192.168.1.20", "203.0.113.5"]
    parse_plugin_rows([ROW6])
    assert sorted(conntrack_plugin._LEARNED) == [
        "2001:0db8:0000:0000:0000:0000:0000:0001",
        "fd00:0:0:0:0:0:0:22",
    ]


def test_rows_and_flows_stay_out_of_the_garbage_collector() -> None:
    decoded = decode_plugin_page(page([ROW, ROW6, ICMP])).rows
    flows = parse_plugin_rows(decoded).flows
    assert not any(gc.is_tracked(each) for each in [*decoded, *flows])


def test_nothing_usable_raises() -> None:
    with pytest.raises(ConntrackParseError, match="not one usable"):
        parse_plugin_rows([["x"]])
    with pytest.raises(ConntrackParseError, match="expected a list of rows, got dict"):
        parse_plugin_rows({})
    assert parse_plugin_rows([]).flows == []


def test_page_is_decoded_typed() -> None:
    body = page([ROW, ROW6], total=9, offset=4, next=6)
    decoded = decode_plugin_page(body)
    assert (decoded.snapshot, decoded.total, decoded.offset, decoded.next) == ("ab12", 9, 4, 6)
    assert decoded.size == len(body)
    assert [list(msgspec.structs.astuple(row)) for row in decoded.rows] == [ROW, ROW6]
    assert decode_plugin_page(body.decode()).size == len(body)


def test_plugin_error_and_garbage_are_parse_errors() -> None:
    with pytest.raises(ConntrackParseError, match="the plugin answered an error: no conntrack"):
        decode_plugin_page(b'{"error":"no conntrack table"}')
    with pytest.raises(ConntrackParseError, match="not a phonehome conntrack page"):
        decode_plugin_page(b'{"rows": 5}')
    with pytest.raises(ConntrackParseError, match="not a phonehome conntrack page"):
        decode_plugin_page(b"<html>")
    nested = b"[" * 100000 + b"]" * 100000  # past msgspec's depth: RecursionError
    fields = b'"snapshot":"a","total":1,"offset":0'
    for body in (fields + b',"rows":' + nested, b'"version":' + nested + b"," + fields):
        with pytest.raises(ConntrackParseError, match="not a phonehome conntrack page"):
            decode_plugin_page(b"{" + body + b"}")


def test_page_with_invalid_utf8_skips_only_that_row() -> None:
    """A byte that is not UTF-8 reads as U+FFFD: in an address, its row is skipped."""
    body = page([ROW, ICMP]).replace(b"192.168.1.21", b"192.168.1.\xff")
    decoded = decode_plugin_page(body)
    assert decoded.size == len(body)
    assert decoded.rows[1].src == "192.168.1.\ufffd"
    result = parse_plugin_rows(decoded.rows)
    assert result.stats.skipped == Counter({SkipReason.ADDRESS: 1})
    assert result.flows == parse_plugin_rows(decode_plugin_page(page([ROW])).rows).flows
    text = page([ROW, ICMP]).decode().replace("ab12", "ab\udcff")  # a lone surrogate
    decoded = decode_plugin_page(text)
    assert (decoded.snapshot, decoded.size) == ("ab\ufffd\ufffd\ufffd", len(text) + 2)
    with pytest.raises(ConntrackParseError, match="answered an error: no table \ufffd"):
        decode_plugin_page(b'{"error":"no table \xff"}')


# ---------------------------------------------------------------- against parse_proc


def plugin_rows(text: str, directory: Path) -> list[Any]:
    """Every row the real plugin prints for the table (busybox sh, else dash)."""
    shell = "busybox" if shutil.which("busybox") else "dash"
    if shutil.which(shell) is None:
        pytest.skip("neither busybox nor dash is installed")
    (directory / "tmp").mkdir()
    (directory / "nf_conntrack").write_text(text)
    env = {
        "PHONEHOME_PROC": str(directory / "nf_conntrack"),
        "PHONEHOME_TMP": str(directory / "tmp"),
    }
    plugin = Plugin(shell, tool_dir(shell, directory / "bin"), env)
    rows: list[Any] = []
    arguments: dict[str, Any] = {"offset": 0, "limit": 10000}
    while True:
        reply = plugin.call("conntrack", arguments)
        rows += reply["rows"]
        if reply["next"] is None:
            return rows
        arguments = {"offset": reply["next"], "limit": 10000, "snapshot": reply["snapshot"]}


def per_source(flows: list[Flow]) -> dict[str, dict[str, Any]]:
    """What the analysis needs of each source: hosts, destinations, connections, bytes."""
    found: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "hosts": set(),
            "destinations": set(),
            "connections": 0,
            "replied": 0,
            "unreplied": 0,
            "bytes": 0,
        }
    )
    for flow in flows:
        source = found[flow.src]
        source["hosts"].add(flow.dst)
        source["destinations"].add((flow.dst, flow.dport, flow.protocol))
        source["connections"] += flow.connections
        source["replied" if flow.replied is not False else "unreplied"] += flow.connections
        source["bytes"] += flow.total_bytes or 0
    return dict(found)


def activity(flows: list[Flow], sources: list[str]) -> dict[str, DeviceActivity]:
    devices = {
        f"02:00:00:00:{n >> 8:02x}:{n & 255:02x}": LanDevice(
            f"02:00:00:00:{n >> 8:02x}:{n & 255:02x}",
            (src,) if "." in src else (),
            (src,) if ":" in src else (),
        )
        for n, src in enumerate(sources)
    }
    now = datetime(2026, 1, 1, tzinfo=UTC)
    result = ActivityTracker(timedelta(minutes=15), max_destinations=100000).update(
        flows, devices, now
    )
    return {
        mac: DeviceActivity(
            mac,
            device.internet_hosts,
            device.internet_connections,
            device.last_internet_contact,
            tuple(sorted(device.destinations, key=lambda d: (d.ip, d.port or 0, d.protocol))),
        )
        for mac, device in result.items()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plugin_rows_give_the_analysis_of_parse_proc(seed: int, tmp_path: Path) -> None:
    text = proc_text(3000, seed=seed)
    proc_flows = parse_proc(text).flows
    plugin = parse_plugin_rows(plugin_rows(text, tmp_path))
    assert not plugin.stats.skipped
    assert sum(flow.connections for flow in plugin.flows) == len(proc_flows)
    assert any(flow.connections > 1 for flow in plugin.flows)
    expected = per_source(proc_flows)
    assert per_source(plugin.flows) == expected
    lan = sorted(src for src in expected if src.startswith(("192.168.", "2a02:8071:1234:5600:")))
    assert lan
    assert activity(plugin.flows, lan) == activity(proc_flows, lan)
