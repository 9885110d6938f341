"""Windowed per-device profiles of internet traffic, and the findings they raise.

Input per update: the poll's flows, an ``owners`` mapping from LAN address to
device MAC (build it with ``owners_from(devices)``), and the poll time. A flow
counts when its destination scope is one of ``INTERNET_SCOPES`` and its source
address belongs to a device; everything else is ignored. This keeps ``core`` free
of ``routers`` (the mapping is all the analyzer needs of a LanDevice).

One pass over the flows folds them straight into each device's window: it adds
``Flow.connections`` to the record of (remote ip, port, protocol), updated in place,
remembers the unreplied entries and counts UDP packets sent. The rules then run per
device over its destinations in the window, a much smaller set, sorted into rule
groups again only after the device's destinations, baseline or settings changed; the
groups also keep what each finding lists, so a poll only sums its records again.
Destination records are msgspec Structs out of the garbage collector's scans.
Everything remembered is capped per device and in total (MAX_* below), least
recently seen or learned first.

``unreplied_attempts`` counts only flows with ``replied is False``. Sources that
drop the kernel's flags (LuCI's getConntrackList) give ``replied is None``; those
flows never count, so the rule is silent on such routers rather than wrong.
"""

import heapq
import ipaddress
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from operator import attrgetter, itemgetter
from socket import AF_INET6, inet_ntop, inet_pton
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, Protocol

import msgspec

from .addresses import INTERNET_SCOPES
from .geo import CountryLookup, unknown_country
from .model import Flow
from .signatures import Signature, SignatureIndex, load_signatures

STATE_VERSION: Final = 1
UDP: Final = 17
TCP: Final = 6
PROTOCOL_NAMES: Final = {
    1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite"
}  # fmt: skip

FANOUT_EXCLUDED_PORTS: Final = frozenset({443, 123, 53, 853})
"""UDP ports that reach many hosts by design: QUIC (443) fans out to CDNs, NTP (123)
to pools; DNS (53) and DNS over QUIC (853) are the dns_bypass rule's business."""
DNS_PORTS: Final = {(UDP, 53), (TCP, 53), (TCP, 853), (UDP, 853)}
"""Plain DNS, DNS over TLS, and DNS over QUIC (RFC 9250, UDP 853)."""

MAX_BASELINE: Final = 4096
"""Baseline keys per device: a phone or PC learns a few hundred (/24, port) pairs a
day; 4096 leaves room for a busy one without letting one device fill the total."""
MAX_BASELINE_TOTAL: Final = 32_768
"""Baseline keys of all devices together: ~650 each for a house of 50 devices (a phone
learns a few hundred in a day), 65 each for a 500-device office, where the least
recently learned go first. 25 bytes each in the Store file (under 1 MB) and about
150 in memory (5 MB); an office that learns more than that churns it within the
first hour, so memory stays flat from then on."""
MAX_DESTINATIONS: Final = 4096
"""Destinations in the window per device: far more than any rule needs to fire."""
MAX_DESTINATIONS_TOTAL: Final = 262_144
"""Destinations in the window, all devices: the biggest conntrack table the
integration reads (262,144 entries) gives at most this many in one poll, so a single
poll never overflows it; churn beyond it drops the least recently seen first."""
MAX_ATTEMPTS: Final = 4096
"""Unreplied entries remembered per device: enough to pass any sane threshold."""
MAX_LISTED: Final = 20
"""Destinations listed in one finding."""

type Policy = Literal["monitor", "learn", "local_only"]
type Severity = Literal["low", "medium", "high"]
type FindingKind = Literal[
    "signature",
    "p2p_fanout",
    "unreplied_attempts",
    "dns_bypass",
    "local_only_violation",
    "new_destination",
    "shared_p2p_server",
]
type _DestKey = tuple[str, int | None, int]
type _BaselineKey = tuple[str, int | None, int]
type _AttemptKey = tuple[str, int | None, int, int | None]
"""(remote ip, port, protocol, source port)."""
P2P_KINDS: Final = frozenset({"signature", "p2p_fanout"})


class HasAddresses(Protocol):
    """What ``owners_from`` needs of a LAN device (routers.base.LanDevice fits)."""

    @property
    def mac(self) -> str: ...  # noqa: D102
    @property
    def ipv4(self) -> tuple[str, ...]: ...  # noqa: D102
    @property
    def ipv6(self) -> tuple[str, ...]: ...  # noqa: D102


def owners_from(devices: Iterable[HasAddresses]) -> dict[str, str]:
    """Address -> MAC of every LAN device's IPv4 and IPv6 addresses."""
    owners: dict[str, str] = {}
    for device in devices:
        for address in (*device.ipv4, *device.ipv6):
            owners[address] = device.mac
    return owners


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """A destination that never raises a finding."""

    network: str
    """An address or CIDR."""
    mac: str | None = None
    """The device it applies to; None for every device."""
    port: int | None = None
    protocol: int | None = None

    def __post_init__(self) -> None:
        """Fail early on a bad network."""
        ipaddress.ip_network(self.network, strict=False)


@dataclass(frozen=True, slots=True)
class AnalyzerSettings:
    """Thresholds, allow-list and per-device policies (all options of the integration)."""

    window: timedelta = timedelta(minutes=15)
    fanout_hosts: int = 3
    unreplied_attempts: int = 20
    learning_period: timedelta = timedelta(hours=24)
    lan_resolvers: frozenset[str] = frozenset()
    """Resolvers the LAN sanctions. Empty: only LAN-scope addresses (never WAN) count."""
    allow: tuple[AllowEntry, ...] = ()
    policies: Mapping[str, Policy] = field(default_factory=dict)
    """MAC -> policy; missing MACs get ``default_policy``."""
    default_policy: Policy = "learn"


class FindingDestination(NamedTuple):
    """One remote endpoint involved in a finding."""

    ip: str
    port: int | None
    protocol: str
    country: str | None


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a device does that its owner may not have agreed to."""

    device: str
    kind: FindingKind
    destinations: tuple[FindingDestination, ...]
    first_seen: datetime
    last_seen: datetime
    count: int
    """Connections seen (summed over polls) for the destinations involved."""
    severity: Severity
    explanation: str
    signature: str | None = None
    key: str = ""
    """Identifies the finding within its device and kind (port, signature id, ...)."""
    sends: int | None = None
    """UDP packets the device sent to these destinations in the window, where the
    router counts packets: what "every ~9 s" is worked out from."""


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """A device's active findings."""

    mac: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """Outcome of one update."""

    devices: dict[str, DeviceReport]
    new_findings: tuple[Finding, ...]
    """Findings that appeared in this update (not re-announced while they stay active)."""


_NO_PORTS: Final[Mapping[int | None, int]] = MappingProxyType({})
"""A destination's ports until its first UDP packet count (most never have one)."""
_LAST_SEEN: Final = attrgetter("last_seen")
_COUNT: Final = attrgetter("count")
_SENDS: Final = attrgetter("sends")


class _Dest(msgspec.Struct, gc=False):
    """A destination in a device's window.

    Holds only datetimes, numbers and dicts of numbers, never a cycle: out of the
    garbage collector's scans (there may be 262,144 of them, all long-lived).
    """

    first_seen: datetime
    last_seen: datetime
    count: int
    sends: int = 0
    """UDP packets sent, counted across polls from the entries' packet counters."""
    ports: Mapping[int | None, int] = _NO_PORTS
    """Packets sent so far by each entry (by source port), as of the last poll it sent in."""
    before: Mapping[int | None, int] = _NO_PORTS
    """``ports`` as of the poll before that."""
    poll: int = 0
    """The update that last counted its packets."""

    def count_sent(self, sport: int | None, packets: int, poll: int) -> None:
        """Add the packets an entry sent since the last poll (1 when it is new).

        A new entry counts once, not with its whole counter: it may be older than the
        window (a P2P session that started before Home Assistant did). An entry listed
        twice in one poll counts as its last listing says.
        """
        if self.poll != poll:
            self.poll = poll
            self.before = self.ports
            self.ports = {}
        known = self.before.get(sport)
        ports = self.ports
        if (repeated := ports.get(sport)) is not None:
            self.sends -= 1 if known is None else max(0, repeated - known)
        self.sends += 1 if known is None else max(0, packets - known)
        ports[sport] = packets  # type: ignore[index]  # this poll's own dict


class _Groups:
    """A device's destinations sorted by the rules they matter to.

    Depends only on which destinations are in the window, the baseline and the
    settings, so it is kept until one of them changes (``_Device.groups = None``).
    """

    __slots__ = (
        "dns",
        "fanout",
        "learning_over",
        "new_destinations",
        "p2p_servers",
        "parts",
        "signatures",
        "udp",
    )

    def __init__(self, learning_over: bool) -> None:
        self.learning_over = learning_over
        self.fanout: list[tuple[int | None, list[_DestKey]]] = []
        """(port, destinations) of the UDP ports that reach enough hosts to fire."""
        self.signatures: list[_SignatureHit] = []
        """The signatures that match enough hosts to fire."""
        self.dns: list[_DestKey] = []
        self.new_destinations: list[_DestKey] = []
        self.udp: set[tuple[str, int | None]] = set()
        """(ip, port) of every UDP destination: what shared_p2p_server looks for."""
        self.p2p_servers: set[tuple[str, int | None]] | None = None
        """(ip, port) of the UDP destinations its P2P findings list, once they ran."""
        self.parts: dict[tuple[FindingKind, str], _Parts] = {}
        """What stays the same in each finding of these groups from poll to poll."""


class _SignatureHit(NamedTuple):
    signature: Signature
    keys: list[_DestKey]
    hosts: int
    ports: str
    """The destination ports, as the explanation lists them."""


class _Parts(NamedTuple):
    """A finding's destinations, their records, earliest first_seen and listed ones."""

    keys: list[_DestKey]
    records: list[_Dest]
    first_seen: datetime
    listed: tuple[FindingDestination, ...]
    where: str
    """' in CN and US' (the listed destinations' countries) or '', for an explanation."""


class _Span(NamedTuple):
    """A finding's destinations and what they add up to in this update."""

    listed: tuple[FindingDestination, ...]
    where: str
    first_seen: datetime
    last_seen: datetime
    connections: int
    sends: int | None

    def every(self) -> str:
        """' every ~9 s' (when each listed host got three UDP packets or more) or ''."""
        span = (self.last_seen - self.first_seen).total_seconds()
        per_host = (self.sends or 0) / max(1, len(self.listed))
        if per_host >= 3 and span > 0:  # noqa: PLR2004 - two gaps at least
            return f" every ~{round(span / (per_host - 1))} s"
        return ""

    def finding(  # noqa: PLR0913 - the parts the span does not hold
        self,
        mac: str,
        kind: FindingKind,
        severity: Severity,
        key: str,
        explanation: str,
        *,
        signature: str | None = None,
    ) -> Finding:
        """The finding these destinations make."""
        return Finding(
            mac,
            kind,
            self.listed,
            self.first_seen,
            self.last_seen,
            self.connections,
            severity,
            explanation,
            signature,
            key,
            self.sends,
        )


class _Device:
    __slots__ = (
        "active",
        "attempts",
        "baseline",
        "dests",
        "exported",
        "first_seen",
        "groups",
        "mac",
        "newest",
        "oldest",
    )

    def __init__(self, mac: str, now: datetime) -> None:
        self.mac = mac
        self.first_seen = now
        self.dests: dict[_DestKey, _Dest] = {}
        self.attempts: dict[_AttemptKey, tuple[datetime, int]] = {}
        self.baseline: dict[_BaselineKey, datetime] = {}
        """Key -> when it was last learned; least recently learned first."""
        self.active: dict[tuple[FindingKind, str], Finding] = {}
        self.oldest = now
        """No later than the oldest destination's last_seen: expiry skips the device before."""
        self.newest = now
        """The latest last_seen of its destinations (while it has any)."""
        self.groups: _Groups | None = None
        self.exported: dict[str, Any] | None = None
        """This device's part of ``export_state`` while nothing in it changed."""


@lru_cache(maxsize=1 << 16)
def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) holding an address, as a baseline key part.

    Addresses come canonical from the parsers, so plain text work is enough for IPv4.
    """
    if ":" not in ip:
        return ip[: ip.rfind(".")] + ".0/24"
    packed = inet_pton(AF_INET6, ip)
    return inet_ntop(AF_INET6, packed[:6] + bytes(10)) + "/48"


def _hosts(count: int, kind: str = "") -> str:
    return f"{count} {kind}host" if count == 1 else f"{count} {kind}hosts"


def protocol_name(protocol: int) -> str:
    """The protocol's usual name (tcp, udp, ...), else its number."""
    return PROTOCOL_NAMES.get(protocol, str(protocol))


class Analyzer:
    """Per-device windowed profiles and findings; not thread-safe, call one at a time."""

    def __init__(
        self,
        settings: AnalyzerSettings | None = None,
        signatures: Iterable[Signature] | None = None,
        country_of: CountryLookup = unknown_country,
    ) -> None:
        self.settings = settings or AnalyzerSettings()
        self._signatures = None if signatures is None else tuple(signatures)
        self._index: SignatureIndex | None = None
        self.country_of = country_of
        self._devices: dict[str, _Device] = {}
        self._allow = tuple(
            (entry, ipaddress.ip_network(entry.network, strict=False))
            for entry in self.settings.allow
        )
        self.baseline_dropped = 0
        """Baseline keys dropped by MAX_BASELINE or MAX_BASELINE_TOTAL since start."""
        self.destinations_dropped = 0
        """Window destinations dropped by MAX_DESTINATIONS(_TOTAL) (not by the window)."""
        self._polls = 0
        """Updates so far: tells a destination's first UDP entry of a poll from the next."""

    @property
    def baseline_entries(self) -> int:
        """Baseline keys of all devices."""
        return sum(len(state.baseline) for state in self._devices.values())

    @property
    def destinations(self) -> int:
        """Destinations in the window, all devices."""
        return sum(len(state.dests) for state in self._devices.values())

    @property
    def index(self) -> SignatureIndex:
        """The signatures by port, read on first use.

        The shipped file is read in ``update`` (which Home Assistant runs in the
        executor), never at construction (on the event loop).
        """
        if self._index is None:
            signatures = self._signatures if self._signatures is not None else load_signatures()
            self._index = SignatureIndex(signatures)
        return self._index

    def apply_settings(self, settings: AnalyzerSettings) -> None:
        """Use new settings from the next update on; newly allowed destinations drop out now."""
        self.settings = settings
        self._allow = tuple(
            (entry, ipaddress.ip_network(entry.network, strict=False)) for entry in settings.allow
        )
        for state in self._devices.values():
            state.groups = None
        if not self._allow:
            return
        allowed = self._allowed
        for mac, state in self._devices.items():
            state.dests = {key: dest for key, dest in state.dests.items() if not allowed(mac, *key)}
            state.attempts = {
                key: seen for key, seen in state.attempts.items() if not allowed(mac, *key[:3])
            }
            if state.dests:
                state.newest = max(dest.last_seen for dest in state.dests.values())

    # ------------------------------------------------------------ update

    def update(
        self, flows: Iterable[Flow], owners: Mapping[str, str], now: datetime
    ) -> AnalysisResult:
        """Fold one poll in and return every device's active findings."""
        devices = self._devices
        for mac in set(owners.values()):
            if mac not in devices:
                devices[mac] = _Device(mac, now)
        cutoff = now - self.settings.window
        for state in devices.values():
            _expire(state, cutoff)
            state.oldest = min(state.oldest, now)  # the clock may have gone back
        learning = {mac for mac, state in devices.items() if self._learning(mac, state, now)}
        targets = {address: devices[mac] for address, mac in owners.items()}
        self._fold(flows, targets, learning, now)
        for state in devices.values():
            self.destinations_dropped += _cap_destinations(state)
        self._cap_all_destinations()

        found: dict[str, list[Finding]] = {}
        for mac in learning:
            self.baseline_dropped += _cap_baseline(devices[mac])
        self._cap_all_baselines()
        for mac, state in devices.items():
            found[mac] = self._rules(mac, state)
        self._shared(found)

        reports: dict[str, DeviceReport] = {}
        new: list[Finding] = []
        for mac, state in devices.items():
            findings = found[mac]
            active = {(finding.kind, finding.key): finding for finding in findings}
            if active.keys() != state.active.keys():
                new.extend(f for k, f in active.items() if k not in state.active)
                state.exported = None
            state.active = active
            reports[mac] = DeviceReport(mac, tuple(findings))
        return AnalysisResult(reports, tuple(new))

    def _fold(
        self,
        flows: Iterable[Flow],
        targets: Mapping[str, _Device],
        learning: set[str],
        now: datetime,
    ) -> None:
        """Fold the poll's internet flows into the devices' windows, in one pass.

        Sums connections into the destinations, remembers unreplied entries, and counts
        the packets each UDP entry sent, where the router counts packets.
        """
        self._polls += 1
        poll = self._polls
        allowed = self._allowed if self._allow else None
        internet = INTERNET_SCOPES
        target = targets.get
        for flow in flows:
            if flow.dst_scope not in internet:
                continue
            state = target(flow.src)
            if state is None:
                continue
            key = (flow.dst, flow.dport, flow.protocol)
            dests = state.dests
            record = dests.get(key)
            if record is None:
                if allowed is not None and allowed(state.mac, *key):
                    continue
                record = dests[key] = _Dest(now, now, flow.connections)
                state.groups = None
                if state.mac in learning:
                    _learn(state, (network_of(key[0]), key[1], key[2]), now)
            else:
                record.last_seen = now
                record.count += flow.connections
            state.newest = now
            if flow.replied is False:
                state.attempts[key[0], key[1], key[2], flow.sport] = (now, flow.connections)
            if flow.protocol == UDP and flow.total_packets is not None:
                packets = flow.total_packets - (flow.reply_packets or 0)
                record.count_sent(flow.sport, packets, poll)

    def _cap_all_destinations(self) -> None:
        """Drop the least recently seen destinations of all devices beyond the total cap."""
        devices = self._devices
        excess = self.destinations - MAX_DESTINATIONS_TOTAL
        if excess <= 0:
            return
        victims = heapq.nsmallest(
            excess,
            (
                (record.last_seen, mac, key)
                for mac, state in devices.items()
                for key, record in state.dests.items()
            ),
            key=itemgetter(0),
        )
        for _, mac, key in victims:
            state = devices[mac]
            del state.dests[key]
            state.groups = None
        self.destinations_dropped += excess

    def _cap_all_baselines(self) -> None:
        """Drop the least recently learned baseline keys of all devices beyond the total cap."""
        devices = self._devices
        excess = self.baseline_entries - MAX_BASELINE_TOTAL
        if excess <= 0:
            return
        self.baseline_dropped += excess
        fronts = [
            (next(iter(state.baseline.values())), mac)
            for mac, state in devices.items()
            if state.baseline
        ]
        heapq.heapify(fronts)
        for _ in range(excess):
            mac = fronts[0][1]
            state = devices[mac]
            baseline = state.baseline
            del baseline[next(iter(baseline))]
            state.groups = state.exported = None
            if baseline:
                heapq.heapreplace(fronts, (next(iter(baseline.values())), mac))
            else:
                heapq.heappop(fronts)

    def forget(self, macs: Iterable[str]) -> None:
        """Drop everything remembered about these devices."""
        for mac in macs:
            self._devices.pop(mac, None)

    def reset_baseline(self, mac: str, now: datetime) -> None:
        """Start learning this device again from now."""
        state = self._devices.get(mac)
        if state is not None:
            state.baseline = {
                (network_of(ip), port, protocol): now for ip, port, protocol in state.dests
            }
            state.first_seen = now
            state.groups = state.exported = None

    def _allowed(self, mac: str, ip: str, port: int | None, protocol: int) -> bool:
        address = ipaddress.ip_address(ip)
        for entry, network in self._allow:
            if (
                (entry.mac is None or entry.mac == mac)
                and (entry.port is None or entry.port == port)
                and (entry.protocol is None or entry.protocol == protocol)
                and address in network
            ):
                return True
        return False

    def _policy(self, mac: str) -> Policy:
        return self.settings.policies.get(mac, self.settings.default_policy)

    def _learning(self, mac: str, state: _Device, now: datetime) -> bool:
        """Whether this device's new destinations go into its baseline now."""
        return (
            self._policy(mac) == "learn" and now - state.first_seen < self.settings.learning_period
        )

    # ------------------------------------------------------------ rules

    def _groups(self, state: _Device, learning_over: bool) -> _Groups:
        """The device's destinations by rule, sorted again only after something changed."""
        groups = state.groups
        if groups is not None and groups.learning_over == learning_over:
            return groups
        groups = state.groups = _Groups(learning_over)
        candidates = self.index.candidates
        signature_ports = self.index.by_port
        resolvers = self.settings.lan_resolvers
        baseline = state.baseline
        udp_by_port: dict[int | None, list[_DestKey]] = {}
        by_signature: dict[str, tuple[Signature, list[_DestKey]]] = {}
        for key in state.dests:
            ip, port, protocol = key
            if protocol == UDP:
                groups.udp.add((ip, port))
                if port not in FANOUT_EXCLUDED_PORTS:
                    udp_by_port.setdefault(port, []).append(key)
            pair = (protocol, port)
            if pair in signature_ports:
                for signature in candidates(protocol, port, ip):
                    by_signature.setdefault(signature.id, (signature, []))[1].append(key)
            if pair in DNS_PORTS and ip not in resolvers:
                groups.dns.append(key)
            if learning_over and (network_of(ip), port, protocol) not in baseline:
                groups.new_destinations.append(key)
        for signature, keys in by_signature.values():
            hosts = len({ip for ip, _, _ in keys})
            if hosts >= signature.min_hosts:
                ports = ", ".join(map(str, sorted({p for _, p, _ in keys if p is not None})))
                groups.signatures.append(_SignatureHit(signature, keys, hosts, ports))
        groups.fanout = [
            (port, keys)
            for port, keys in udp_by_port.items()
            if len({ip for ip, _, _ in keys}) >= self.settings.fanout_hosts
        ]
        return groups

    def _rules(self, mac: str, state: _Device) -> list[Finding]:
        """Every per-device rule over the device's destinations in the window."""
        if not state.dests and not state.attempts:
            return []
        settings = self.settings
        policy = self._policy(mac)
        learning_over = bool(
            policy == "learn"
            and state.dests
            and state.newest - state.first_seen >= settings.learning_period
        )
        groups = self._groups(state, learning_over)
        dns, new_destinations = groups.dns, groups.new_destinations

        findings: list[Finding] = []
        for signature, keys, hosts, ports in groups.signatures:
            span = self._span(state, "signature", signature.id, keys, groups)
            text = signature.explain(ports, hosts, countries=span.where, every=span.every())
            findings.append(
                span.finding(
                    mac, "signature", signature.severity, signature.id, text, signature=signature.id
                )
            )
        for port, keys in groups.fanout:
            span = self._span(state, "p2p_fanout", str(port), keys, groups)
            hosts = len({d.ip for d in span.listed})
            text = (
                f"UDP to port {port} of {_hosts(hosts)}{span.where}{span.every()}: the pattern "
                "of a P2P cloud or hole punching"
            )
            findings.append(span.finding(mac, "p2p_fanout", "medium", str(port), text))
        if groups.p2p_servers is None:
            groups.p2p_servers = {
                (d.ip, d.port) for f in findings for d in f.destinations if d.protocol == "udp"
            }
        attempts = sum(map(itemgetter(1), state.attempts.values()))
        if attempts >= settings.unreplied_attempts:
            keys = list({(ip, port, protocol) for ip, port, protocol, _ in state.attempts})
            span = self._span(state, "unreplied_attempts", "", keys, None)._replace(
                connections=attempts
            )
            hosts = len({ip for ip, _, _ in keys})
            text = (
                f"{attempts} connection attempts without reply to {_hosts(hosts, 'internet ')}"
                f"{span.where}: it keeps trying although something blocks it"
            )
            findings.append(span.finding(mac, "unreplied_attempts", "medium", "", text))
        if dns:
            span = self._span(state, "dns_bypass", "", dns, groups)
            servers = ", ".join(sorted({ip for ip, _, _ in dns}))
            text = (
                f"DNS to {servers}{span.where} instead of the LAN's resolver: "
                "it bypasses local DNS filtering"
            )
            findings.append(span.finding(mac, "dns_bypass", "medium", "", text))
        if policy == "local_only" and state.dests:
            keys = list(state.dests)
            span = self._span(state, "local_only_violation", "", keys, groups)
            hosts = len({ip for ip, _, _ in keys})
            text = f"Talks to {_hosts(hosts, 'internet ')} although its policy is local only"
            findings.append(span.finding(mac, "local_only_violation", "high", "", text))
        if new_destinations:
            span = self._span(state, "new_destination", "", new_destinations, groups)
            hosts = len({ip for ip, _, _ in new_destinations})
            text = (
                f"{_hosts(hosts, 'internet ')}{span.where} on networks/ports not seen "
                "while it was learning"
            )
            findings.append(span.finding(mac, "new_destination", "low", "", text))
        return findings

    def _shared(self, found: dict[str, list[Finding]]) -> None:
        """shared_p2p_server: other devices reaching a P2P server (UDP ip:port) of a flagged one."""
        servers: set[tuple[str, int | None]] = set()
        for mac, findings in found.items():
            groups = self._devices[mac].groups
            if findings and groups is not None and groups.p2p_servers:
                servers |= groups.p2p_servers  # the UDP destinations of its P2P findings
        if not servers:
            return
        users: dict[tuple[str, int | None], list[str]] = {}
        for mac, state in self._devices.items():
            if state.dests and state.groups is not None:
                for server in servers & state.groups.udp:
                    users.setdefault(server, []).append(mac)
        shared = {
            server: sorted(macs)
            for server, macs in users.items()
            if len(macs) >= 2  # noqa: PLR2004
        }
        per_device: dict[str, list[tuple[str, int | None]]] = {}
        for server, macs in shared.items():
            for mac in macs:
                per_device.setdefault(mac, []).append(server)
        for mac, servers_of in per_device.items():
            state = self._devices[mac]
            servers_of.sort(key=str)
            keys = [(ip, port, UDP) for ip, port in servers_of]
            span = self._span(state, "shared_p2p_server", "", keys, state.groups)
            others = (
                [m for m in shared[servers_of[0]] if m != mac]  # sorted already
                if len(servers_of) == 1
                else sorted({m for s in servers_of for m in shared[s]} - {mac})
            )
            listed = ", ".join(f"{ip}:{port}" for ip, port in servers_of[:3])
            text = (
                f"Shares the P2P server {listed} with {len(others)} other device(s) "
                f"({', '.join(others)}): one of them is flagged for P2P traffic"
            )
            found[mac].append(span.finding(mac, "shared_p2p_server", "high", "", text))

    # ------------------------------------------------------------ helpers

    def _span(
        self,
        state: _Device,
        kind: FindingKind,
        key: str,
        keys: list[_DestKey],
        groups: _Groups | None,
    ) -> "_Span":
        """What a finding over these destinations lists and counts now.

        ``groups`` keeps what stays the same while the device's destinations do (their
        records, earliest first_seen and listed destinations); only the keys' records
        are in it, so a finding whose keys may lack one (unreplied attempts) passes none.
        """
        parts = groups.parts.get((kind, key)) if groups is not None else None
        if parts is None or (parts.keys is not keys and parts.keys != keys):
            parts = self._parts(state, keys)
            if groups is not None:
                groups.parts[kind, key] = parts
        records = parts.records
        if records:
            first = parts.first_seen
            last = max(map(_LAST_SEEN, records))
        else:  # only unreplied attempts (allow-listed dests are never here)
            times = [t for t, _ in state.attempts.values()]
            first, last = min(times), max(times)
        count = sum(map(_COUNT, records))
        sends = sum(map(_SENDS, records)) or None
        return _Span(parts.listed, parts.where, first, last, count, sends)

    def _parts(self, state: _Device, keys: list[_DestKey]) -> _Parts:
        records = [state.dests[k] for k in keys if k in state.dests]
        first = min((r.first_seen for r in records), default=state.first_seen)
        country = self.country_of
        listed = sorted(keys, key=lambda k: (k[0], k[1] or 0, k[2]))[:MAX_LISTED]
        destinations = tuple(
            FindingDestination(ip, port, protocol_name(protocol), country(ip))
            for ip, port, protocol in listed
        )
        countries = sorted({d.country for d in destinations if d.country})
        where = ""
        if countries:
            where = " in " + (
                countries[0]
                if len(countries) == 1
                else ", ".join(countries[:-1]) + " and " + countries[-1]
            )
        return _Parts(keys, records, first, destinations, where)

    # ------------------------------------------------------------ persistence

    def export_state(self) -> dict[str, Any]:
        """Baselines, learning starts and active findings as plain JSON-able data.

        A device's part is built again only after its baseline, learning start or set
        of active findings changed: a finding is stored as it was then (what is kept
        is which findings are active, so they are not announced again). Baseline keys
        are the analyzer's own (net, port, protocol) tuples, JSON arrays once written.
        """
        devices: dict[str, Any] = {}
        for mac, state in self._devices.items():
            if state.exported is None:
                state.exported = {
                    "first_seen": state.first_seen.isoformat(),
                    "baseline": list(state.baseline),
                    "findings": [_finding_to_dict(f) for f in state.active.values()],
                }
            devices[mac] = state.exported
        return {"version": STATE_VERSION, "devices": devices}

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore what ``export_state`` wrote; unknown versions raise ValueError.

        Restored findings only keep a finding that recurs from being announced again;
        the window's destinations are not persisted.
        """
        if data.get("version") != STATE_VERSION:
            msg = f"unsupported analyzer state version {data.get('version')!r}"
            raise ValueError(msg)
        self._devices = {}
        for mac, saved in data["devices"].items():
            state = _Device(mac, datetime.fromisoformat(saved["first_seen"]))
            for net, port, protocol in saved["baseline"][-MAX_BASELINE:]:
                state.baseline[(str(net), port, int(protocol))] = state.first_seen
            for item in saved["findings"]:
                finding = _finding_from_dict(item)
                state.active[(finding.kind, finding.key)] = finding
            self._devices[mac] = state
        self._cap_all_baselines()


def _learn(state: _Device, key: _BaselineKey, now: datetime) -> None:
    """Put a key at the newest end of the baseline."""
    baseline = state.baseline
    baseline.pop(key, None)
    baseline[key] = now
    state.exported = None


def _cap_destinations(state: _Device) -> int:
    """Drop the least recently seen destinations beyond MAX_DESTINATIONS; returns how many."""
    dests = state.dests
    excess = len(dests) - MAX_DESTINATIONS
    if excess <= 0:
        return 0
    for key in sorted(dests, key=lambda key: dests[key].last_seen)[:excess]:
        del dests[key]
    state.groups = None
    return excess


def _expire(state: _Device, cutoff: datetime) -> None:
    """Drop the destinations and unreplied attempts that left the window."""
    dests = state.dests
    if state.oldest < cutoff:
        expired = [key for key, record in dests.items() if record.last_seen < cutoff]
        for key in expired:
            del dests[key]
        if expired:
            state.groups = None
        state.oldest = min((record.last_seen for record in dests.values()), default=cutoff)
    attempts = state.attempts
    for attempt in [attempt for attempt, (seen, _) in attempts.items() if seen < cutoff]:
        del attempts[attempt]
    if len(attempts) > MAX_ATTEMPTS:
        oldest = sorted(attempts, key=lambda attempt: attempts[attempt][0])
        for attempt in oldest[: len(attempts) - MAX_ATTEMPTS]:
            del attempts[attempt]


def _cap_baseline(state: _Device) -> int:
    """Drop the least recently learned baseline keys beyond MAX_BASELINE; returns how many."""
    baseline = state.baseline
    excess = max(0, len(baseline) - MAX_BASELINE)
    for key in list(itertools.islice(baseline, excess)):
        del baseline[key]
    if excess:
        state.groups = state.exported = None
    return excess


def _finding_to_dict(finding: Finding) -> dict[str, Any]:
    return {
        "device": finding.device,
        "kind": finding.kind,
        "destinations": [list(d) for d in finding.destinations],
        "first_seen": finding.first_seen.isoformat(),
        "last_seen": finding.last_seen.isoformat(),
        "count": finding.count,
        "severity": finding.severity,
        "explanation": finding.explanation,
        "signature": finding.signature,
        "key": finding.key,
    }


def _finding_from_dict(item: Mapping[str, Any]) -> Finding:
    return Finding(
        device=item["device"],
        kind=item["kind"],
        destinations=tuple(FindingDestination(*d) for d in item["destinations"]),
        first_seen=datetime.fromisoformat(item["first_seen"]),
        last_seen=datetime.fromisoformat(item["last_seen"]),
        count=item["count"],
        severity=item["severity"],
        explanation=item["explanation"],
        signature=item["signature"],
        key=item["key"],
    )
