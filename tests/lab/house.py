"""The network lab's house: a router, a LAN of IoT devices and Home Assistant, the internet.

    internet hosts (198.51.100.0/24, 203.0.113.0/24, 114.114.114.114): namespace `internet`
        | 203.0.113.2           wan0 203.0.113.1
    router (forwarding, fw4 firewall, conntrack accounting; ubus emulator / sshd on its LAN address)
        | br-lan 192.168.77.1/24
    hass 192.168.77.10, foscam .20, pppp .21, dvr .22, plug .23, xmeye .24, tv .30,
    laptop .31, nas .40: one namespace each, a veth port on the router's bridge

Every address lives in the lab's namespaces: default routes point at the router, whose
own default route points at the internet namespace, which has none. No NAT: the internet
hosts see and count each device's own address. The same building blocks serve scripts/lab
(tests/lab/cli.py) and the pytest fixtures (tests/lab/test_lab_end_to_end.py).
"""

import contextlib
import ipaddress
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from tests.emulators.ubus_firewall import default_firewall

from . import fw4
from .hosts import DNS, ECHO, FOSCAM, HTTPS, NTP, PPPP, RTP, Beacon, beacons_json
from .netlab import BRIDGE_NETFILTER_KEYS, LAN_BRIDGE, Lab, Namespace

REPO_ROOT: Final = Path(__file__).parents[2]
LAN: Final = ipaddress.ip_network("192.168.77.0/24")
ROUTER_LAN: Final = "192.168.77.1"
ROUTER_WAN: Final = "203.0.113.1"
INTERNET_GATEWAY: Final = "203.0.113.2"
WAN_PREFIX: Final = 24
INTERNET_ROUTES: Final = ("198.51.100.0/24", "114.114.114.114/32")
"""Routed by the router to the internet namespace (203.0.113.0/24 is its WAN link)."""
HOSTS: Final = {
    "foscam": ("198.51.100.10", "198.51.100.11", "203.0.113.10", "203.0.113.11"),
    "pppp": ("198.51.100.20", "198.51.100.21", "203.0.113.20", "203.0.113.21"),
    "p2p": ("198.51.100.30", "198.51.100.31", "198.51.100.32"),
    "https": ("203.0.113.40", "198.51.100.40"),
    "ntp": ("203.0.113.41",),
    "busy": ("203.0.113.50",),
    "dns": ("114.114.114.114",),
}
"""The internet hosts, by what they serve in the scenarios."""
UDP_TIMEOUT: Final = "120"
"""The router's conntrack timeout for UDP (Linux: 30 s): lab flows outlive a test's polls."""
SCENARIOS: Final = ("foscam", "pppp", "shared_p2p", "dns_bypass", "well_behaved", "all")
BACKGROUND_CONNECTIONS: Final = 5000


@dataclass(frozen=True)
class Device:
    """A LAN host: its namespace role, DHCP hostname, address and MAC."""

    role: str
    hostname: str
    ip: str
    mac: str


DEVICES: Final = tuple(
    Device(role, hostname, str(LAN[index]), f"02:00:5e:77:00:{index:02x}")
    for role, hostname, index in (
        ("hass", "homeassistant", 10),
        ("foscam", "garage-camera", 20),
        ("pppp", "baby-monitor", 21),
        ("dvr", "dvr", 22),
        ("plug", "smart-plug", 23),
        ("xmeye", "xmeye-dvr", 24),
        ("tv", "living-room-tv", 30),
        ("laptop", "laptop", 31),
        ("nas", "nas", 40),
    )
)
WELL_BEHAVED: Final = ("tv", "laptop")


@dataclass(frozen=True)
class House:
    """The built lab: its namespaces by role ("router", "internet" and each device's)."""

    namespaces: dict[str, Namespace]
    devices: dict[str, Device]

    @property
    def router(self) -> Namespace:
        return self.namespaces["router"]

    @property
    def internet(self) -> Namespace:
        return self.namespaces["internet"]

    def device_ns(self, role: str) -> Namespace:
        return self.namespaces[role]


@contextlib.contextmanager
def entered(namespace: Namespace) -> Iterator[None]:
    """Move this thread into a lab namespace, and back; sockets made meanwhile stay there.

    Home Assistant runs on the test's thread: every socket its event loop opens inside
    the block (HTTP to ubus, SSH) belongs to the namespace, whatever thread uses it later.
    """
    with (
        open(f"/run/netns/{namespace.name}", "rb") as target,
        open("/proc/thread-self/ns/net", "rb") as original,
    ):
        os.setns(target.fileno(), os.CLONE_NEWNET)
        try:
            yield
        finally:
            os.setns(original.fileno(), os.CLONE_NEWNET)


def internet_addresses() -> list[str]:
    """Every internet host's address, once."""
    return list(dict.fromkeys(address for group in HOSTS.values() for address in group))


def router_firewall() -> str:
    """OpenWrt's default firewall config (the ubus emulator's), rendered as fw4 would."""
    return fw4.render(fw4.parse(default_firewall()))


def build_house(lab: Lab) -> House:
    """Build the namespaces, links, addresses, routes and the router's fw4 firewall."""
    router = lab.add_namespace("router")
    internet = lab.add_namespace("internet")
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        ("net.netfilter.nf_conntrack_acct", "1"),
        ("net.netfilter.nf_conntrack_udp_timeout", UDP_TIMEOUT),
    ):
        router.set_sysctl(key, value)
    router.ip("link", "add", LAN_BRIDGE, "type", "bridge")
    for key in BRIDGE_NETFILTER_KEYS:
        if router.can_read("/proc/sys/" + key.replace(".", "/")):
            router.set_sysctl(key, "0")
    router.set_link_up(LAN_BRIDGE)
    router.add_address(LAN_BRIDGE, f"{ROUTER_LAN}/{LAN.prefixlen}")
    namespaces = {"router": router, "internet": internet}
    for device in DEVICES:
        namespace = lab.add_namespace(device.role)
        port = f"lan-{device.role}"
        lab.add_veth(router, port, namespace, "eth0")
        router.ip("link", "set", port, "master", LAN_BRIDGE)
        namespace.ip("link", "set", "eth0", "address", device.mac)
        namespace.add_address("eth0", f"{device.ip}/{LAN.prefixlen}")
        namespace.ip("route", "add", "default", "via", ROUTER_LAN)
        namespaces[device.role] = namespace
    lab.add_veth(router, "wan0", internet, "eth0")
    router.add_address("wan0", f"{ROUTER_WAN}/{WAN_PREFIX}")
    internet.add_address("eth0", f"{INTERNET_GATEWAY}/{WAN_PREFIX}")
    for address in internet_addresses():
        on_link = ipaddress.ip_address(address) in ipaddress.ip_network(f"{ROUTER_WAN}/24", False)
        internet.add_address("eth0", f"{address}/{WAN_PREFIX if on_link else 32}")
    for route in INTERNET_ROUTES:
        router.add_route(route, INTERNET_GATEWAY)
    internet.add_route(str(LAN), ROUTER_WAN)
    router.load_nftables(router_firewall())
    return House(namespaces, {device.role: device for device in DEVICES})


# ---------------------------------------------------------------- router data


def host_hints() -> dict[str, object]:
    """luci-rpc getHostHints and getDHCPLeases for the house's devices."""
    return {
        "hints": {
            device.mac.upper(): {"ipaddrs": [device.ip], "ip6addrs": [], "name": device.hostname}
            for device in DEVICES
        },
        "leases": {
            "dhcp_leases": [
                {
                    "expires": 43200,
                    "hostname": device.hostname,
                    "macaddr": device.mac.upper(),
                    "ipaddr": device.ip,
                }
                for device in DEVICES
            ],
            "dhcp6_leases": [],
        },
    }


def dnsmasq_leases(expiry: int = 2_000_000_000) -> str:
    """The house's DHCP leases as dnsmasq writes them (/tmp/dhcp.leases)."""
    return "".join(
        f"{expiry} {device.mac} {device.ip} {device.hostname} 01:{device.mac}\n"
        for device in DEVICES
    )


def write_router_data(directory: Path) -> tuple[Path, Path]:
    """Write the host hints (for the ubus emulator) and the leases file (for SSH)."""
    hints, leases = directory / "hosts.json", directory / "dhcp.leases"
    hints.write_text(json.dumps(host_hints()))
    leases.write_text(dnsmasq_leases())
    return hints, leases


# ---------------------------------------------------------------- commands


def python_argv(module: str, *args: str) -> list[str]:
    """`python -m tests.lab.MODULE ARGS` (run with cwd REPO_ROOT)."""
    return [sys.executable, "-m", f"tests.lab.{module}", *args]


def serve_argv(addresses: Sequence[str], lifetime: float) -> list[str]:
    return python_argv("hosts", "serve", f"{lifetime:g}", *addresses)


def play_argv(beacons: list[Beacon], lifetime: float) -> list[str]:
    return python_argv("hosts", "play", f"{lifetime:g}", beacons_json(beacons))


def ubus_argv(
    hints: Path, *, plugin: bool, lifetime: float, state: Path | None = None
) -> list[str]:
    """The OpenWrt ubus emulator on the router's LAN address, over its real conntrack table;
    with `state`, its committed UCI configs persist there across restarts."""
    return python_argv(
        "ubus_router",
        "--listen",
        f"{ROUTER_LAN}:80",
        "--hosts",
        str(hints),
        "--lifetime",
        f"{lifetime:g}",
        *(["--plugin"] if plugin else []),
        *(["--state", str(state)] if state is not None else []),
    )


def unifi_argv(directory: Path, lifetime: float) -> list[str]:
    """The UniFi controller emulator (HTTPS, self-signed) on the router's LAN address,
    enforcing its quarantine configs in the router's nftables."""
    return python_argv(
        "unifi_router",
        "--listen",
        f"{ROUTER_LAN}:443",
        "--directory",
        str(directory),
        "--lifetime",
        f"{lifetime:g}",
    )


# ---------------------------------------------------------------- scenarios


def _rounds(every: float, seconds: float) -> int:
    return max(1, int(seconds / every))


def scenario(name: str, *, seconds: float = 60.0, pace: float = 1.0) -> dict[str, list[Beacon]]:
    """Each device's beacons for a scenario, played for about `seconds`.

    `pace` scales every interval (tests play the same story faster).
    """
    if name == "all":
        merged: dict[str, list[Beacon]] = {}
        for part in SCENARIOS[:-1]:
            for role, beacons in scenario(part, seconds=seconds, pace=pace).items():
                merged.setdefault(role, []).extend(beacons)
        return merged
    ip = {device.role: device.ip for device in DEVICES}

    def beacon(role: str, kind: str, dsts: Sequence[str], port: int, every: float) -> Beacon:
        interval = every * pace
        return Beacon(kind, ip[role], tuple(dsts), port, interval, _rounds(interval, seconds))

    match name:
        case "foscam":  # retries from a new port every few seconds; streams to Home Assistant
            return {
                "foscam": [
                    beacon("foscam", "udp", HOSTS["foscam"], FOSCAM, 3.0),
                    replace(beacon("foscam", "udp", [ip["hass"]], RTP, 0.2), new_port=False),
                ]
            }
        case "pppp":  # one socket, logs in to four servers about every 9 s
            return {
                "pppp": [replace(beacon("pppp", "udp", HOSTS["pppp"], PPPP, 9.0), new_port=False)]
            }
        case "shared_p2p":  # the DVR fans out; the plug reaches one of its servers
            return {
                "dvr": [beacon("dvr", "udp", HOSTS["p2p"], PPPP, 5.0)],
                "plug": [beacon("plug", "udp", HOSTS["p2p"][:1], PPPP, 5.0)],
            }
        case "dns_bypass":
            return {"xmeye": [beacon("xmeye", "dns", HOSTS["dns"], DNS, 10.0)]}
        case "well_behaved":
            return {
                "tv": [
                    beacon("tv", "tcp", HOSTS["https"], HTTPS, 5.0),
                    beacon("tv", "ntp", HOSTS["ntp"], NTP, 15.0),
                ],
                "laptop": [
                    beacon("laptop", "tcp", HOSTS["https"][::-1], HTTPS, 4.0),
                    beacon("laptop", "ntp", HOSTS["ntp"], NTP, 20.0),
                ],
            }
    raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")


def background(connections: int = BACKGROUND_CONNECTIONS) -> dict[str, list[Beacon]]:
    """The NAS opens `connections` UDP flows to one host at once (answered, by its echo)."""
    nas = next(device.ip for device in DEVICES if device.role == "nas")
    return {"nas": [Beacon("burst", nas, HOSTS["busy"], ECHO, count=connections)]}
