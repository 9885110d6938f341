"""Every fault the fuzzing found, as a plain example that passes now it is fixed.

A new fault found in a file another helper owns goes here as a strict xfail naming
that file, which turns into a failure (XPASS) once the fix lands, so that its mark
is removed.
"""

import json
import types

import pytest

from custom_components.phonehome.core import conntrack_text
from custom_components.phonehome.core.conntrack import (
    ConntrackParseError,
    SkipReason,
    parse_luci_json,
    parse_proc,
)
from custom_components.phonehome.core.conntrack_plugin import decode_plugin_page
from custom_components.phonehome.core.model import UNKNOWN_PROTOCOL
from custom_components.phonehome.routers import (
    linux_poll,
    nft_quarantine,
    openwrt,
    openwrt_firewall,
    unifi_parse,
)
from custom_components.phonehome.routers.base import DeviceTraffic, RouterResponseError
from custom_components.phonehome.routers.linux_hosts import DeviceTable
from custom_components.phonehome.routers.ubus import UbusCall, UbusClient
from tests.bench import synthetic

DEEP = 100_000
"""Nesting that overflows msgspec's and json's recursive decoders (RecursionError)."""
MAC = "aa:bb:cc:dd:ee:01"


# ---------------------------------------------------------------- core/conntrack_luci.py


def test_luci_reply_nested_too_deep_is_a_parse_error() -> None:
    for payload in (b"[" * DEEP, b'{"result":[0,{"result":[{"x":' + b"[" * DEEP):
        with pytest.raises(ConntrackParseError, match="not JSON"):
            parse_luci_json(payload)


def test_luci_reply_with_invalid_utf8_keeps_every_entry() -> None:
    """A byte that is not UTF-8 in a field that is read costs no flow: it reads as U+FFFD."""
    payload = synthetic.luci_payload(entries=3, devices=2, seed=1)
    damaged = payload.replace(b'"layer4":"', b'"layer4":"\xff', 1)
    assert damaged != payload
    first, *others = parse_luci_json(damaged).flows
    assert first.protocol == UNKNOWN_PROTOCOL
    assert others == parse_luci_json(payload).flows[1:]
    # A wrong type before the bad byte: the loose reader meets it, and reads on too.
    loose = damaged.replace(b'"bytes":', b'"bytes":"x","was":', 1)
    result = parse_luci_json(loose)
    assert result.stats.skipped.total() == 1
    assert result.flows == others


def test_luci_reply_as_text_with_a_lone_surrogate() -> None:
    payload = synthetic.luci_payload(entries=2, devices=2, seed=1).decode()
    damaged = payload.replace('"use":"2"', '"use":"\udcff"', 1)
    assert parse_luci_json(damaged).flows == parse_luci_json(payload).flows


# ---------------------------------------------------------------- core/conntrack_text.py


def test_proc_line_with_an_empty_value_repeated_is_skipped() -> None:
    """The fast reader took ``use= ... use=1`` (the last value won); the general one skips it."""
    line = (
        "ipv4 2 tcp 6 431999 ESTABLISHED src=192.168.77.2 dst=203.0.113.10 sport=40030 "
        "dport=443 src=203.0.113.10 dst=192.168.77.2 sport=443 dport=40030 use= mark=0 use=1"
    )
    assert conntrack_text._read_tokens(line.split()) == SkipReason.LAYOUT
    with pytest.raises(ConntrackParseError, match="1 not a conntrack entry"):
        parse_proc(line)
    assert len(parse_proc(line.replace("use= ", "")).flows) == 1


@pytest.mark.parametrize("empty", ["src=", "dst=", "sport=", "dport="])
def test_proc_line_with_an_empty_reply_value_is_skipped(empty: str) -> None:
    """The fast reader checked only the keys of the reply tuple; both readers skip it now."""
    reply = ["src=203.0.113.10", "dst=192.168.77.2", "sport=443", "dport=40030"]
    reply = [empty if token.startswith(empty) else token for token in reply]
    line = (
        "ipv4 2 tcp 6 431999 ESTABLISHED src=192.168.77.2 dst=203.0.113.10 sport=40030 "
        f"dport=443 {' '.join(reply)} [ASSURED] mark=0 use=1"
    )
    assert conntrack_text._read_tokens(line.split()) == SkipReason.LAYOUT
    with pytest.raises(ConntrackParseError, match="1 not a conntrack entry"):
        parse_proc(line)


def test_proc_line_counted_in_one_direction_is_skipped() -> None:
    """The fast reader took the reply's counters for keys after the tuples; both skip it now."""
    line = (
        "ipv4 2 tcp 6 431999 ESTABLISHED src=192.168.77.2 dst=203.0.113.10 sport=40030 "
        "dport=443 src=203.0.113.10 dst=192.168.77.2 sport=443 dport=40030 packets=3 "
        "bytes=171 [ASSURED] mark=0 use=1"
    )
    assert conntrack_text._read_tokens(line.split()) == SkipReason.VALUE
    with pytest.raises(ConntrackParseError, match="1 invalid value"):
        parse_proc(line)


# ---------------------------------------------------------------- routers/unifi_parse.py


def test_unifi_client_with_ipv6_not_a_list() -> None:
    for ipv6 in (5, True, "fe80::1", {"a": "fe80::1"}):
        devices = unifi_parse.parse_clients([{"mac": MAC, "ip": "192.168.1.5", "ipv6": ipv6}])
        assert (devices[MAC].ipv4, devices[MAC].ipv6) == (("192.168.1.5",), ())


def test_unifi_flow_with_an_address_not_text() -> None:
    for ip in (5, [1], {"a": 1}, 1.5):
        record = {"source": {"ip": ip}, "destination": {"ip": "203.0.113.10"}}
        assert unifi_parse.parse_flow(record) is None


def test_unifi_flow_ports_and_counters_out_of_range_are_unknown() -> None:
    record = {
        "source": {"ip": "192.168.1.5", "port": -1},
        "destination": {"ip": "203.0.113.10", "port": 65536},
        "traffic_data": {"bytes_rx": -5, "packets_rx": True, "bytes_total": -1},
    }
    flow = unifi_parse.parse_flow(record)
    assert flow is not None
    assert (flow.sport, flow.dport, flow.reply_bytes, flow.reply_packets) == (None,) * 4
    assert (flow.total_bytes, flow.replied) == (None, None)
    record["destination"]["port"] = 65535
    flow = unifi_parse.parse_flow(record)
    assert flow is not None
    assert flow.dport == 65535


def test_unifi_dpi_negative_counts_are_left_out() -> None:
    apps = [{"tx_bytes": -5, "rx_bytes": 10}, {"tx_bytes": 3, "rx_packets": -(2**63)}]
    totals = unifi_parse.parse_dpi([{"mac": MAC, "by_app": apps}])
    assert totals[MAC] == DeviceTraffic(tx_bytes=3, rx_bytes=10, tx_packets=0, rx_packets=0)


def test_unifi_config_targets_not_a_list() -> None:
    for value in (5, True, "aa:bb:cc:dd:ee:01", {"value": MAC}):
        assert unifi_parse.targets({"targets": value}) == set()


# ---------------------------------------------------------------- routers/linux_poll.py

MARKER = "@@phonehome-00"
TABLE = (
    "ipv4 2 udp 17 29 src=192.168.77.2 dst=203.0.113.1 sport=5353 dport=53 "
    "src=203.0.113.1 dst=192.168.77.2 sport=53 dport=5353 mark=0 use=2"
)


def poll_output(count: str, status: str = "0") -> bytes:
    return (
        f"{MARKER} count\n{count}\n{MARKER} end {status}\n"
        f"{MARKER} table proc\n{TABLE}\n{MARKER} end 0\n"
    ).encode()


@pytest.mark.parametrize("count", ["²", "١٢", "9" * 5000], ids=["superscript", "arabic", "long"])
def test_poll_count_not_plain_digits_is_a_response_error(count: str) -> None:
    with pytest.raises(RouterResponseError, match="is not a number"):
        linux_poll.parse_poll(poll_output(count), "", MARKER)


@pytest.mark.parametrize("status", ["²", "9" * 5000], ids=["superscript", "long"])
def test_poll_exit_status_not_plain_digits_is_a_response_error(status: str) -> None:
    with pytest.raises(RouterResponseError, match="cut short or out of order"):
        linux_poll.parse_poll(poll_output("1", status), "", MARKER)


def test_poll_table_source_unknown_is_a_response_error() -> None:
    text = poll_output("1").decode().replace(" table proc\n", " table\n")
    with pytest.raises(RouterResponseError, match="no known table source: ''"):
        linux_poll.parse_poll(text.encode(), "", MARKER)


def test_identity_table_source_unknown_is_none() -> None:
    stdout = b"hostname=gw\nmachine_id=5f0e5ea51a2c4f6b8d3c9a7e1b2d4c6f\ntable=proc\x00\n"
    assert linux_poll.parse_identity(stdout, 0, "gw").table_source == "none"
    stdout = stdout.replace(b"proc\x00", b"conntrack")
    assert linux_poll.parse_identity(stdout, 0, "gw").table_source == "conntrack"


def test_poll_count_of_plain_digits() -> None:
    assert linux_poll.parse_poll(poll_output(" 42 "), "", MARKER).count == 42


# ---------------------------------------------------------------- nft JSON: nft_quarantine.py, openwrt_firewall.py


def test_nft_table_nested_too_deep_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deep"):
        nft_quarantine.parse_table("[" * DEEP)


def nft_table(packets: object) -> str:
    element = {"elem": {"val": MAC, "comment": "phonehome_aabbccddee01", "counter": {}}}
    element["elem"]["counter"] = {"packets": packets}
    found = {"family": "inet", "table": "phonehome", "name": "quarantined", "elem": [element]}
    return json.dumps({"nftables": [{"set": found}]})


@pytest.mark.parametrize("packets", [-3, True])
def test_nft_element_counter_that_is_no_count(packets: object) -> None:
    assert nft_quarantine.parse_table(nft_table(packets)).elements[MAC].packets is None
    assert nft_quarantine.parse_table(nft_table(7)).elements[MAC].packets == 7


def test_fw4_ruleset_nested_too_deep_is_a_response_error() -> None:
    with pytest.raises(RouterResponseError, match="did not print JSON"):
        openwrt_firewall._ruleset({"code": 0, "stdout": '{"a":' * DEEP})


@pytest.mark.parametrize("packets", [-4, True])
def test_fw4_rule_counter_that_is_no_count(packets: object) -> None:
    def ruleset(*counts: object) -> str:
        expr = [{"counter": {"packets": count}} for count in counts]
        return json.dumps({"nftables": [{"rule": {"comment": "!fw4: x", "expr": expr}}]})

    read = openwrt_firewall._ruleset
    assert read({"code": 0, "stdout": ruleset(packets, 5)}) == {"!fw4: x": 5}


# ---------------------------------------------------------------- core/conntrack_plugin.py

PLUGIN_PAGE = b'{"snapshot":"ab12","total":1,"offset":0,"rows":['


def test_plugin_page_nested_too_deep_is_a_parse_error() -> None:
    with pytest.raises(ConntrackParseError):
        decode_plugin_page(PLUGIN_PAGE + b"[" * DEEP)


def test_plugin_page_with_invalid_utf8() -> None:
    page = decode_plugin_page(b'{"snapshot":"\xa2","total":0,"offset":0,"rows":[]}')
    assert page.rows == []


# ---------------------------------------------------------------- routers/openwrt.py


def test_network_device_with_addresses_not_a_list() -> None:
    router = types.SimpleNamespace(host="192.168.1.1")
    devices = {"br-lan": {"mac": MAC, "type": 1, "ipaddrs": 5}}
    assert openwrt.OpenWrtRouter._lan_mac(router, devices) == MAC  # type: ignore[arg-type]


def test_proc_number_negative_is_a_response_error() -> None:
    with pytest.raises(RouterResponseError, match="did not return a number"):
        openwrt._proc_number({"data": "-5\n"}, "/proc/sys/net/netfilter/nf_conntrack_count")


def test_host_hint_addresses_canonical_and_in_their_family() -> None:
    """Flows carry canonical addresses: a device's must be too, or its flows go unmatched."""
    hints = {MAC: {"ipaddrs": ["2001:DB8::1", "192.168.1.5"], "ip6addrs": ["[FE80::1]"]}}
    device = openwrt._merge_devices(hints, {})[MAC]
    assert (device.ipv4, device.ipv6) == (("192.168.1.5",), ("2001:db8::1", "fe80::1"))


# ---------------------------------------------------------------- routers/ubus.py

UBUS = UbusClient(None, "https://192.168.1.1/ubus", "hass", "secret")  # type: ignore[arg-type]


def test_ubus_error_message_with_invalid_utf8() -> None:
    with pytest.raises(RouterResponseError, match="can't decode byte 0xff"):
        UBUS._decode_one(b'{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"\xff"}}')


def test_ubus_reply_nested_too_deep_is_a_response_error() -> None:
    with pytest.raises(RouterResponseError, match="maximum recursion depth"):
        UBUS._decode_one(b'{"jsonrpc":"2.0","id":1,"result":[0,' + b"[" * DEEP)


def test_ubus_payload_with_invalid_utf8() -> None:
    """A device's DHCP hostname that is not UTF-8, as rpcd passes it through (fixed in ubus.py)."""
    body = b'{"jsonrpc":"2.0","id":1,"result":[0,{"AA:BB:CC:DD:EE:01":{"name":"cam\xff"}}]}'
    envelope = UBUS._decode_one(body)
    payload = UBUS._payload(envelope, UbusCall("luci-rpc", "getHostHints"))
    assert payload["AA:BB:CC:DD:EE:01"]["name"].startswith("cam")


# ---------------------------------------------------------------- routers/linux_hosts.py


def test_lease_address_in_the_text_flows_carry() -> None:
    """IPv4-compatible IPv6 (::a.b.c.d): ipaddress writes ::102:304, the flows ::1.2.3.4."""
    table = DeviceTable()
    table.add(MAC, "::1.2.3.4")
    assert table.devices()[MAC].ipv6 == ("::1.2.3.4",)
