"""Which internet hosts each LAN device talked to, remembered across polls within a window.

A flow belongs to the LAN device whose address is its source; it is internet
traffic when its destination scope is one of ``INTERNET_SCOPES``. Everything else
(LAN to LAN, multicast, flows from addresses no device holds) is ignored.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ..routers.base import LanDevice
from .addresses import INTERNET_SCOPES
from .geo import CountryLookup, unknown_country
from .model import Flow

DEFAULT_MAX_DESTINATIONS: Final = 256

type DestinationKey = tuple[str, int | None, int]
"""(remote ip, destination port, protocol number)."""


@dataclass(frozen=True, slots=True)
class Destination:
    """One remote endpoint a device contacted within the window."""

    ip: str
    port: int | None
    protocol: int
    first_seen: datetime
    last_seen: datetime
    bytes: int | None
    """Bytes both ways of its flows in the poll it was last seen in; None without counters."""
    country: str | None
    """ISO 3166 alpha-2 code of the remote IP, None when unknown."""


@dataclass(frozen=True, slots=True)
class DeviceActivity:
    """A LAN device's internet activity as of the latest poll."""

    mac: str
    internet_hosts: int
    """Distinct remote IPs within the window."""
    internet_connections: int
    """Internet connections (kernel entries: the sum of ``Flow.connections``) in the latest poll."""
    last_internet_contact: datetime | None
    """The latest poll time at which it had an internet flow."""
    destinations: tuple[Destination, ...]
    """Newest first (last_seen, then bytes, descending)."""


class _Seen:
    """Mutable per-destination record; only the tracker holds it."""

    __slots__ = ("bytes", "country", "first_seen", "last_seen")

    def __init__(self, seen_at: datetime, total: int | None, country: str | None) -> None:
        self.first_seen = seen_at
        self.last_seen = seen_at
        self.bytes = total
        self.country = country


def _sort_key(destination: Destination) -> tuple[datetime, int]:
    return destination.last_seen, destination.bytes or 0


class ActivityTracker:
    """Per-device internet destinations over a rolling window; not thread-safe, call one at a time."""

    def __init__(
        self,
        window: timedelta,
        max_destinations: int = DEFAULT_MAX_DESTINATIONS,
        country_of: CountryLookup = unknown_country,
    ) -> None:
        self.window = window
        self.max_destinations = max_destinations
        self.country_of = country_of
        self._seen: dict[str, dict[DestinationKey, _Seen]] = {}
        self._last_contact: dict[str, datetime] = {}

    def forget(self, macs: Iterable[str]) -> None:
        """Drop everything remembered about these devices (gone for good)."""
        for mac in macs:
            self._seen.pop(mac, None)
            self._last_contact.pop(mac, None)

    def update(
        self, flows: list[Flow], devices: dict[str, LanDevice], now: datetime
    ) -> dict[str, DeviceActivity]:
        """Fold one poll's flows in; activity of every given device and every remembered one."""
        owner: dict[str, str] = {}
        for mac, device in devices.items():
            for address in device.ipv4:
                owner[address] = mac
            for address in device.ipv6:
                owner[address] = mac

        poll, connections = _per_device(flows, owner)

        country_of = self.country_of
        for mac, per_device in poll.items():
            seen = self._seen.setdefault(mac, {})
            for key, total in per_device.items():
                record = seen.get(key)
                if record is None:
                    seen[key] = _Seen(now, total, country_of(key[0]))
                else:
                    record.last_seen = now
                    record.bytes = total
            self._last_contact[mac] = now

        cutoff = now - self.window
        result: dict[str, DeviceActivity] = {}
        for mac in devices.keys() | self._seen.keys():
            result[mac] = self._activity(mac, cutoff, connections.get(mac, 0))
        return result

    def _activity(self, mac: str, cutoff: datetime, connections: int) -> DeviceActivity:
        """Expire, cap and summarise one device's destinations."""
        seen = self._seen.get(mac)
        destinations: list[Destination] = []
        if seen is not None:
            for key in [key for key, record in seen.items() if record.last_seen < cutoff]:
                del seen[key]
            if len(seen) > self.max_destinations:
                oldest = sorted(seen, key=lambda key: seen[key].last_seen)
                for key in oldest[: len(seen) - self.max_destinations]:
                    del seen[key]
            if not seen:
                del self._seen[mac]
            destinations = [
                Destination(
                    ip,
                    port,
                    protocol,
                    record.first_seen,
                    record.last_seen,
                    record.bytes,
                    record.country,
                )
                for (ip, port, protocol), record in seen.items()
            ]
            destinations.sort(key=_sort_key, reverse=True)
        return DeviceActivity(
            mac=mac,
            internet_hosts=len({destination.ip for destination in destinations}),
            internet_connections=connections,
            last_internet_contact=self._last_contact.get(mac),
            destinations=tuple(destinations),
        )


def _per_device(
    flows: list[Flow], owner: dict[str, str]
) -> tuple[dict[str, dict[DestinationKey, int | None]], dict[str, int]]:
    """One poll's internet flows by device: bytes per destination, and the connection count."""
    poll: dict[str, dict[DestinationKey, int | None]] = {}
    connections: dict[str, int] = {}
    internet = INTERNET_SCOPES
    for flow in flows:
        if flow.dst_scope not in internet:
            continue
        mac = owner.get(flow.src)
        if mac is None:
            continue
        connections[mac] = connections.get(mac, 0) + flow.connections
        per_device = poll.setdefault(mac, {})
        key = (flow.dst, flow.dport, flow.protocol)
        total = flow.total_bytes
        if key in per_device:
            before = per_device[key]
            if total is None:
                total = before
            elif before is not None:
                total += before
        per_device[key] = total
    return poll, connections
