"""A realistic, deterministic conntrack table of a busy home router, in three formats.

``table()`` draws one seeded table; it is rendered as the kernel prints it in
``/proc/net/nf_conntrack`` (``proc_text``), as ``conntrack -L`` prints it
(``conntrack_text``) and as LuCI's ``getConntrackList`` returns it over ubus
JSON-RPC (``luci_payload``), so the three formats describe the same connections.

The mix: 200 LAN devices on 192.168.1.10+ (about half also with a ULA and a
global IPv6 address), ~6,000 public IPv4 and ~1,500 IPv6 internet hosts with a
skewed popularity (a few CDN hosts take a large share, then a long tail),
~80 % IPv4, ~60 % TCP / 33 % UDP / 5 % ICMP / 2 % GRE, IPv4 masqueraded to one
WAN address, P2P cameras calling out unanswered, DNS to the router, a few %
LAN-to-LAN and multicast, ~3 % offloaded, accounting on.
"""

import random
import socket
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from ipaddress import IPv6Address
from itertools import accumulate
from typing import Final

import orjson

from custom_components.phonehome.core.addresses import AddressScope, address_info
from tests.emulators.luci_conntrack import conntrack_list

ENTRIES: Final = 65536
DEVICES: Final = 200
SEED: Final = 1

ROUTER_LAN4: Final = "192.168.1.1"
ROUTER_ULA: Final = "fd12:3456:789a:1::1"
ROUTER_WAN4: Final = "87.123.45.67"
"""The router's public address: IPv4 flows to the internet are masqueraded to it."""
LAN4_FIRST: Final = int.from_bytes(socket.inet_aton("192.168.1.10"))
ULA_PREFIX: Final = 0xFD12_3456_789A_0001 << 64
GUA_PREFIX: Final = 0x2A02_8071_1234_5600 << 64
REMOTES_V4: Final = 6000
REMOTES_V6: Final = 1500
P2P_SERVERS: Final = 150
RESOLVERS: Final = {
    4: ("8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9"),
    6: ("2001:4860:4860::8888", "2606:4700:4700::1111"),
}
SSDP: Final = "239.255.255.250"
MDNS: Final = "224.0.0.251"
V6_SHARE: Final = 0.22
"""Share of internet flows over IPv6 (of devices that have it): ~20 % of the table."""
OFFLOAD: Final = "[OFFLOAD]"
ASSURED: Final = "[ASSURED]"
TCP_ESTABLISHED: Final = 432000
"""nf_conntrack_tcp_timeout_established (kernel default; OpenWrt sets 7440)."""
OFFLOAD_TIMEOUT: Final = (43200, 86400)
"""The flowtable keeps an offloaded entry's timeout between half a day and a day."""

_L3: Final = {4: "ipv4     2 ", 6: "ipv6     10 "}
_L4: Final = {
    name: f"{name:<8} {number} "
    for name, number in (("tcp", 6), ("udp", 17), ("icmp", 1), ("icmpv6", 58), ("gre", 47))
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One conntrack entry, in the terms both text formats print (addresses compressed)."""

    family: int
    protocol: str
    """Kernel name: tcp, udp, icmp, icmpv6 or gre."""
    timeout: int
    """Seconds left; /proc prints none for an offloaded entry, conntrack -L does."""
    state: str | None
    src: str
    dst: str
    reply_src: str
    reply_dst: str
    orig_l4: str
    """``sport=N dport=N``, ``type=8 code=0 id=N`` or ``srckey=0x0 dstkey=0x0``."""
    reply_l4: str
    sport: int | None
    dport: int | None
    orig_packets: int
    orig_bytes: int
    reply_packets: int
    reply_bytes: int
    replied: bool
    flag: str | None
    """``[ASSURED]``, ``[OFFLOAD]`` or None."""

    @property
    def offloaded(self) -> bool:
        """True for an entry handled by the flowtable."""
        return self.flag == OFFLOAD


@dataclass(frozen=True, slots=True)
class Device:
    """A LAN device: its addresses, ephemeral port range and whether it is a P2P camera."""

    ipv4: str
    gua: str | None
    ula: str | None
    ephemeral: tuple[int, int]
    camera_ports: tuple[int, ...]
    """The fixed local ports of a P2P camera; empty for other devices."""

    def port(self, rng: random.Random) -> int:
        """A fresh ephemeral source port."""
        return rng.randint(*self.ephemeral)


class Weighted[T]:
    """Items drawn with fixed weights (``random.choices`` without its per-call setup)."""

    def __init__(self, items: Sequence[T], weights: Iterable[float]) -> None:
        self.items = tuple(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]
        self.last = len(self.items) - 1

    def pick(self, rng: random.Random) -> T:
        """One item."""
        return self.items[bisect(self.cumulative, rng.random() * self.total, 0, self.last)]


def _popularity(items: Sequence[str]) -> Weighted[str]:
    """Zipf-like popularity: the first hosts (CDNs) are very popular, then a long tail."""
    return Weighted(items, (1 / (rank + 1) ** 0.9 for rank in range(len(items))))


_TCP_PORTS: Final = Weighted(
    (443, 80, 8883, 5228, 5223, 993, 1935, 0), (72, 8, 4, 3, 3, 2, 1, 7)
)  # 0: a random high port
_UDP_PORTS: Final = Weighted(
    (443, 53, 123, 3478, 19302, 4500, 10001, 32100, 8800, 0), (35, 14, 8, 8, 3, 4, 3, 2, 2, 21)
)
_P2P_PORTS: Final = Weighted((32100, 10001, 8800), (5, 3, 2))
_TCP_STATES: Final = Weighted(
    ("ESTABLISHED", "TIME_WAIT", "SYN_SENT", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "CLOSE"),
    (78, 8, 4, 4, 3, 1, 2),
)
_TCP_TIMEOUTS: Final = {
    "TIME_WAIT": 120,
    "SYN_SENT": 120,
    "FIN_WAIT": 120,
    "CLOSE_WAIT": 60,
    "LAST_ACK": 30,
    "CLOSE": 10,
}
_LAN_TCP_PORTS: Final = (8009, 8008, 445, 80, 554, 8080, 1400, 548, 9000)
_LAN_UDP_PORTS: Final = (6667, 9999, 56700, 5683, 1982)


def _ntop(family: int, value: int) -> str:
    """Address text of an integer address."""
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16))


def _internet_hosts(rng: random.Random, family: int, count: int) -> list[str]:
    """Distinct public hosts: random IPv4 outside special blocks, IPv6 in 2a00::/12."""
    hosts: list[str] = []
    seen = {ROUTER_WAN4}
    prefixes = [(0x2A0 << 116) | (rng.getrandbits(36) << 80) for _ in range(count // 5)]
    while len(hosts) < count:
        if family == 4:
            text = _ntop(4, rng.getrandbits(32))
        else:
            host = rng.randint(1, 0xFFFF) if rng.random() < 0.5 else rng.getrandbits(64)
            text = _ntop(6, rng.choice(prefixes) | rng.getrandbits(16) << 64 | host)
        info = address_info(text)
        if info is not None and info.scope == AddressScope.WAN and text not in seen:
            seen.add(text)
            hosts.append(text)
    return hosts


def _devices(rng: random.Random, count: int) -> list[Device]:
    """LAN devices from 192.168.1.10 up; about half with IPv6, 1 in 25 a P2P camera."""
    cameras = set(rng.sample(range(count), max(1, count // 25)))
    devices = []
    for index in range(count):
        has_v6 = rng.random() < 0.5
        devices.append(
            Device(
                ipv4=_ntop(4, LAN4_FIRST + index),
                gua=_ntop(6, GUA_PREFIX | rng.getrandbits(64)) if has_v6 else None,
                ula=_ntop(6, ULA_PREFIX | rng.getrandbits(64)) if has_v6 else None,
                ephemeral=rng.choice(((32768, 60999), (49152, 65535))),
                camera_ports=(
                    tuple(rng.randint(10000, 60000) for _ in range(4)) if index in cameras else ()
                ),
            )
        )
    return devices


class _Generator:
    """Draws entries one by one; every original tuple is unique, as in the kernel."""

    def __init__(self, rng: random.Random, devices: int) -> None:
        self.rng = rng
        self.devices = _devices(rng, devices)
        activity = [rng.lognormvariate(0, 1) for _ in self.devices]
        self.any_device = Weighted(self.devices, activity)
        v6 = [(device, weight) for device, weight in zip(self.devices, activity, strict=True)]
        v6 = [(device, weight) for device, weight in v6 if device.gua]
        self.v6_device = (
            Weighted([device for device, _ in v6], [weight for _, weight in v6]) if v6 else None
        )
        self.cameras = [device for device in self.devices if device.camera_ports]
        hosts4 = _internet_hosts(rng, 4, REMOTES_V4)
        self.remotes = {4: _popularity(hosts4), 6: _popularity(_internet_hosts(rng, 6, REMOTES_V6))}
        self.p2p_servers = rng.sample(hosts4[REMOTES_V4 // 6 :], P2P_SERVERS)
        self.seen: set[tuple[object, ...]] = set()

    def entries(self, count: int) -> Iterator[Entry]:
        """``count`` entries in hash-table (random) order."""
        kinds: Weighted[Callable[[], Entry | None]] = Weighted(
            (
                self.internet_tcp,
                self.internet_udp,
                self.p2p_camera,
                self.icmp,
                self.gre,
                self.router_dns,
                self.lan,
                self.multicast,
                self.router_own,
            ),
            (58, 22, 6, 5, 2, 3, 2, 1, 1),
        )
        made = attempts = 0
        while made < count:
            attempts += 1
            if attempts > 20 * count + 1000:
                raise RuntimeError(f"only {made} distinct entries for {len(self.devices)} devices")
            entry = kinds.pick(self.rng)()
            if entry is not None:
                made += 1
                yield entry

    def client(self, v6_share: float) -> tuple[Device, str]:
        """A device and the source address of an internet flow."""
        if self.v6_device is not None and self.rng.random() < v6_share:
            device = self.v6_device.pick(self.rng)
            return device, device.gua or device.ipv4
        device = self.any_device.pick(self.rng)
        return device, device.ipv4

    def claim(self, key: tuple[object, ...]) -> bool:
        """True the first time a tuple is seen: the kernel holds one entry per tuple."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def ported(  # noqa: PLR0913 - the parts of one TCP or UDP entry
        self,
        protocol: str,
        src: str,
        dst: str,
        sport: int,
        dport: int,
        *,
        state: str | None,
        timeout: int,
        flag: str | None,
        counters: tuple[int, int, int, int] | None,
        nat: bool,
    ) -> Entry | None:
        """A TCP or UDP entry, ``counters`` None when unreplied; None when the tuple exists."""
        if not self.claim((protocol, src, dst, sport, dport)):
            return None
        nat_port = sport if not nat or self.rng.random() < 0.97 else self.rng.randint(1024, 65535)
        if counters is None:
            orig_packets = self.rng.randint(1, 6)
            counters = (orig_packets, orig_packets * self.rng.randint(48, 400), 0, 0)
        return Entry(
            family=6 if ":" in src else 4,
            protocol=protocol,
            timeout=timeout,
            state=state,
            src=src,
            dst=dst,
            reply_src=dst,
            reply_dst=ROUTER_WAN4 if nat else src,
            orig_l4=f"sport={sport} dport={dport}",
            reply_l4=f"sport={dport} dport={nat_port}",
            sport=sport,
            dport=dport,
            orig_packets=counters[0],
            orig_bytes=counters[1],
            reply_packets=counters[2],
            reply_bytes=counters[3],
            replied=counters[2] > 0,
            flag=flag,
        )

    def traffic(self, family: int, scale: float, payload: int) -> tuple[int, int, int, int]:
        """Packets and bytes both ways: a log-normal packet count, headers plus payload."""
        rng = self.rng
        header = 52 if family == 4 else 72
        orig_packets = 1 + int(rng.lognormvariate(scale, 1.7))
        reply_packets = max(1, int(orig_packets * rng.uniform(0.5, 1.5)))
        return (
            orig_packets,
            orig_packets * rng.randint(header, header + payload // 4),
            reply_packets,
            reply_packets * rng.randint(header, header + payload),
        )

    def tcp_state(
        self, family: int, *, lan: bool
    ) -> tuple[str, int, str | None, tuple[int, int, int, int] | None]:
        """State, timeout, flag and counters (None: unreplied) of a TCP entry."""
        rng = self.rng
        state = "ESTABLISHED" if lan and rng.random() < 0.8 else _TCP_STATES.pick(rng)
        if state == "SYN_SENT":
            return state, rng.randint(1, 120), None, None
        counters = self.traffic(family, 2.3, 1400)
        if state != "ESTABLISHED":
            return state, rng.randint(1, _TCP_TIMEOUTS[state]), ASSURED, counters
        if not lan and rng.random() < 0.06:
            return state, rng.randint(*OFFLOAD_TIMEOUT), OFFLOAD, counters
        active = rng.random() < 0.5
        timeout = (
            TCP_ESTABLISHED - rng.randint(0, 60) if active else rng.randint(1, TCP_ESTABLISHED)
        )
        return state, timeout, ASSURED, counters

    def internet_tcp(self) -> Entry | None:
        """A device's TCP connection to an internet host."""
        device, src = self.client(V6_SHARE)
        family = 6 if ":" in src else 4
        dport = _TCP_PORTS.pick(self.rng) or self.rng.randint(1024, 65535)
        state, timeout, flag, counters = self.tcp_state(family, lan=False)
        return self.ported(
            "tcp",
            src,
            self.remotes[family].pick(self.rng),
            device.port(self.rng),
            dport,
            state=state,
            timeout=timeout,
            flag=flag,
            counters=counters,
            nat=family == 4,
        )

    def internet_udp(self) -> Entry | None:
        """QUIC, DNS, NTP, STUN, IPsec, games and VoIP to internet hosts; a few unanswered."""
        rng = self.rng
        device, src = self.client(V6_SHARE)
        family = 6 if ":" in src else 4
        dport = _UDP_PORTS.pick(rng) or rng.randint(1024, 65535)
        dst = rng.choice(RESOLVERS[family]) if dport == 53 else self.remotes[family].pick(rng)
        flag, counters, timeout = None, None, rng.randint(1, 60)
        if rng.random() < 0.93:
            if dport in {53, 123}:
                counters = (1, rng.randint(60, 90), 1, rng.randint(76, 300))
            else:
                counters = self.traffic(family, 2.0, 1200)
                if rng.random() < 0.9:
                    flag, timeout = ASSURED, rng.randint(1, 180)
                    if rng.random() < 0.04:
                        flag, timeout = OFFLOAD, rng.randint(*OFFLOAD_TIMEOUT)
        return self.ported(
            "udp",
            src,
            dst,
            device.port(rng),
            dport,
            state=None,
            timeout=timeout,
            flag=flag,
            counters=counters,
            nat=family == 4,
        )

    def p2p_camera(self) -> Entry | None:
        """A P2P camera knocking on its servers' doors, mostly unanswered."""
        rng = self.rng
        if not self.cameras:
            return self.internet_udp()
        camera = rng.choice(self.cameras)
        sport = rng.choice(camera.camera_ports) if rng.random() < 0.5 else camera.port(rng)
        return self.ported(
            "udp",
            camera.ipv4,
            rng.choice(self.p2p_servers),
            sport,
            _P2P_PORTS.pick(rng),
            state=None,
            timeout=rng.randint(1, 60),
            flag=None,
            counters=None,
            nat=True,
        )

    def icmp(self) -> Entry | None:
        """A ping to an internet host (ICMP echo, or ICMPv6 echo over IPv6)."""
        rng = self.rng
        _device, src = self.client(V6_SHARE)
        family = 6 if ":" in src else 4
        dst = self.remotes[family].pick(rng)
        ident = rng.randint(1, 65535)
        if not self.claim(("icmp", src, dst, ident)):
            return None
        request, reply = (8, 0) if family == 4 else (128, 129)
        packets = rng.randint(1, 10)
        size = 84 if family == 4 else 104
        replied = rng.random() < 0.9
        return Entry(
            family=family,
            protocol="icmp" if family == 4 else "icmpv6",
            timeout=rng.randint(1, 30),
            state=None,
            src=src,
            dst=dst,
            reply_src=dst,
            reply_dst=ROUTER_WAN4 if family == 4 else src,
            orig_l4=f"type={request} code=0 id={ident}",
            reply_l4=f"type={reply} code=0 id={ident}",
            sport=None,
            dport=None,
            orig_packets=packets,
            orig_bytes=packets * size,
            reply_packets=packets if replied else 0,
            reply_bytes=packets * size if replied else 0,
            replied=replied,
            flag=None,
        )

    def gre(self) -> Entry | None:
        """A GRE tunnel (PPTP-style VPN, keys 0) to an internet host; IPv4 only."""
        rng = self.rng
        src = self.any_device.pick(rng).ipv4
        dst = self.remotes[4].pick(rng)
        if not self.claim(("gre", src, dst)):
            return None
        packets, byte_count, reply_packets, reply_bytes = self.traffic(4, 3.0, 1400)
        replied = rng.random() < 0.9
        return Entry(
            family=4,
            protocol="gre",
            timeout=rng.randint(1, 180) if replied else rng.randint(1, 30),
            state=None,
            src=src,
            dst=dst,
            reply_src=dst,
            reply_dst=ROUTER_WAN4,
            orig_l4="srckey=0x0 dstkey=0x0",
            reply_l4="srckey=0x0 dstkey=0x0",
            sport=None,
            dport=None,
            orig_packets=packets,
            orig_bytes=byte_count,
            reply_packets=reply_packets if replied else 0,
            reply_bytes=reply_bytes if replied else 0,
            replied=replied,
            flag=ASSURED if replied else None,
        )

    def router_dns(self) -> Entry | None:
        """A DNS query to the router (dnsmasq), over IPv4 or the ULA."""
        rng = self.rng
        device = self.any_device.pick(rng)
        src, dst = device.ipv4, ROUTER_LAN4
        if device.ula and rng.random() < 0.3:
            src, dst = device.ula, ROUTER_ULA
        answered = rng.random() < 0.95
        return self.ported(
            "udp",
            src,
            dst,
            device.port(rng),
            53,
            state=None,
            timeout=rng.randint(1, 60),
            flag=None,
            counters=(1, rng.randint(60, 90), 1, rng.randint(76, 300)) if answered else None,
            nat=False,
        )

    def lan(self) -> Entry | None:
        """LAN to LAN: casting, file shares, cameras' RTSP, smart-home UDP."""
        rng = self.rng
        client, server = self.any_device.pick(rng), self.any_device.pick(rng)
        if client is server:
            return None
        src, dst = client.ipv4, server.ipv4
        if client.ula and server.ula and rng.random() < 0.1:
            src, dst = client.ula, server.ula
        family = 6 if ":" in src else 4
        if rng.random() < 0.75:
            state, timeout, flag, counters = self.tcp_state(family, lan=True)
            return self.ported(
                "tcp",
                src,
                dst,
                client.port(rng),
                rng.choice(_LAN_TCP_PORTS),
                state=state,
                timeout=timeout,
                flag=flag,
                counters=counters,
                nat=False,
            )
        return self.ported(
            "udp",
            src,
            dst,
            client.port(rng),
            rng.choice(_LAN_UDP_PORTS),
            state=None,
            timeout=rng.randint(1, 180),
            flag=ASSURED if rng.random() < 0.5 else None,
            counters=self.traffic(family, 1.0, 200),
            nat=False,
        )

    def multicast(self) -> Entry | None:
        """SSDP and mDNS queries to their multicast groups: never replied."""
        rng = self.rng
        group, dport = (SSDP, 1900) if rng.random() < 0.7 else (MDNS, 5353)
        device = self.any_device.pick(rng)
        return self.ported(
            "udp",
            device.ipv4,
            group,
            device.port(rng),
            dport,
            state=None,
            timeout=rng.randint(1, 60),
            flag=None,
            counters=None,
            nat=False,
        )

    def router_own(self) -> Entry | None:
        """The router's own traffic from its WAN address: upstream DNS and NTP."""
        rng = self.rng
        if rng.random() < 0.7:
            dst, dport = rng.choice(RESOLVERS[4]), 53
        else:
            dst, dport = self.remotes[4].pick(rng), 123
        return self.ported(
            "udp",
            ROUTER_WAN4,
            dst,
            rng.randint(32768, 60999),
            dport,
            state=None,
            timeout=rng.randint(1, 60),
            flag=None,
            counters=(1, rng.randint(60, 90), 1, rng.randint(76, 300)),
            nat=False,
        )


def lan_owners(devices: int = DEVICES, seed: int = SEED) -> dict[str, str]:
    """LAN address -> a MAC per device, for the devices the table is drawn from."""
    drawn = _devices(random.Random(seed), devices)
    return {
        address: f"02:00:00:00:{index // 256:02x}:{index % 256:02x}"
        for index, device in enumerate(drawn)
        for address in (device.ipv4, device.gua, device.ula)
        if address
    }


@lru_cache(maxsize=4)
def table(entries: int = ENTRIES, devices: int = DEVICES, seed: int = SEED) -> tuple[Entry, ...]:
    """The entries of one seeded table (cached: the three formats render the same one)."""
    return tuple(_Generator(random.Random(seed), devices).entries(entries))


@cache
def _exploded(address: str) -> str:
    """An IPv6 address as /proc prints it (``%pI6``): eight groups of four digits."""
    return IPv6Address(address).exploded


def _body(entry: Entry, address: Callable[[str], str]) -> str:
    """State, both tuples with their counters, and the flags, as both text formats print them."""
    state = f"{entry.state} " if entry.state else ""
    unreplied = "" if entry.replied else "[UNREPLIED] "
    flag = f"{entry.flag} " if entry.flag else ""
    return (
        f"{state}src={address(entry.src)} dst={address(entry.dst)} {entry.orig_l4} "
        f"packets={entry.orig_packets} bytes={entry.orig_bytes} {unreplied}"
        f"src={address(entry.reply_src)} dst={address(entry.reply_dst)} {entry.reply_l4} "
        f"packets={entry.reply_packets} bytes={entry.reply_bytes} {flag}"
    )


def _same(address: str) -> str:
    return address


def proc_line(entry: Entry) -> str:
    """One line of /proc/net/nf_conntrack (kernel ``ct_seq_show``)."""
    timeout = "" if entry.offloaded else f"{entry.timeout} "
    address = _exploded if entry.family == 6 else _same
    use = 3 if entry.offloaded else 2
    return (
        f"{_L3[entry.family]}{_L4[entry.protocol]}{timeout}{_body(entry, address)}"
        f"mark=0 zone=0 use={use}\n"
    )


def conntrack_line(entry: Entry) -> str:
    """One line of ``conntrack -L`` (libnetfilter_conntrack's default output)."""
    return f"{_L4[entry.protocol]}{entry.timeout} {_body(entry, _same)}mark=0 use=1\n"


def proc_text(entries: int = ENTRIES, devices: int = DEVICES, seed: int = SEED) -> str:
    """The table as /proc/net/nf_conntrack prints it."""
    return "".join(map(proc_line, table(entries, devices, seed)))


def conntrack_text(entries: int = ENTRIES, devices: int = DEVICES, seed: int = SEED) -> str:
    """The table as ``conntrack -L`` prints it."""
    return "".join(map(conntrack_line, table(entries, devices, seed)))


def luci_payload(entries: int = ENTRIES, devices: int = DEVICES, seed: int = SEED) -> bytes:
    """LuCI's ubus JSON-RPC reply to ``luci getConntrackList`` for the table."""
    result = conntrack_list(proc_text(entries, devices, seed))
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": [0, {"result": result}]})
