"""OpenWrtRouter against the ubus emulator built from real OpenWrt 24.10.8 captures."""

import asyncio
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.abc
import pytest

from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.conntrack import parse_luci_json
from custom_components.phonehome.routers import openwrt
from custom_components.phonehome.routers.base import (
    LanDevice,
    RouterAuthError,
    RouterConnectionError,
    RouterPermissionError,
    RouterResponseError,
    RouterTLSError,
)
from custom_components.phonehome.routers.openwrt import (
    DEFAULT_CONNTRACK_CAP,
    REQUIRED_RIGHTS,
    OpenWrtRouter,
)
from custom_components.phonehome.routers.openwrt_firewall import QUARANTINE_RIGHTS
from custom_components.phonehome.routers.ubus import Right
from tests.bench.synthetic import proc_text
from tests.emulators.ubus import COUNT_PATH, FIXTURES, Failure, UbusEmulator, User
from tests.routers.conftest import RouterFactory, make_router

THREE_DEVICES = """\
ipv4     2 udp      17 29 src=192.168.1.20 dst=203.0.113.5 sport=40010 dport=10001 packets=7 bytes=420 [UNREPLIED] src=203.0.113.5 dst=192.168.1.20 sport=10001 dport=40010 packets=0 bytes=0 mark=0 zone=0 use=2
ipv4     2 tcp      6 7439 ESTABLISHED src=192.168.1.21 dst=198.51.100.7 sport=51000 dport=443 packets=10 bytes=1500 src=198.51.100.7 dst=192.168.1.21 sport=443 dport=51000 packets=12 bytes=9000 [ASSURED] mark=0 zone=0 use=2
ipv6     10 tcp      6 7439 ESTABLISHED src=fd00:0000:0000:0000:0000:0000:0000:0022 dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=52000 dport=443 packets=3 bytes=300 src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0022 sport=443 dport=52000 packets=2 bytes=200 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 100 TIME_WAIT src=192.168.1.22 dst=198.51.100.8 sport=53000 dport=80 packets=5 bytes=500 src=198.51.100.8 dst=192.168.1.22 sport=80 dport=53000 packets=5 bytes=700 [ASSURED] mark=0 zone=0 use=2
"""

HINTS = {
    "C0:FF:EE:00:00:01": {"ipaddrs": ["192.168.1.20"], "ip6addrs": [], "name": "Garage camera"},
    "C0:FF:EE:00:00:02": {"ipaddrs": ["192.168.1.21"], "ip6addrs": ["fd00::21"]},
    "C0:FF:EE:00:00:03": {"ipaddrs": ["192.168.1.22"], "ip6addrs": ["fd00::22"], "name": "laptop"},
}
LEASES = {
    "dhcp_leases": [
        {
            "expires": 3572,
            "hostname": "IPCAM",
            "macaddr": "C0:FF:EE:00:00:01",
            "ipaddr": "192.168.1.20",
        },
        {
            "expires": 3000,
            "hostname": "tv",
            "macaddr": "C0:FF:EE:00:00:02",
            "ipaddr": "192.168.1.21",
        },
    ],
    "dhcp6_leases": [
        {
            "expires": 3000,
            "hostname": "tv",
            "duid": "00030001c0ffee000002",
            "macaddr": "C0:FF:EE:00:00:02",
            "ip6addr": "fd00::121",
            "ip6addrs": ["fd00::121"],
        }
    ],
}


def test_the_fixtures_are_where_ci_finds_them() -> None:
    assert (FIXTURES / "login_ok.json").is_file()
    assert FIXTURES.parent.parent == Path(__file__).parents[3] / "shared"


# ---------------------------------------------------------------- connect


async def test_connect_logs_in_and_identifies_the_router(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = router_for()
    info = await router.connect()
    assert info.unique_id == "94:83:c4:00:00:01"  # br-lan
    assert info.name == "b6f391692652"
    assert info.model == "Example Board X1"
    assert info.firmware == "OpenWrt 24.10.8 r29233-443ec4032a"
    assert router.kind == "openwrt"
    assert emulator.calls["session.login"] == 1
    await router.close()


async def test_connect_as_least_privilege_user(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = router_for(username="hass", password="hasspw")
    assert (await router.connect()).unique_id == "94:83:c4:00:00:01"
    emulator.proc_text = THREE_DEVICES
    assert len((await router.snapshot()).flows) == 3


async def test_unique_id_without_br_lan_is_the_device_holding_our_address(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    bridge = emulator.network_devices.pop("br-lan")
    emulator.network_devices["eth1"]["ipaddrs"] = bridge["ipaddrs"]
    emulator.network_devices["eth1"]["ipaddrs"][0]["address"] = "127.0.0.1"
    emulator.network_devices["eth0"]["ipaddrs"] = [{"address": "garbage"}, {"netmask": "x"}, "odd"]
    emulator.network_devices["eth0"]["ip6addrs"] = 5  # not a list
    emulator.network_devices["wan"] = {"mac": "nonsense", "type": 1}
    emulator.network_devices["broken"] = "not a device"
    assert (await router_for().connect()).unique_id == "94:83:c4:00:00:02"


async def test_unique_id_falls_back_to_the_first_ethernet_port(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    del emulator.network_devices["br-lan"]
    emulator.network_devices["eth1"]["ifindex"] = 9
    assert (await router_for().connect()).unique_id == "94:83:c4:00:00:01"


async def test_no_ethernet_device_is_a_response_error(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.network_devices = {"lo": emulator.network_devices["lo"]}
    with pytest.raises(RouterResponseError, match="cannot identify the router"):
        await router_for().connect()


async def test_connect_without_hostname_or_release_uses_host(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.board = {"release": {"version": "24.10.8"}}
    info = await router_for().connect()
    assert (info.name, info.model, info.firmware) == ("127.0.0.1", None, "24.10.8")
    emulator.board = {"release": "odd"}
    assert (await router_for().connect()).firmware is None


async def test_wrong_password(router_for: RouterFactory) -> None:
    with pytest.raises(RouterAuthError, match="wrong password or unknown user"):
        await router_for(password="wrong").connect()


async def test_unknown_user(router_for: RouterFactory) -> None:
    with pytest.raises(RouterAuthError, match="'nobody'"):
        await router_for(username="nobody", password="x").connect()


async def test_login_refused_by_uhttpd(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    emulator.anonymous_login = False
    with pytest.raises(RouterAuthError, match="unauthenticated"):
        await router_for().connect()


async def test_acl_missing_for_network_devices(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus.discard("luci-rpc.getNetworkDevices")  # type: ignore[union-attr]
    with pytest.raises(RouterPermissionError, match="luci-rpc getNetworkDevices"):
        await router_for(username="hass", password="hasspw").connect()


# ---------------------------------------------------------------- snapshot


async def test_snapshot_of_three_devices(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    emulator.proc_text = THREE_DEVICES
    emulator.host_hints = HINTS
    emulator.dhcp_leases = LEASES
    router = router_for()
    await router.connect()
    snapshot = await router.snapshot()

    assert snapshot.table_read
    assert snapshot.conntrack_count == 4  # the kernel counts the TIME_WAIT entry too
    assert snapshot.capabilities.byte_counters
    assert snapshot.parse_stats is not None
    assert snapshot.parse_stats.flows == 3
    summary = [
        (f.family, f.protocol, f.src, f.sport, f.dst, f.dport, f.total_bytes, f.total_packets)
        for f in snapshot.flows
    ]
    assert summary == [
        (4, 17, "192.168.1.20", 40010, "203.0.113.5", 10001, 420, 7),
        (4, 6, "192.168.1.21", 51000, "198.51.100.7", 443, 10500, 22),
        (6, 6, "fd00::22", 52000, "2001:db8::1", 443, 500, 5),
    ]
    assert snapshot.flows[0].src_scope is AddressScope.LAN
    assert snapshot.devices == {
        "c0:ff:ee:00:00:01": LanDevice(
            "c0:ff:ee:00:00:01", ("192.168.1.20",), (), hostname="IPCAM", name="Garage camera"
        ),
        "c0:ff:ee:00:00:02": LanDevice(
            "c0:ff:ee:00:00:02", ("192.168.1.21",), ("fd00::21", "fd00::121"), hostname="tv"
        ),
        "c0:ff:ee:00:00:03": LanDevice(
            "c0:ff:ee:00:00:03", ("192.168.1.22",), ("fd00::22",), name="laptop"
        ),
    }
    assert emulator.calls["luci.getConntrackList"] == 1
    assert emulator.calls["file.read"] == 2  # count and accounting, in one batch
    await router.close()


async def test_snapshot_with_captured_hints_and_leases(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    snapshot = await router_for().snapshot()  # logs in on demand
    assert snapshot.flows == []
    assert snapshot.conntrack_count == 0
    assert snapshot.capabilities.byte_counters  # nf_conntrack_acct is 1
    phone = snapshot.devices["aa:bb:cc:00:11:22"]
    assert (phone.ipv4, phone.hostname, phone.name) == (("192.168.1.50",), "phone", "phone")
    assert set(snapshot.devices) == {"42:55:d0:a1:a6:3c", "72:e2:56:16:e3:01", "aa:bb:cc:00:11:22"}


async def test_odd_hints_and_leases_are_skipped(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.host_hints = {
        "not-a-mac": {"ipaddrs": ["192.168.1.9"]},
        "00:00:00:00:00:00": {"ipaddrs": ["192.168.1.8"]},
        "zz:zz:zz:zz:zz:zz": {},
        "C0:FF:EE:00:00:09": "odd",
        "C0-FF-EE-00-00-0A": {"ipv4": "192.168.1.10", "ipv6": "fd00::a", "ipaddrs": "odd"},
    }
    emulator.dhcp_leases = {"dhcp_leases": [{"macaddr": 5}, "odd"], "dhcp6_leases": "odd"}
    snapshot = await router_for().snapshot()
    assert snapshot.devices == {
        "c0:ff:ee:00:00:0a": LanDevice("c0:ff:ee:00:00:0a", ("192.168.1.10",), ("fd00::a",))
    }


async def test_device_addresses_are_canonical_and_in_their_family(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    """As the flows carry them (core/addresses.py), whichever list the router put them in."""
    emulator.host_hints = {
        "C0:FF:EE:00:00:0B": {
            "ipaddrs": ["FD00::B", "192.168.1.11"],
            "ip6addrs": ["[FE80::B]", "fe80::b%br-lan", "::1.2.3.4", "192.168.1.12"],
        }
    }
    emulator.dhcp_leases = {
        "dhcp_leases": [{"macaddr": "c0:ff:ee:00:00:0b", "ipaddr": "192.168.1.11"}],
        "dhcp6_leases": [{"macaddr": "c0:ff:ee:00:00:0b", "ip6addrs": ["fd00:0::b", "fd00::c"]}],
    }
    device = (await router_for().snapshot()).devices["c0:ff:ee:00:00:0b"]
    assert device.ipv4 == ("192.168.1.11", "192.168.1.12")
    assert device.ipv6 == ("fd00::b", "fe80::b", "::1.2.3.4", "fd00::c")


@pytest.mark.parametrize("data", ["-5\n", "+5", "1_000", "\u0661\u0662", "²", "9" * 5000, ""])
def test_count_of_anything_but_plain_digits_is_a_response_error(data: str) -> None:
    with pytest.raises(RouterResponseError, match="did not return a number"):
        openwrt._proc_number({"data": data}, COUNT_PATH)


def test_count_of_plain_digits() -> None:
    assert openwrt._proc_number({"data": " 4096\n"}, COUNT_PATH) == 4096


async def test_without_accounting_there_are_no_byte_counters(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.files["/proc/sys/net/netfilter/nf_conntrack_acct"] = "0\n"
    assert not (await router_for().snapshot()).capabilities.byte_counters
    del emulator.files["/proc/sys/net/netfilter/nf_conntrack_acct"]  # unreadable: unknown
    assert not (await router_for().snapshot()).capabilities.byte_counters


async def test_huge_table_is_never_read_with_the_default_cap(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = proc_text(20000)
    router = router_for()
    assert router.conntrack_cap == DEFAULT_CONNTRACK_CAP
    snapshot = await router.snapshot()
    assert emulator.calls["luci.getConntrackList"] == 0
    assert not snapshot.table_read
    assert snapshot.flows == []
    assert snapshot.conntrack_count == 20000
    assert snapshot.capabilities.byte_counters  # from nf_conntrack_acct
    assert emulator.rpcd_alive
    assert (await router.snapshot()).conntrack_count == 20000  # rpcd still answers
    assert emulator.calls["luci.getConntrackList"] == 0


async def test_table_at_the_cap_is_read_one_above_is_not(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = THREE_DEVICES
    assert (await router_for(conntrack_cap=4).snapshot()).table_read
    assert not (await router_for(conntrack_cap=3).snapshot()).table_read
    assert emulator.calls["luci.getConntrackList"] == 1


async def test_raised_cap_kills_rpcd_and_the_client_says_so(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = proc_text(20000)
    emulator.hang = 0.3
    router = router_for(conntrack_cap=25000, conntrack_timeout=2.0)
    await router.connect()
    started = time.monotonic()
    with pytest.raises(RouterConnectionError, match=r"-32003.*1 MiB.*rpcd restart"):
        await router.snapshot()
    assert time.monotonic() - started < 2.0
    assert emulator.calls["luci.getConntrackList"] == 1
    assert not emulator.rpcd_alive
    # from now on every call, login included, answers -32000
    with pytest.raises(RouterConnectionError, match="rpcd on the router does not answer"):
        await router.snapshot()
    with pytest.raises(RouterConnectionError, match="rpcd on the router does not answer"):
        await router_for().connect()
    assert emulator.calls["luci.getConntrackList"] == 1
    emulator.restart_rpcd()
    assert (await router_for().snapshot()).conntrack_count == 20000
    assert emulator.rpcd_alive


async def test_raised_cap_with_rpcd_hanging_past_the_timeout(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = proc_text(8000)
    emulator.hang = 5.0
    router = router_for(conntrack_cap=10000, conntrack_timeout=0.3)
    await router.connect()
    started = time.monotonic()
    with pytest.raises(RouterConnectionError, match=r"within 0\.3 s.*1 MiB"):
        await router.snapshot()
    assert time.monotonic() - started < 1.0


async def test_missing_luci_package_is_a_response_error(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = router_for()
    await router.connect()
    emulator.network_devices = {}
    del emulator.board["hostname"]
    objects = __import__("tests.emulators.ubus", fromlist=["OBJECTS"]).OBJECTS
    saved = objects.pop("luci-rpc")
    try:
        with pytest.raises(RouterResponseError, match=r"no ubus object 'luci-rpc'.*package"):
            await router.snapshot()
    finally:
        objects["luci-rpc"] = saved


async def test_expired_session_mid_poll_relogs_once(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = THREE_DEVICES
    router = router_for()
    await router.connect()
    emulator.expire_sessions()
    snapshot = await router.snapshot()
    assert len(snapshot.flows) == 3
    assert emulator.calls["session.login"] == 2
    assert router.ubus.logins == 2


async def test_session_expiring_before_the_table_call(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = THREE_DEVICES
    router = router_for()
    await router.connect()
    original = emulator._dispatch

    expired: list[bool] = []

    async def expire_after_batch(*args: object) -> dict[str, object]:
        answer = await original(*args)  # type: ignore[arg-type]
        if args[3] == "exec" and not expired:  # the poll batch's last call (nft ruleset)
            expired.append(True)
            emulator.expire_sessions()
        return answer

    emulator._dispatch = expire_after_batch  # type: ignore[method-assign]
    assert len((await router.snapshot()).flows) == 3
    assert emulator.calls["session.login"] == 2
    assert emulator.calls["luci.getConntrackList"] == 2  # denied once, then served


async def test_acl_missing_for_conntrack_list(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus.discard("luci.getConntrackList")  # type: ignore[union-attr]
    emulator.proc_text = THREE_DEVICES
    router = router_for(username="hass", password="hasspw")
    with pytest.raises(
        RouterPermissionError,
        match=r"lacks the rpcd ACL for luci getConntrackList.*README#openwrt-access",
    ):
        await router.snapshot()
    assert emulator.calls["session.login"] == 2  # one re-login, then the verdict


async def test_acl_missing_for_host_hints(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus.discard("luci-rpc.getHostHints")  # type: ignore[union-attr]
    router = router_for(username="hass", password="hasspw")
    with pytest.raises(RouterPermissionError, match="luci-rpc getHostHints"):
        await router.snapshot()
    assert emulator.calls["session.login"] == 2
    assert emulator.calls["luci.getConntrackList"] == 0


async def test_file_acl_missing_for_the_count(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].files = set()
    router = router_for(username="hass", password="hasspw")
    with pytest.raises(RouterPermissionError, match=f"file read path {COUNT_PATH}"):
        await router.snapshot()
    assert emulator.calls["luci.getConntrackList"] == 0


async def test_count_that_is_not_a_number(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.files[COUNT_PATH] = "many\n"
    with pytest.raises(RouterResponseError, match="did not return a number"):
        await router_for().snapshot()
    emulator.files[COUNT_PATH] = 5  # type: ignore[assignment]
    with pytest.raises(RouterResponseError, match="did not return a number"):
        await router_for().snapshot()
    assert emulator.calls["luci.getConntrackList"] == 0


async def test_missing_count_file(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    del emulator.files[COUNT_PATH]
    with pytest.raises(RouterResponseError, match=r"ubus status 4 \(not found\)"):
        await router_for().snapshot()


async def test_table_that_is_not_a_conntrack_table(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = "x\n"
    emulator._entries = [{"layer3": "ipv9"}]
    with pytest.raises(RouterResponseError, match="luci getConntrackList: not one usable"):
        await router_for().snapshot()


async def test_table_reply_of_the_wrong_shape(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = THREE_DEVICES
    emulator._entries = {"not": "a list"}  # type: ignore[assignment]
    with pytest.raises(RouterResponseError, match="getConntrackList"):
        await router_for().snapshot()


# ---------------------------------------------------------------- transport failures


async def test_timeout(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    emulator.failure = Failure.DELAY
    emulator.failure_delay = 1.0
    started = time.monotonic()
    with pytest.raises(RouterConnectionError, match=r"did not answer within 0\.2 s"):
        await router_for(timeout=0.2).connect()
    assert time.monotonic() - started < 0.9


async def test_connection_refused(http: aiohttp.ClientSession) -> None:
    emulator = UbusEmulator()
    await emulator.start()
    await emulator.close()  # the port is closed now
    with pytest.raises(RouterConnectionError, match="cannot connect"):
        await make_router(http, emulator).connect()


class _NoSuchHostResolver(aiohttp.abc.AbstractResolver):
    """Answers every lookup as a DNS failure, without asking any name server."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[Any]:
        raise OSError(-2, f"Name or service not known: {host}")

    async def close(self) -> None:
        return None


async def test_unresolvable_host() -> None:
    connector = aiohttp.TCPConnector(resolver=_NoSuchHostResolver())
    async with aiohttp.ClientSession(connector=connector) as http:
        router = OpenWrtRouter(http, "router.invalid", 80, "root", "secret", timeout=2.0)
        with pytest.raises(RouterConnectionError, match="cannot connect"):
            await router.connect()


async def test_connection_dropped(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    emulator.failure = Failure.DROP
    with pytest.raises(RouterConnectionError, match=r"connection to .* failed"):
        await router_for().connect()


async def test_http_500(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    emulator.failure = Failure.HTTP_500
    with pytest.raises(RouterResponseError, match="HTTP 500 Internal Server Error"):
        await router_for().connect()


async def test_truncated_json(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    router = router_for()
    await router.connect()
    emulator.failure = Failure.TRUNCATED
    with pytest.raises(RouterResponseError, match="did not answer the batch with a JSON-RPC array"):
        await router.snapshot()


async def test_non_json_200(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    emulator.failure = Failure.NOT_JSON
    with pytest.raises(RouterResponseError, match=r"not answer with a JSON-RPC response.*<html>"):
        await router_for().connect()


async def test_wrong_shape_result(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    emulator.failure = Failure.WRONG_SHAPE
    with pytest.raises(RouterResponseError):
        await router_for().connect()


async def test_wrong_shape_only_for_the_table_call(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = THREE_DEVICES
    emulator.failure = Failure.WRONG_SHAPE
    emulator.failure_on = "luci.getConntrackList"
    router = router_for()
    await router.connect()
    with pytest.raises(RouterResponseError, match="JSON-RPC response"):
        await router.snapshot()


@pytest.mark.parametrize("failure", [Failure.HUGE, Failure.HUGE_CHUNKED])
async def test_body_over_the_cap(
    emulator: UbusEmulator, router_for: RouterFactory, failure: Failure
) -> None:
    emulator.failure = failure
    emulator.huge_size = 300_000
    with pytest.raises(RouterResponseError, match="is over 262144 bytes; not read"):
        await router_for(max_bytes=256 * 1024).connect()


async def test_body_over_the_default_16_mib(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.failure = Failure.HUGE_CHUNKED
    emulator.huge_size = 16 * 1024 * 1024
    with pytest.raises(RouterResponseError, match="over 16 MiB"):
        await router_for().connect()


# ---------------------------------------------------------------- TLS


async def test_tls_self_signed_is_refused_by_default(
    tls_emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    router = make_router(http, tls_emulator, ssl=True)
    assert router.ubus.url.startswith("https://")
    with pytest.raises(RouterTLSError, match=r"certificate .* failed verification"):
        await router.connect()


async def test_tls_without_verification_works(
    tls_emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    router = make_router(http, tls_emulator, ssl=True, verify_ssl=False)
    assert (await router.connect()).unique_id == "94:83:c4:00:00:01"
    await router.close()
    # the choice is per request: a verifying client on the same session still refuses
    with pytest.raises(RouterTLSError):
        await make_router(http, tls_emulator, ssl=True).connect()


async def test_plain_http_to_a_tls_port(
    tls_emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(RouterConnectionError):
        await make_router(http, tls_emulator).connect()


# ---------------------------------------------------------------- close


async def test_close_logs_out(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    router = router_for()
    await router.connect()
    assert len(emulator.sessions) == 1
    await router.close()
    assert emulator.sessions == {}
    assert emulator.calls["session.destroy"] == 1
    assert router.ubus.session_id is None
    await router.close()  # twice: nothing to do
    assert emulator.calls["session.destroy"] == 1


async def test_close_never_raises(emulator: UbusEmulator, router_for: RouterFactory) -> None:
    router = router_for(timeout=0.2)
    await router.connect()
    emulator.failure = Failure.DELAY
    await router.close()
    await asyncio.sleep(0)
    assert router.ubus.session_id is None


async def test_https_to_a_plain_http_port(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(RouterTLSError, match=r"TLS handshake .* failed"):
        await make_router(http, emulator, ssl=True).connect()


def test_ipv6_host_is_bracketed(http: aiohttp.ClientSession) -> None:
    router = OpenWrtRouter(http, "fd00::1", 443, "root", "secret", ssl=True)
    assert router.ubus.url == "https://[fd00::1]/ubus"  # default port left out
    assert OpenWrtRouter(http, "[fd00::1]", 8080, "r", "p").ubus.url == "http://[fd00::1]:8080/ubus"


ACL_FILE = Path(__file__).parents[2] / "router/openwrt/phonehome.json"
PLUGIN = Path(__file__).parents[2] / "router/openwrt/phonehome"


def _user_of_acl_file(password: str) -> User:
    """An rpcd login granted exactly what the README's ACL file grants."""
    return User.from_acl(password, ACL_FILE)


def _acl_rights(section: str) -> set[Right]:
    """The rights one section ("read" or "write") of the ACL file grants, as rpcd reads them."""
    rights: set[Right] = set()
    for scope, objects in json.loads(ACL_FILE.read_text())["phonehome"][section].items():
        if isinstance(objects, list):  # array notation: the section is the function
            rights |= {Right(scope, obj, section) for obj in objects}
        else:
            rights |= {
                Right(scope, obj, f) for obj, functions in objects.items() for f in functions
            }
    return rights


async def test_the_readme_acl_file_grants_what_a_poll_needs(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["acl"] = _user_of_acl_file("aclpw")
    emulator.proc_text = THREE_DEVICES
    router = router_for(username="acl", password="aclpw")
    await router.connect()
    snapshot = await router.snapshot()
    assert snapshot.table_read
    assert len(snapshot.flows) == 3
    assert snapshot.devices
    await router.close()
    assert emulator.calls["session.login"] == 1


def _plugin_methods() -> set[str]:
    """The methods the rpcd plugin announces to rpcd (its own `list` answer)."""
    listed = subprocess.run(
        ["sh", str(PLUGIN), "list"], capture_output=True, text=True, check=True, timeout=10
    )
    return set(json.loads(listed.stdout))


def test_the_acl_file_writes_only_what_quarantine_needs() -> None:
    acl = json.loads(ACL_FILE.read_text())["phonehome"]
    assert set(acl) == {"description", "read", "write"}
    assert _acl_rights("write") <= set(QUARANTINE_RIGHTS)
    assert "flush" in _plugin_methods()


def test_the_readme_shows_the_acl_file_as_it_is() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## OpenWrt access", 1)[1]
    shown = section.split("```json", 1)[1].split("```", 1)[0]
    assert json.loads(shown) == json.loads(ACL_FILE.read_text())


def test_the_acl_file_grants_exactly_the_required_rights() -> None:
    granted = _acl_rights("read") | _acl_rights("write")
    session = {Right("ubus", "session", "access"), Right("ubus", "session", "destroy")}
    plugin = {Right("ubus", "phonehome", method) for method in _plugin_methods()}
    assert granted == set(REQUIRED_RIGHTS) | set(QUARANTINE_RIGHTS) | session | plugin
    assert len(set(REQUIRED_RIGHTS)) == len(REQUIRED_RIGHTS)


# ---------------------------------------------------------------- check_access


async def test_check_access_passes_for_the_acl_file_user(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["acl"] = _user_of_acl_file("aclpw")
    router = router_for(username="acl", password="aclpw")
    await router.connect()
    await router.check_access()
    # connect asks for the quarantine rights, check_access for the poll's
    assert emulator.calls["session.access"] == len(QUARANTINE_RIGHTS) + len(REQUIRED_RIGHTS)
    assert emulator.calls["luci.getConntrackList"] == 0


async def test_check_access_passes_for_root(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    await router_for().check_access()  # logs in itself
    assert emulator.calls["session.login"] == 1


async def test_check_access_names_the_missing_conntrack_right(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus.discard("luci.getConntrackList")  # type: ignore[union-attr]
    router = router_for(username="hass", password="hasspw")
    with pytest.raises(RouterPermissionError, match="luci getConntrackList") as err:
        await router.check_access()
    assert err.value.acl == "luci getConntrackList"
    assert emulator.calls["luci.getConntrackList"] == 0


async def test_check_access_names_the_first_missing_right(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus -= {"luci-rpc.getHostHints", "luci.getConntrackList"}  # type: ignore[operator]
    emulator.users["hass"].files = set()
    with pytest.raises(RouterPermissionError) as err:
        await router_for(username="hass", password="hasspw").check_access()
    assert err.value.acl == f"file read {COUNT_PATH}"


async def test_check_access_without_the_session_access_right(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus.discard("session.access")  # type: ignore[union-attr]
    with pytest.raises(RouterPermissionError) as err:
        await router_for(username="hass", password="hasspw").check_access()
    assert err.value.acl == "session access"


async def test_check_access_reply_without_flag_is_a_response_error(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    original = emulator._access

    def no_flag(args: dict[str, Any], request_id: object) -> dict[str, Any]:
        answer = original(args, request_id)
        answer["result"] = [0, {}]
        return answer

    emulator._access = no_flag  # type: ignore[method-assign]
    with pytest.raises(RouterResponseError, match="no access flag"):
        await router_for().check_access()


def test_right_names_read_as_the_acl_file_does() -> None:
    assert Right("ubus", "luci", "getConntrackList").name == "luci getConntrackList"
    assert Right("file", COUNT_PATH, "read").name == f"file read {COUNT_PATH}"


async def test_denied_calls_carry_the_missing_acl(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus.discard("luci-rpc.getHostHints")  # type: ignore[union-attr]
    with pytest.raises(RouterPermissionError) as err:
        await router_for(username="hass", password="hasspw").snapshot()
    assert err.value.acl == "luci-rpc getHostHints"


async def test_refused_file_read_carries_the_path_as_acl(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].files = set()
    with pytest.raises(RouterPermissionError) as err:
        await router_for(username="hass", password="hasspw").snapshot()
    assert err.value.acl == f"file read {COUNT_PATH}"


async def test_the_table_is_parsed_off_the_event_loop(
    emulator: UbusEmulator, router_for: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []

    def recording(body: bytes) -> Any:
        threads.append(threading.current_thread())
        return parse_luci_json(body)

    monkeypatch.setattr(openwrt, "parse_luci_json", recording)
    emulator.proc_text = THREE_DEVICES
    assert len((await router_for().snapshot()).flows) == 3
    assert threads
    assert threads[0] is not threading.main_thread()
