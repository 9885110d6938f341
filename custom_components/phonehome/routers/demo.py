"""A simulated home network: the router kind "demo", for trying the integration without a router.

Nine devices behave as their real counterparts do on the wire (DESIGN.md §3):
cameras and DVRs that phone P2P clouds, a plug sharing a DVR's P2P server, a DVR
with hard-coded DNS, a TV fetching from 40 CDN hosts, a laptop and a phone. Every
poll prints the kernel's /proc/net/nf_conntrack lines for the moment asked and
parses them with the real parser, so the demo exercises the same code as a router.

Time drives everything and a seed fixes every phase and source port: the same
seed and clock give the same table. Quarantine works as on a router: the device's
internet entries are gone at once, its LAN traffic stays, and every packet it
keeps sending counts as a blocked attempt. Internet hosts are in the documentation
ranges, except the two public resolvers a real Xiongmai DVR hard-codes.
"""

import ipaddress
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ..core.addresses import INTERNET_SCOPES, classify_address
from ..core.conntrack import parse_proc
from .base import (
    Capabilities,
    LanDevice,
    QuarantineRecord,
    QuarantineState,
    RouterInfo,
    Snapshot,
    quarantine_name,
)

ROUTER_MAC: Final = "02:50:00:00:00:01"
"""A locally administered MAC: no real device has it."""
ROUTER_IP: Final = "192.168.1.1"
UDP_UNREPLIED_TIMEOUT: Final = 30
UDP_STREAM_TIMEOUT: Final = 180
TCP_ESTABLISHED_TIMEOUT: Final = 7440
TCP_RETRY_PERIOD: Final = 10.0
"""A cut TCP client tries to connect again about this often (a blocked SYN each time)."""
HEADER: Final = {4: "ipv4     2", 6: "ipv6     10"}
PROTOCOLS: Final = {"udp": 17, "tcp": 6}


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One thing a device keeps doing: packets to hosts on a port, every ``period`` seconds."""

    transport: str
    """"udp" or "tcp" (a long-lived connection per host)."""
    hosts: tuple[str, ...]
    port: int
    period: tuple[float, float]
    """Range the seeded period is drawn from; for TCP, how often data flows."""
    replied: bool = True
    fresh_port: bool = False
    """A new source port each round (a new conntrack entry), as retrying P2P clients do."""
    size: int = 120
    """Bytes of one packet the device sends; answers are twice as big."""


@dataclass(frozen=True, slots=True)
class DemoDevice:
    """A LAN device and what it does."""

    device: LanDevice
    behaviours: tuple[Behaviour, ...]


def _hosts(network: str, first: int, count: int) -> tuple[str, ...]:
    base = ipaddress.ip_address(network)
    return tuple(str(base + first + index) for index in range(count))


def _device(index: int, name: str, hostname: str, vendor: str, *, ipv6: bool = False) -> LanDevice:
    return LanDevice(
        mac=f"02:de:00:00:00:{index:02x}",
        ipv4=(f"192.168.1.{100 + index}",),
        ipv6=(f"fd00::{100 + index:x}",) if ipv6 else (),
        hostname=hostname,
        name=name,
        vendor=vendor,
        wired=index in {3, 4, 5},
    )


SHARED_P2P_SERVER: Final = "203.0.113.40"
HOME: Final = (
    DemoDevice(
        _device(1, "Front door camera", "IPCAM-FI9900P", "Foscam"),
        (Behaviour("udp", _hosts("203.0.113.0", 10, 4), 10001, (3.5, 4.5), False, True, 64),),
    ),
    DemoDevice(
        _device(2, "Baby monitor", "HDcam-PPPP", "white-label (CS2 PPPP)"),
        (Behaviour("udp", _hosts("203.0.113.0", 20, 4), 32100, (8.0, 10.0), size=48),),
    ),
    DemoDevice(
        _device(3, "Backyard DVR", "DVR-4CH", "Dahua OEM"),
        (
            Behaviour("udp", (SHARED_P2P_SERVER,), 8800, (20.0, 25.0), size=96),
            Behaviour("tcp", _hosts("198.51.100.0", 30, 1), 443, (30.0, 60.0)),
        ),
    ),
    DemoDevice(
        _device(4, "Smart plug", "wlan0-plug", "Tuya"),
        (
            Behaviour("tcp", _hosts("198.51.100.0", 80, 1), 8883, (30.0, 45.0), size=80),
            Behaviour("udp", (SHARED_P2P_SERVER,), 8800, (25.0, 35.0), size=64),
        ),
    ),
    DemoDevice(
        _device(5, "Garage NVR", "NVR-XM", "Xiongmai"),
        (
            Behaviour("tcp", _hosts("198.51.100.0", 90, 1), 8086, (15.0, 20.0)),
            Behaviour("udp", ("114.114.114.114", "8.8.8.8"), 53, (25.0, 35.0), size=70),
        ),
    ),
    DemoDevice(
        _device(6, "Living room TV", "LGwebOSTV", "LG Electronics"),
        (Behaviour("tcp", _hosts("198.51.100.0", 100, 40), 443, (2.0, 6.0), size=1400),),
    ),
    DemoDevice(
        _device(7, "Laptop", "laptop", "Framework", ipv6=True),
        (
            Behaviour("tcp", (*_hosts("198.51.100.0", 200, 2), "2001:db8::443"), 443, (5.0, 9.0)),
            Behaviour("udp", _hosts("203.0.113.0", 123, 4), 123, (64.0, 64.0), size=76),
            Behaviour("udp", (ROUTER_IP,), 53, (10.0, 20.0), size=70),
        ),
    ),
    DemoDevice(
        _device(8, "Phone", "Pixel-8", "Google", ipv6=True),
        (
            Behaviour("udp", ("2001:db8::a", "2001:db8::b", "2001:db8::c"), 443, (1.0, 2.0)),
            Behaviour("tcp", _hosts("198.51.100.0", 220, 2), 443, (10.0, 20.0)),
        ),
    ),
)
"""The simulated home; all cloud and CDN hosts are documentation addresses."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """A behaviour with its seeded phase, period and source ports, for one host."""

    behaviour: Behaviour
    src: str
    dst: str
    phase: float
    period: float
    sport: int
    internet: bool
    """The destination is on the internet (a quarantine blocks it), not the LAN."""


class DemoRouter:
    """The simulated router (implements ``Router``); no I/O, never fails."""

    kind = "demo"
    conntrack_cap: int = 65536

    def __init__(
        self, seed: int = 0, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.seed = seed
        self._clock = clock
        self._start = clock()
        self._plans = {demo.device.mac: list(self._plan(demo)) for demo in HOME}
        self._allowed_since: dict[str, datetime] = {}
        """When each device's internet was last given back (release)."""
        self._quarantined: dict[str, datetime] = {}
        """Quarantined devices, with the moment their block began."""

    def _plan(self, demo: DemoDevice) -> Iterator[_Plan]:
        rng = random.Random(f"{self.seed}:{demo.device.mac}")
        for behaviour in demo.behaviours:
            period = rng.uniform(*behaviour.period)
            for dst in behaviour.hosts:
                src = demo.device.ipv6[0] if ":" in dst else demo.device.ipv4[0]
                phase, sport = rng.uniform(0, period), rng.randint(32768, 60000)
                internet = classify_address(dst) in INTERNET_SCOPES
                yield _Plan(behaviour, src, dst, phase, period, sport, internet)

    async def connect(self) -> RouterInfo:
        """The demo's identity; the simulation starts at construction."""
        return RouterInfo(
            unique_id=ROUTER_MAC,
            name="Demo network",
            model="Simulated home router",
            firmware="Phone Home Guard demo",
        )

    async def check_access(self) -> None:
        """Every right is there."""

    async def snapshot(self) -> Snapshot:
        """The table as the kernel would print it now, parsed; devices; quarantines."""
        now = self._clock()
        lines = [
            line
            for mac, plans in self._plans.items()
            for plan in plans
            if not (plan.internet and mac in self._quarantined)
            for line in self._lines(plan, self._allowed_since.get(mac, self._start), now)
        ]
        parsed = parse_proc("".join(lines))
        return Snapshot(
            taken_at=now,
            flows=parsed.flows,
            devices={demo.device.mac: demo.device for demo in HOME},
            capabilities=Capabilities(
                byte_counters=True, quarantine=True, cut_live_flows=True, table_source="demo"
            ),
            conntrack_count=len(lines),
            parse_stats=parsed.stats,
            quarantined={
                mac: QuarantineState(True, self._blocked(mac, since, now))
                for mac, since in self._quarantined.items()
            },
        )

    async def quarantine(self, device: LanDevice) -> QuarantineRecord:
        """Block the device's internet from now on (idempotent); its entries go at once."""
        self._quarantined.setdefault(device.mac, self._clock())
        return QuarantineRecord(
            device.mac, quarantine_name(device.mac), device.ipv4 + device.ipv6, flows_cut=True
        )

    async def release(self, record: QuarantineRecord) -> None:
        """Give the internet back; new entries start from now."""
        if self._quarantined.pop(record.mac, None) is not None:
            self._allowed_since[record.mac] = self._clock()

    async def close(self) -> None:
        """Nothing to release."""

    def _blocked(self, mac: str, since: datetime, now: datetime) -> int:
        """Packets the device sent to the internet since its block began."""
        total = 0
        for plan in self._plans.get(mac, ()):
            if not plan.internet:
                continue
            period = TCP_RETRY_PERIOD if plan.behaviour.transport == "tcp" else plan.period
            total += _sends(plan.phase, period, (now - since).total_seconds())
        return total

    def _lines(self, plan: _Plan, since: datetime, now: datetime) -> list[str]:
        """The conntrack lines of one plan at ``now``, counting from ``since``."""
        elapsed = (now - since).total_seconds()
        sends = _sends(plan.phase, plan.period, elapsed)
        if sends == 0:
            return []
        behaviour = plan.behaviour
        last = plan.phase + (sends - 1) * plan.period
        if behaviour.transport == "tcp":
            return [_entry(plan, plan.sport, sends * 10, TCP_ESTABLISHED_TIMEOUT)]
        if not behaviour.fresh_port:
            timeout = UDP_STREAM_TIMEOUT if behaviour.replied else UDP_UNREPLIED_TIMEOUT
            return [_entry(plan, plan.sport, sends, timeout - int(elapsed - last))]
        rounds = range(sends - 1, -1, -1)
        lines = []
        for round_ in rounds:
            age = elapsed - (plan.phase + round_ * plan.period)
            if age >= UDP_UNREPLIED_TIMEOUT:
                break
            sport = 32768 + (plan.sport + round_ * 7919) % 28000
            lines.append(_entry(plan, sport, 1, UDP_UNREPLIED_TIMEOUT - int(age)))
        return lines


def _sends(phase: float, period: float, elapsed: float) -> int:
    """How many rounds started within ``elapsed`` seconds."""
    return 0 if elapsed < phase else int((elapsed - phase) // period) + 1


def _address(text: str) -> str:
    """As /proc prints it: IPv6 in full."""
    return ipaddress.ip_address(text).exploded


def _entry(plan: _Plan, sport: int, packets: int, timeout: int) -> str:
    """One /proc/net/nf_conntrack line."""
    behaviour = plan.behaviour
    family = 6 if ":" in plan.dst else 4
    src, dst, dport = _address(plan.src), _address(plan.dst), behaviour.port
    out = f"packets={packets} bytes={packets * behaviour.size}"
    replied = behaviour.replied or behaviour.transport == "tcp"
    back = f"packets={packets if replied else 0} bytes={packets * behaviour.size * 2 if replied else 0}"
    state = " ESTABLISHED" if behaviour.transport == "tcp" else ""
    flags = " [ASSURED]" if replied else ""
    unreplied = "" if replied else " [UNREPLIED]"
    protocol = PROTOCOLS[behaviour.transport]
    return (
        f"{HEADER[family]} {behaviour.transport:<8} {protocol} {max(timeout, 1)}{state} "
        f"src={src} dst={dst} sport={sport} dport={dport} {out}{unreplied} "
        f"src={dst} dst={src} sport={dport} dport={sport} {back}{flags} mark=0 zone=0 use=2\n"
    )
