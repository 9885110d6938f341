"""The rpcd exec plugin router/openwrt/phonehome, run as rpcd runs it.

Every test runs the real script under busybox sh with busybox applets only, and
under dash; the replies are compared with an aggregation of parse_proc's flows.
"""

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from custom_components.phonehome.core.addresses import address_info
from custom_components.phonehome.core.conntrack_text import parse_proc
from tests.bench.synthetic import proc_text
from tests.lab.conftest import LabCapture

from .tools import COLUMNS, MAX_REPLY, PLUGIN, Plugin, tool_dir

Key = tuple[int, int, str, str, int | None, bool]


def expected_rows(text: str) -> dict[Key, list[Any]]:
    """The plugin's aggregation, computed from parse_proc (canonical addresses)."""
    groups: dict[Key, list[Any]] = defaultdict(lambda: [0, 0, None, None, None, None, None])
    for flow in parse_proc(text).flows:
        replied = flow.replied is not False
        group = groups[(flow.family, flow.protocol, flow.src, flow.dst, flow.dport, replied)]
        group[0] += 1
        group[1] += flow.replied is False
        if flow.total_packets is not None:
            assert flow.total_bytes is not None
            assert flow.reply_packets is not None
            assert flow.reply_bytes is not None
            sums = (
                flow.total_packets - flow.reply_packets,
                flow.total_bytes - flow.reply_bytes,
                flow.reply_packets,
                flow.reply_bytes,
            )
            for index, value in enumerate(sums, 2):
                group[index] = (group[index] or 0) + value
        if flow.timeout is not None:
            group[6] = flow.timeout if group[6] is None else min(group[6], flow.timeout)
    return dict(groups)


def canonical(row: list[Any]) -> tuple[Key, list[Any]]:
    """A plugin row as (key, values), its addresses canonicalised."""
    assert len(row) == len(COLUMNS)
    src, dst = address_info(row[2]), address_info(row[3])
    assert src is not None
    assert dst is not None
    assert src.family == dst.family == row[0]
    assert row[6] in {0, row[5]}  # a row never mixes replied and unreplied entries
    return (row[0], row[1], src.address, dst.address, row[4], row[6] == 0), row[5:]


def read_all(
    plugin: Plugin, limit: int | None = None
) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """Every row, following `next` from offset 0; and the replies."""
    rows: list[list[Any]] = []
    replies: list[dict[str, Any]] = []
    offset: int | None = 0
    snapshot = None
    while offset is not None:
        arguments: dict[str, Any] = {"offset": offset}
        if snapshot is not None:
            arguments["snapshot"] = snapshot
        if limit is not None:
            arguments["limit"] = limit
        reply = plugin.call("conntrack", arguments)
        assert reply["version"] == "1"
        assert reply["offset"] == offset == len(rows)
        snapshot = snapshot or reply["snapshot"]
        assert reply["snapshot"] == snapshot
        assert reply["rows"] or reply["total"] == 0
        rows.extend(reply["rows"])
        replies.append(reply)
        offset = reply["next"]
        assert len(replies) < 10000
    assert len(rows) == replies[0]["total"]
    return rows, replies


def check_table(text: str, rows: list[list[Any]]) -> None:
    """The rows cover the table's groups exactly once, in key order."""
    got = [canonical(row) for row in rows]
    assert len({key for key, _ in got}) == len(got)
    assert dict(got) == expected_rows(text)
    keys = [(row[0], row[1], row[2], row[3], row[4] or 0, row[6] == 0) for row in rows]
    assert keys == sorted(keys)


def table_of(plugin: Plugin) -> Path:
    """Where the plugin reads the conntrack table."""
    return Path(plugin.env["PHONEHOME_PROC"])


def scratch_of(plugin: Plugin) -> Path:
    """The plugin's snapshot directory."""
    return Path(plugin.env["PHONEHOME_TMP"])


def test_list(plugin: Plugin) -> None:
    out, _ = plugin.run(["list"])
    methods = json.loads(out)
    assert methods == {
        "summary": {},
        "conntrack": {"offset": 32, "limit": 32, "snapshot": "str"},
        "flush": {"ip": "str"},
    }


def test_summary(plugin: Plugin) -> None:
    sys_dir = Path(plugin.env["PHONEHOME_SYS"])
    for name, value in (("count", "4242"), ("max", "65536"), ("acct", "1")):
        (sys_dir / f"nf_conntrack_{name}").write_text(f"{value}\n")
    reply = plugin.call("summary", {})
    assert reply == {"version": "1", "count": 4242, "max": 65536, "accounting": True}
    (sys_dir / "nf_conntrack_acct").write_text("0\n")
    (sys_dir / "nf_conntrack_max").unlink()
    reply = plugin.call("summary", {})
    assert reply == {"version": "1", "count": 4242, "max": None, "accounting": False}


@pytest.mark.parametrize(("entries", "limit"), [(100, 7), (100, None), (3000, 250)])
def test_pages_cover_synthetic_table(plugin: Plugin, entries: int, limit: int | None) -> None:
    text = proc_text(entries)
    table_of(plugin).write_text(text)
    rows, replies = read_all(plugin, limit)
    check_table(text, rows)
    assert all(len(reply["rows"]) <= (limit or 1000) for reply in replies)
    files = list(scratch_of(plugin).iterdir())
    assert [path.name for path in files] == [f"phonehome.{replies[0]['snapshot']}"]
    assert files[0].stat().st_mode & 0o777 == 0o600


def test_lab_table(plugin: Plugin, lab_capture: LabCapture) -> None:
    """The real kernel's table (tests/lab), three rows a page."""
    text = lab_capture.dump.proc
    table_of(plugin).write_text(text)
    rows, _ = read_all(plugin, 3)
    assert len(rows) > 3
    check_table(text, rows)


def test_full_table_stays_under_reply_limit(tmp_path: Path) -> None:
    """65,536 entries under busybox: pages of 10,000 rows are cut to stay under 256 KiB."""
    (tmp_path / "tmp").mkdir()
    table = tmp_path / "nf_conntrack"
    env = {"PHONEHOME_PROC": str(table), "PHONEHOME_TMP": str(tmp_path / "tmp")}
    plugin = Plugin("busybox", tool_dir("busybox", tmp_path / "bin"), env)
    text = proc_text(65536)
    table.write_text(text)
    started = time.perf_counter()
    rows, replies = read_all(plugin, 50000)
    print(f"busybox: {len(replies)} pages in {time.perf_counter() - started:.1f} s")
    assert len(replies) > 1
    assert all(len(json.dumps(reply, separators=(",", ":"))) <= MAX_REPLY for reply in replies)
    check_table(text, rows)


def test_later_pages_read_the_snapshot(plugin: Plugin) -> None:
    table = table_of(plugin)
    first_text = proc_text(100)
    table.write_text(first_text)
    first = plugin.call("conntrack", {"limit": 10})
    table.write_text(proc_text(3000))
    rows = list(first["rows"])
    offset = first["next"]
    while offset is not None:
        arguments = {"offset": offset, "limit": 10, "snapshot": first["snapshot"]}
        reply = plugin.call("conntrack", arguments)
        assert reply["snapshot"] == first["snapshot"]
        assert reply["total"] == first["total"]
        rows.extend(reply["rows"])
        offset = reply["next"]
    check_table(first_text, rows)
    # A new poll (offset 0) reads the table again; an unknown snapshot too.
    fresh = plugin.call("conntrack", {"offset": 0, "snapshot": first["snapshot"]})
    assert fresh["snapshot"] != first["snapshot"]
    assert fresh["total"] != first["total"]
    unknown = plugin.call("conntrack", {"offset": 10, "snapshot": "abc123"})
    assert unknown["snapshot"] not in {"abc123", first["snapshot"]}
    assert unknown["offset"] == 10


def test_old_snapshots_are_removed(plugin: Plugin) -> None:
    table_of(plugin).write_text(proc_text(100))
    scratch = scratch_of(plugin)
    now = int(time.time())
    old = scratch / f"phonehome.{now - 600:08x}0123abcd"
    old_partial = scratch / f"phonehome.{now - 600:08x}4567abcd.new"
    recent = scratch / f"phonehome.{now - 10:08x}0123abcd"
    other = scratch / "unrelated"
    for path in (old, old_partial, recent, other):
        path.write_text("")
    plugin.call("conntrack", {})
    assert not old.exists()
    assert not old_partial.exists()
    assert recent.exists()
    assert other.exists()


def test_paging_edges(plugin: Plugin, tmp_path: Path) -> None:
    table_of(plugin).write_text(proc_text(3000))
    first = plugin.call("conntrack", {"limit": 0})
    assert len(first["rows"]) == 1
    assert first["next"] == 1
    big = plugin.call("conntrack", {"limit": 999999})
    assert len(big["rows"]) == big["total"] <= 10000
    assert big["next"] is None
    past = plugin.call("conntrack", {"offset": 10**6, "snapshot": big["snapshot"]})
    assert past["rows"] == []
    assert past["next"] is None
    table_of(plugin).write_text("")
    reply = plugin.call("conntrack", {})
    assert (reply["total"], reply["next"], reply["rows"]) == (0, None, [])
    absent = plugin.with_env(PHONEHOME_PROC=str(tmp_path / "absent"))
    assert absent.call("conntrack", {}) == {"error": "no conntrack table"}


def test_accounting_off_and_odd_lines(plugin: Plugin) -> None:
    text = (
        "ipv4     2 tcp      6 300 ESTABLISHED src=192.168.1.2 dst=203.0.113.5 sport=5000 "
        "dport=443 src=203.0.113.5 dst=192.168.1.2 sport=443 dport=5000 [ASSURED] mark=0 "
        "zone=0 use=2\n"
        "ipv4     2 tcp      6 200 ESTABLISHED src=192.168.1.2 dst=203.0.113.5 sport=5001 "
        "dport=443 src=203.0.113.5 dst=192.168.1.2 sport=443 dport=5001 [ASSURED] mark=0 "
        "zone=0 use=2\n"
        "ipv4     2 udp      17 30 src=192.168.1.2 dst=203.0.113.9 sport=5000 dport=53 "
        "[UNREPLIED] src=203.0.113.9 dst=192.168.1.2 sport=53 dport=5000 mark=0 zone=0 use=2\n"
        "ipv4     2 tcp      6 300 ESTABLISHED src=1.2.3.4;id dst=203.0.113.5 sport=1 "
        "dport=443 src=203.0.113.5 dst=1.2.3.4 sport=443 dport=1 mark=0 zone=0 use=2\n"
        "ipv4     2 tcp      6 300 ESTABLISHED src=1.2.3.256 dst=203.0.113.5 sport=1 "
        "dport=443 src=203.0.113.5 dst=1.2.3.256 sport=443 dport=1 mark=0 zone=0 use=2\n"
        'ipv6     10 udp      17 30 src=fe80::1" dst=ff02::1 sport=1 dport=2 '
        "src=ff02::1 dst=fe80::1 sport=2 dport=1 mark=0 zone=0 use=2\n"
        "garbage\n"
    )
    table_of(plugin).write_text(text)
    reply = plugin.call("conntrack", {})
    assert reply["rows"] == [
        [4, 6, "192.168.1.2", "203.0.113.5", 443, 2, 0, None, None, None, None, 200],
        [4, 17, "192.168.1.2", "203.0.113.9", 53, 1, 1, None, None, None, None, 30],
    ]


BAD_CALLS = [
    ("nosuch", {}),
    ("conntrack", ""),
    ("conntrack", "{"),
    ("conntrack", "[]"),
    ("conntrack", "not json"),
    ("conntrack", '{"offset": 1} trailing'),
    ("conntrack", '{"offset": 1, "offset": 2}'),
    ("conntrack", {"offset": -1}),
    ("conntrack", {"offset": 10**30}),
    ("conntrack", {"offset": 1.5}),
    ("conntrack", {"limit": "x"}),
    ("conntrack", {"limit": [1]}),
    ("conntrack", {"snapshot": "../../etc"}),
    ("conntrack", {"snapshot": "$(touch CANARY)"}),
    ("conntrack", {"snapshot": 5}),
    ("conntrack", '{"snapshot": "a\\"b"}'),
    ("flush", {}),
    ("flush", {"ip": "1.2.3.4; touch CANARY"}),
    ("flush", {"ip": "$(touch CANARY)"}),
    ("flush", {"ip": "`touch CANARY`"}),
    ("flush", {"ip": "1.2.3.256"}),
    ("flush", {"ip": "1.2.3"}),
    ("flush", {"ip": "::g"}),
    ("flush", {"ip": "1::2::3"}),
    ("flush", {"ip": "1:2:3:4:5:6:7:8:9"}),
    ("flush", {"ip": "-f"}),
    ("flush", {"ip": 16909060}),
]


@pytest.mark.parametrize(("method", "arguments"), BAD_CALLS)
def test_bad_input(plugin: Plugin, tmp_path: Path, method: str, arguments: Any) -> None:
    """An error object; no snapshot, no flush, no file made (CANARY) in the working directory."""
    table_of(plugin).write_text(proc_text(100))
    work = tmp_path / "work"
    work.mkdir()
    reply = plugin.call(method, arguments, cwd=work)
    assert set(reply) == {"error"}
    assert not Path(plugin.env["PHONEHOME_FLUSH_TARGET"]).exists()
    assert list(work.iterdir()) == []
    assert list(scratch_of(plugin).iterdir()) == []


@pytest.mark.parametrize("ip", ["192.168.1.23", "0.0.0.0", "fd12:3456:789a:1::17", "::1"])
def test_flush_writes_the_table(plugin: Plugin, ip: str) -> None:
    """Without a conntrack tool, the address is written to /proc/net/nf_conntrack."""
    assert plugin.call("flush", {"ip": ip}) == {"flushed": True}
    assert Path(plugin.env["PHONEHOME_FLUSH_TARGET"]).read_text() == ip


def test_flush_uses_conntrack_tool(plugin: Plugin, tmp_path: Path) -> None:
    record = tmp_path / "argv"
    fake = plugin.path / "conntrack"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>{record}\nexit 1\n')
    fake.chmod(0o755)
    assert plugin.call("flush", {"ip": "192.168.1.23"}) == {"flushed": True}
    assert record.read_text().splitlines() == [
        f"-D {option} 192.168.1.23" for option in ("-s", "-d", "-r", "-q")
    ]
    assert not Path(plugin.env["PHONEHOME_FLUSH_TARGET"]).exists()


def test_flush_write_failure(plugin: Plugin, tmp_path: Path) -> None:
    broken = plugin.with_env(PHONEHOME_FLUSH_TARGET=str(tmp_path / "absent" / "file"))
    assert broken.call("flush", {"ip": "192.168.1.23"}) == {"error": "flush failed"}


def test_usage(plugin: Plugin) -> None:
    out, _ = plugin.run([])
    assert "error" in json.loads(out)
    assert os.access(PLUGIN, os.X_OK)
