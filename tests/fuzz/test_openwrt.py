"""Fuzz the readers of OpenWrt's ubus replies: JSON-RPC envelopes, host hints and leases,
the network devices, /proc numbers, the firewall rules and the live nft ruleset.

Seeds: the 24.10.8 captures in shared/fixtures/openwrt-24.10.8 (host hints,
DHCP leases, a uci get, system board), and what the ubus emulator builds from
them (network devices, stock firewall4 config plus a quarantine rule, fw4's
ruleset as ``nft --terse --json`` prints it).
"""

import json
import types
from typing import Any, Final

from hypothesis import given, strategies as st

from custom_components.phonehome.routers import openwrt, openwrt_firewall
from custom_components.phonehome.routers.base import (
    RouterError,
    RouterResponseError,
    quarantine_name,
)
from custom_components.phonehome.routers.ubus import (
    UbusCall,
    UbusClient,
    _AccessDeniedError as AccessDeniedError,
)
from tests.emulators import ubus as emulator
from tests.emulators.ubus_firewall import FirewallState, default_firewall

from .conftest import FUZZ
from .invariants import MAC, check_devices, check_states, is_count, outcome
from .mutate import HOSTILE_STRINGS, bytes_mutant, json_mutant

QUARANTINED: Final = "aa:bb:cc:00:11:22"


def payload(name: str) -> dict[str, Any]:
    """The data part of a captured reply: ``result[1]``."""
    data = emulator.fixture_body(name)["result"][1]
    assert isinstance(data, dict)
    return data


HINTS: Final = payload("luci_getHostHints")
LEASES: Final = payload("luci_getDHCPLeases")
SECTIONS: Final = default_firewall() | {
    quarantine_name(QUARANTINED): {
        ".anonymous": False,
        ".type": "rule",
        ".name": quarantine_name(QUARANTINED),
        **openwrt_firewall.rule_values(QUARANTINED),
    }
}
RULESET: Final = FirewallState(SECTIONS).ruleset({quarantine_name(QUARANTINED): 7})
HOST_KEYS: Final = ("ipaddrs", "ip6addrs", "name", "ipv4", "ipv6", "dhcp_leases", "dhcp6_leases")
HOST_KEYS += ("macaddr", "ipaddr", "ip6addr", "hostname")
RULE_KEYS: Final = ("values", ".type", "name", "src", "dest", "src_mac", "proto", "target")
RULE_KEYS += ("enabled", "nftables", "rule", "comment", "expr", "counter", "packets")


def test_seeds_hold_a_quarantine() -> None:
    """The seeds are read whole (else the fuzzing is idle)."""
    ruleset = openwrt_firewall._ruleset({"code": 0, "stdout": RULESET})
    states = openwrt_firewall.quarantine_states(SECTIONS, ruleset)
    assert states[QUARANTINED].enforced
    assert states[QUARANTINED].blocked_packets == 7
    assert openwrt._merge_devices(HINTS, LEASES)


@FUZZ
@given(json_mutant(SECTIONS, RULE_KEYS) | json_mutant({"values": SECTIONS}, RULE_KEYS))
def test_firewall_rules(values: Any) -> None:
    """``uci get`` answers an object (the ubus client checks that); what it holds is open."""
    document = values if isinstance(values, dict) and "values" in values else {"values": values}
    sections = outcome(lambda: openwrt_firewall._rules(document), RouterResponseError)
    if sections is None:
        return
    states = openwrt_firewall.quarantine_states(sections, None)
    check_states(states)
    assert all(state.blocked_packets is None for state in states.values())
    for name, section in sections.items():
        for mac in states:
            assert isinstance(openwrt_firewall.rule_holds(section, mac), bool), name


@FUZZ
@given(
    json_mutant(json.loads(RULESET), RULE_KEYS).map(json.dumps)
    | bytes_mutant(RULESET.encode()).map(lambda data: data.decode(errors="replace"))
)
def test_firewall_ruleset(stdout: str) -> None:
    ruleset = outcome(
        lambda: openwrt_firewall._ruleset({"code": 0, "stdout": stdout}), RouterResponseError
    )
    if ruleset is None:
        return
    for comment, packets in ruleset.items():
        assert comment.startswith(openwrt_firewall.FW4_COMMENT)
        assert is_count(packets)
    check_states(openwrt_firewall.quarantine_states(SECTIONS, ruleset))


@FUZZ
@given(json_mutant(HINTS, HOST_KEYS), json_mutant(LEASES, HOST_KEYS))
def test_host_hints_and_leases(hints: Any, leases: Any) -> None:
    """Both payloads are objects (the ubus client checks that); what they hold is open."""
    if not (isinstance(hints, dict) and isinstance(leases, dict)):
        return
    check_devices(openwrt._merge_devices(hints, leases))


@FUZZ
@given(json_mutant(emulator._default_network_devices(), ("mac", "type", "ipaddrs", "ifindex")))
def test_network_devices(devices: Any) -> None:
    router = types.SimpleNamespace(host="192.168.1.1")
    if isinstance(devices, dict):
        mac = outcome(lambda: openwrt.OpenWrtRouter._lan_mac(router, devices), RouterResponseError)  # type: ignore[arg-type]
        assert mac is None or MAC.fullmatch(mac)


@FUZZ
@given(st.fixed_dictionaries({"data": HOSTILE_STRINGS | st.text(max_size=8) | st.integers()}))
def test_proc_number(reply: dict[str, Any]) -> None:
    number = outcome(lambda: openwrt._proc_number(reply, "/proc/x"), RouterResponseError)
    assert number is None or is_count(number)


CLIENT: Final = UbusClient(None, "https://192.168.1.1/ubus", "hass", "secret")  # type: ignore[arg-type]
CALL: Final = UbusCall("luci-rpc", "getHostHints")
BODIES: Final = [
    json.dumps(emulator.fixture_body(name)).encode()
    for name in ("luci_getHostHints", "luci_getDHCPLeases", "system_board", "acl_denied_object")
]


def check_envelope(body: bytes) -> None:
    envelope = outcome(lambda: CLIENT._decode_one(body), RouterResponseError)
    if envelope is not None:
        data = outcome(lambda: CLIENT._payload(envelope, CALL), RouterError, AccessDeniedError)
        assert data is None or isinstance(data, dict)
    batch = outcome(lambda: CLIENT._decode_batch(b"[" + body + b"]", 1, 1), RouterResponseError)
    assert batch is None or len(batch) == 1


@FUZZ
@given(st.sampled_from(BODIES).flatmap(bytes_mutant))
def test_ubus_replies_damaged_byte_by_byte(body: bytes) -> None:
    check_envelope(body)


@FUZZ
@given(st.sampled_from(BODIES).flatmap(lambda body: json_mutant(json.loads(body), ("result",))))
def test_ubus_replies_damaged_node_by_node(document: Any) -> None:
    check_envelope(json.dumps(document).encode())
