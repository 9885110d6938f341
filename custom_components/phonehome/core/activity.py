"""Which internet hosts each LAN device talked to, remembered across polls within a window.

A flow belongs to the LAN device whose address is its source; it is internet
traffic when its destination scope is one of ``INTERNET_SCOPES``. Everything else
(LAN to LAN, multicast, flows from addresses no device holds) is ignored.
"""

import heapq
from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Final

import msgspec

from ..routers.base import LanDevice
from .addresses import INTERNET_SCOPES
from .geo import CountryLookup, unknown_country
from .model import Flow

DEFAULT_MAX_DESTINATIONS: Final = 256
"""Per device: a busy phone or PC reaches 100-200 hosts in 15 minutes; a few hundred
more only come from scanners and P2P swarms, which 256 already shows plainly."""
DEFAULT_RECENT: Final = 10
"""Newest destinations per device that each poll lists ready-made (``DeviceActivity.recent``)."""
DEFAULT_MAX_TOTAL: Final = 131_072
"""All devices together: 256 each for 512 devices, the small office this integration
is sized for (a house has 20-60). About 150 bytes each, so at most ~20 MB."""

type DestinationKey = tuple[str, int | None, int]
"""(remote ip, destination port, protocol number)."""
type _Record = tuple[datetime, datetime, int | None, str | None]
"""(first_seen, last_seen, bytes, country): replaced on each sighting, never changed, so
the DeviceActivity of an earlier poll can still read it while the next poll folds."""


class Destination(msgspec.Struct, frozen=True, gc=False):
    """One remote endpoint a device contacted within the window.

    A frozen msgspec Struct: built thousands of times a poll, several times quicker than
    a frozen dataclass, and (holding only atoms) kept out of the garbage collector.
    """

    ip: str
    port: int | None
    protocol: int
    first_seen: datetime
    last_seen: datetime
    bytes: int | None
    """Bytes both ways of its flows in the poll it was last seen in; None without counters."""
    country: str | None
    """ISO 3166 alpha-2 code of the remote IP, None when unknown."""


class DeviceActivity:
    """A LAN device's internet activity as of the latest poll (immutable).

    The tracker hands over its records as they are; ``destinations`` builds and sorts
    them on first read, as only a few readers (the top-10 attribute, get_report,
    diagnostics) need them and most polls have none.
    """

    __slots__ = (
        "_destinations",
        "_keys",
        "_records",
        "internet_connections",
        "internet_hosts",
        "last_internet_contact",
        "mac",
        "recent",
    )

    mac: str
    internet_hosts: int
    """Distinct remote IPs within the window."""
    internet_connections: int
    """Internet connections (kernel entries: the sum of ``Flow.connections``) in the latest poll."""
    last_internet_contact: datetime | None
    """The latest poll time at which it had an internet flow."""
    recent: tuple[Destination, ...]
    """The newest few of ``destinations``, picked in the poll's executor job so that
    readers on the event loop (the sensors) never sort a device's whole list."""

    def __init__(
        self,
        mac: str,
        internet_hosts: int,
        internet_connections: int,
        last_internet_contact: datetime | None,
        destinations: tuple[Destination, ...] = (),
    ) -> None:
        """``destinations`` newest first, as the ``destinations`` property returns them."""
        self.mac = mac
        self.internet_hosts = internet_hosts
        self.internet_connections = internet_connections
        self.last_internet_contact = last_internet_contact
        self._destinations: tuple[Destination, ...] | None = destinations
        self.recent = destinations[:DEFAULT_RECENT]
        self._keys: tuple[DestinationKey, ...] = ()
        self._records: tuple[_Record, ...] = ()

    @classmethod
    def _of_records(  # noqa: PLR0913, PLR0917 - the fields, then the records
        cls,
        mac: str,
        hosts: int,
        connections: int,
        last_contact: datetime | None,
        seen: dict[DestinationKey, _Record],
        recent: int,
    ) -> "DeviceActivity":
        """The activity over a copy of the tracker's records (two tuples: no copy per record)."""
        activity = cls(mac, hosts, connections, last_contact)
        activity._destinations = None
        activity._keys = tuple(seen)
        activity._records = tuple(seen.values())
        newest = sorted(seen.items(), key=_record_order, reverse=True)[:recent]  # < nlargest
        activity.recent = tuple(
            Destination(ip, port, protocol, first, last, total, country)
            for (ip, port, protocol), (first, last, total, country) in newest
        )
        return activity

    @property
    def destinations(self) -> tuple[Destination, ...]:
        """Newest first (last_seen, then bytes, descending)."""
        if self._destinations is None:
            pairs = zip(self._keys, self._records, strict=True)
            ordered = sorted(pairs, key=_record_order, reverse=True)
            self._destinations = tuple(
                Destination(ip, port, protocol, first, last, total, country)
                for (ip, port, protocol), (first, last, total, country) in ordered
            )
            self._keys, self._records = (), ()
        return self._destinations

    def _fields(self) -> tuple[object, ...]:
        return (
            self.mac,
            self.internet_hosts,
            self.internet_connections,
            self.last_internet_contact,
            self.destinations,
        )

    def __eq__(self, other: object) -> bool:
        """Equal when every field is."""
        if not isinstance(other, DeviceActivity):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Like a dataclass's."""
        return (
            f"DeviceActivity(mac={self.mac!r}, internet_hosts={self.internet_hosts!r}, "
            f"internet_connections={self.internet_connections!r}, "
            f"last_internet_contact={self.last_internet_contact!r}, "
            f"destinations={self.destinations!r})"
        )


_last_seen: Final = itemgetter(1)


def _record_order(item: tuple[DestinationKey, _Record]) -> tuple[datetime, int]:
    record = item[1]
    return record[1], record[2] or 0


class ActivityTracker:
    """Per-device internet destinations over a rolling window; not thread-safe, call one at a time.

    Per poll the work follows the flows: each flow replaces its destination's record
    (a small tuple); a device's records are scanned for expiry only once its oldest
    may have left the window; ``DeviceActivity`` sorts its destinations only when read.
    """

    def __init__(
        self,
        window: timedelta,
        max_destinations: int = DEFAULT_MAX_DESTINATIONS,
        country_of: CountryLookup = unknown_country,
        max_total: int = DEFAULT_MAX_TOTAL,
        recent: int = DEFAULT_RECENT,
    ) -> None:
        self.window = window
        self.recent = recent
        self.max_destinations = max_destinations
        self.max_total = max_total
        self.country_of = country_of
        self.destinations_dropped = 0
        """Destinations dropped by the caps (not by the window) since start."""
        self._seen: dict[str, dict[DestinationKey, _Record]] = {}
        self._oldest: dict[str, datetime] = {}
        """Per device, no later than its oldest record's last_seen."""
        self._last_contact: dict[str, datetime] = {}
        self._hosts: dict[str, int] = {}
        """Per device, distinct remote IPs, while its set of destinations stays the same."""

    @property
    def destinations(self) -> int:
        """Destinations remembered now, all devices."""
        return sum(map(len, self._seen.values()))

    def forget(self, macs: Iterable[str]) -> None:
        """Drop everything remembered about these devices (gone for good)."""
        for mac in macs:
            self._seen.pop(mac, None)
            self._oldest.pop(mac, None)
            self._last_contact.pop(mac, None)
            self._hosts.pop(mac, None)

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
        connections = self._fold(flows, owner, now)
        oldest = self._oldest
        for mac in connections:
            self._last_contact[mac] = now
            oldest[mac] = min(oldest[mac], now)  # the clock may have gone back
        self._expire(now - self.window)
        self._cap_total()
        seen_of, last_contact, hosts = self._seen.get, self._last_contact.get, self._hosts
        result: dict[str, DeviceActivity] = {}
        for mac in devices.keys() | self._seen.keys():
            seen = seen_of(mac)
            if not seen:
                result[mac] = DeviceActivity(mac, 0, connections.get(mac, 0), last_contact(mac))
                continue
            if mac not in hosts:
                hosts[mac] = len({ip for ip, _, _ in seen})
            result[mac] = DeviceActivity._of_records(
                mac, hosts[mac], connections.get(mac, 0), last_contact(mac), seen, self.recent
            )
        return result

    def _fold(self, flows: list[Flow], owner: dict[str, str], now: datetime) -> dict[str, int]:
        """Replace each flow's destination record; returns connections per device."""
        connections: dict[str, int] = {}
        internet = INTERNET_SCOPES
        owner_of = owner.get
        country_of = self.country_of
        hosts = self._hosts
        last_src: str | None = None
        mac: str | None = None
        seen: dict[DestinationKey, _Record] = {}
        for flow in flows:
            if flow.dst_scope not in internet:
                continue
            if flow.src is not last_src:  # tables list a source's flows together
                last_src = flow.src
                mac = owner_of(last_src)
                if mac is not None:
                    seen = self._records_of(mac, now)
            if mac is None:
                continue
            connections[mac] = connections.get(mac, 0) + flow.connections
            key = (flow.dst, flow.dport, flow.protocol)
            record = seen.get(key)
            total = flow.total_bytes
            if record is None:
                seen[key] = (now, now, total, country_of(flow.dst))
                hosts.pop(mac, None)
                continue
            if record[1] is now:  # another flow to it in this poll: sum
                before = record[2]
                if total is None:
                    total = before
                elif before is not None:
                    total += before
            seen[key] = (record[0], now, total, record[3])
        return connections

    def _records_of(self, mac: str, now: datetime) -> dict[DestinationKey, _Record]:
        """The device's records, made empty on its first destination."""
        seen = self._seen.get(mac)
        if seen is None:
            seen = self._seen[mac] = {}
            self._oldest[mac] = now
        return seen

    def _expire(self, cutoff: datetime) -> None:
        """Drop records out of the window, then the oldest beyond the per-device cap."""
        cap = self.max_destinations
        oldest = self._oldest
        for mac, seen in list(self._seen.items()):
            if oldest[mac] < cutoff:
                expired = [key for key, record in seen.items() if record[1] < cutoff]
                for key in expired:
                    del seen[key]
                if expired:
                    self._hosts.pop(mac, None)
            if len(seen) > cap:
                self._hosts.pop(mac, None)
                # newest first; a stable sort keeps ties in dict order, which is first-seen
                # order (a record is replaced in place), so among equal last_seen the newest
                # arrivals go, not destinations active every poll (else found "new" in turn)
                ordered = sorted(seen, key=lambda key: seen[key][1], reverse=True)
                for key in ordered[cap:]:
                    del seen[key]
                    self.destinations_dropped += 1
            if not seen:
                del self._seen[mac], oldest[mac]
            elif oldest[mac] < cutoff:
                oldest[mac] = min(map(_last_seen, seen.values()))

    def _cap_total(self) -> None:
        """Drop the oldest records of all devices beyond ``max_total``."""
        excess = self.destinations - self.max_total
        if excess <= 0:
            return
        every = self._seen
        victims = heapq.nsmallest(
            excess,
            ((record[1], mac, key) for mac, seen in every.items() for key, record in seen.items()),
            key=itemgetter(0),
        )
        for _, mac, key in victims:
            seen = every[mac]
            del seen[key]
            self._hosts.pop(mac, None)
            if not seen:
                del every[mac], self._oldest[mac]
        self.destinations_dropped += excess
