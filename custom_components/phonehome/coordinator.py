"""Polls the router once per interval and turns its snapshot into per-device activity."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import CONF_HOST
from homeassistant.core import callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_FANOUT_HOSTS,
    CONF_LAN_RESOLVERS,
    CONF_LEARNING_HOURS,
    CONF_SCAN_INTERVAL,
    CONF_STALE_DAYS,
    CONF_TRACKED_DEVICES,
    CONF_UNREPLIED_ATTEMPTS,
    CONF_WINDOW,
    DEFAULT_FANOUT_HOSTS,
    DEFAULT_LEARNING_HOURS,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_STALE_DAYS,
    DEFAULT_UNREPLIED_ATTEMPTS,
    DEFAULT_WINDOW,
    DOMAIN,
    TOP_DESTINATIONS,
)
from .core.activity import ActivityTracker, Destination, DeviceActivity
from .core.analyzer import (
    MAX_BASELINE,
    MAX_BASELINE_TOTAL,
    MAX_DESTINATIONS,
    MAX_DESTINATIONS_TOTAL,
    AllowEntry,
    AnalysisResult,
    Analyzer,
    AnalyzerSettings,
    Finding,
    owners_from,
    protocol_name,
)
from .core.geo import CountrySource, load_country_source, unknown_country
from .quarantine import QuarantineManager, fire_device_event
from .routers.base import (
    DeviceTraffic,
    LanDevice,
    QuarantineState,
    RouterAuthError,
    RouterConnectionError,
    RouterError,
    RouterHostKeyError,
    RouterPermissionError,
    Snapshot,
)
from .store import SAVE_DELAY

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .core.analyzer import Policy
    from .core.model import Flow
    from .core.parsing import ParseStats
    from .data import PhoneHomeConfigEntry
    from .routers.base import Router
    from .store import PhoneHomeStore

_LOGGER = logging.getLogger(__name__)

LEARN_MORE_URL: Final = "https://github.com/phonehome-guard/phonehome#openwrt-access"
"""The README's "OpenWrt access" section: the rpcd plugin and the SSH kind."""


SSH_LEARN_MORE_URL: Final = "https://github.com/phonehome-guard/phonehome#linux-router-over-ssh"


TOTALS_ONLY_SOURCES: Final = frozenset({"dpi"})
"""Table sources without connections: per-device byte totals only (UniFi stat/stadpi)."""
CONTROLLER_SOURCES: Final = frozenset({"traffic_flows", "dpi"})
"""Table sources a UniFi controller gives: no kernel table, so no tracked-connection count."""


def host_key_issue_id(entry_id: str) -> str:
    """Repair issue id of a config entry whose SSH router presented another host key."""
    return f"host_key_changed_{entry_id}"


@callback
def async_create_host_key_issue(
    hass: HomeAssistant, entry: PhoneHomeConfigEntry, err: RouterHostKeyError
) -> dict[str, str]:
    """Never accept the new key: a repair issue names it; returns the message placeholders."""
    placeholders = {
        "name": entry.title,
        "host": str(entry.data.get(CONF_HOST)),
        "fingerprint": err.fingerprint or "none of the pinned key's type",
    }
    ir.async_create_issue(
        hass,
        DOMAIN,
        host_key_issue_id(entry.entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="host_key_changed",
        translation_placeholders=placeholders,
        learn_more_url=SSH_LEARN_MORE_URL,
    )
    return placeholders


def over_cap_issue_id(entry_id: str) -> str:
    """Repair issue id of a config entry whose router table is too big to read."""
    return f"conntrack_over_cap_{entry_id}"


@dataclass(frozen=True, slots=True)
class PhoneHomeState:
    """One poll, as entities and diagnostics read it."""

    taken_at: datetime
    conntrack_count: int | None
    flows: int
    table_read: bool
    byte_counters: bool
    parse_stats: ParseStats | None
    devices: dict[str, LanDevice]
    """Tracked LAN devices the router knows now, by MAC."""
    activity: dict[str, DeviceActivity]
    """By MAC."""
    poll_duration: float
    """Seconds from the request to the finished analysis."""
    table_source: str = "luci"
    """Capabilities.table_source: "luci", "plugin" or "none" (not read)."""
    analysis: AnalysisResult = field(default_factory=lambda: AnalysisResult({}, ()))
    """The analyzer's active findings per device (by MAC) and this poll's new ones."""
    quarantine_supported: bool = False
    """Capabilities.quarantine: the router, with this login, can quarantine."""
    quarantined: dict[str, QuarantineState] = field(default_factory=dict)
    """By MAC: what the router showed of each quarantine (enforced, blocked packets)."""
    device_traffic: dict[str, DeviceTraffic] = field(default_factory=dict)
    """By MAC: bytes each device sent and received, where the router counts per device
    rather than per connection (UniFi DPI)."""

    @property
    def has_flows(self) -> bool:
        """The source gives connections, so flow entities apply.

        Not with per-device totals only, nor with no source at all (nothing read or counted).
        """
        if self.table_source in TOTALS_ONLY_SOURCES:
            return False
        return self.table_read or self.conntrack_count is not None

    @property
    def kernel_table(self) -> bool:
        """The source is a kernel connection table that is counted (not controller records)."""
        return self.has_flows and self.table_source not in CONTROLLER_SOURCES


class PhoneHomeCoordinator(DataUpdateCoordinator[PhoneHomeState]):
    """Owns the router's polling; entities only read ``data``."""

    config_entry: PhoneHomeConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PhoneHomeConfigEntry,
        router: Router,
        store: PhoneHomeStore,
        stored: dict[str, Any],
    ) -> None:
        options = entry.options
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(
                seconds=options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
            ),
        )
        self.router = router
        self.countries = CountrySource(unknown_country, None)
        """Replaced by the installed country data in ``_async_setup``."""
        window = timedelta(minutes=options.get(CONF_WINDOW, DEFAULT_WINDOW))
        self.tracker = ActivityTracker(window, recent=TOP_DESTINATIONS)
        self.tracked: frozenset[str] = frozenset(
            mac.lower() for mac in options.get(CONF_TRACKED_DEVICES, [])
        )
        self.stale_after = timedelta(days=options.get(CONF_STALE_DAYS, DEFAULT_STALE_DAYS))
        self.last_seen: dict[str, datetime] = {}
        """When the router last listed each LAN device (in memory only)."""
        self.router_id: str | None = entry.unique_id
        self._forgotten: set[str] = set()
        self.store = store
        self.policies: dict[str, Policy] = dict(stored["policies"])
        self.allow: list[AllowEntry] = _allow_entries(stored["allow"])
        self.analyzer = Analyzer(
            AnalyzerSettings(
                window=window,
                fanout_hosts=options.get(CONF_FANOUT_HOSTS, DEFAULT_FANOUT_HOSTS),
                unreplied_attempts=options.get(CONF_UNREPLIED_ATTEMPTS, DEFAULT_UNREPLIED_ATTEMPTS),
                learning_period=timedelta(
                    hours=options.get(CONF_LEARNING_HOURS, DEFAULT_LEARNING_HOURS)
                ),
                lan_resolvers=frozenset(options.get(CONF_LAN_RESOLVERS, [])),
                policies=dict(self.policies),
                allow=tuple(self.allow),
            )
        )
        if stored["analyzer"] is not None:
            try:
                self.analyzer.import_state(stored["analyzer"])
            except (ValueError, KeyError, TypeError, AttributeError):
                _LOGGER.warning("Stored detection state unreadable; starting fresh")
                self.analyzer.forget(list(self.analyzer.export_state()["devices"]))
        self._analyzer_state = self.analyzer.export_state()
        """The analyzer's state as last exported under the lock: what the Store writes."""
        self._lock = asyncio.Lock()
        """One analyzer call at a time: polls run it in the executor."""
        self.quarantines = QuarantineManager(self, stored["quarantines"])

    def policy(self, mac: str) -> Policy:
        """The device's internet policy."""
        return self.policies.get(mac, self.analyzer.settings.default_policy)

    async def async_set_policy(self, mac: str, policy: Policy) -> None:
        """Change a device's policy; switching to learn starts its baseline again."""
        async with self._lock:
            self.policies[mac] = policy
            self.analyzer.apply_settings(
                replace(self.analyzer.settings, policies=dict(self.policies))
            )
            if policy == "learn":
                self.analyzer.reset_baseline(mac, dt_util.utcnow())
            self._export_analyzer()
        self._save()

    async def async_allow(self, entry: AllowEntry) -> None:
        """Never raise a finding for this destination again; current ones clear next poll."""
        async with self._lock:
            if entry not in self.allow:
                self.allow.append(entry)
            self.analyzer.apply_settings(replace(self.analyzer.settings, allow=tuple(self.allow)))
            self._export_analyzer()
        self._save()

    async def async_reset_baseline(self, mac: str) -> None:
        """Learn the device's normal destinations again from now."""
        async with self._lock:
            self.analyzer.reset_baseline(mac, dt_util.utcnow())
            self._export_analyzer()
        self._save()

    def _save(self) -> None:
        """Write within SAVE_DELAY what holds now (never the live analyzer: see ``_analyse``)."""
        data = self._data_to_save()
        self.store.async_delay_save(lambda: data, SAVE_DELAY)

    async def async_save_now(self) -> None:
        """Write at once: a quarantine's intent must survive a crash right after it."""
        await self.store.async_save(self._data_to_save())

    def _data_to_save(self) -> dict[str, Any]:
        return {
            "analyzer": self._analyzer_state,
            "policies": dict(self.policies),
            "allow": [asdict(entry) for entry in self.allow],
            "quarantines": self.quarantines.export(),
        }

    @property
    def analyzer_state(self) -> dict[str, Any]:
        """The analyzer's state as last exported under the lock (what the Store writes)."""
        return self._analyzer_state

    async def async_bounds(self) -> dict[str, dict[str, int]]:
        """What the tracker and analyzer remember, their caps and what the caps dropped.

        Read under the lock, between two polls' executor jobs.
        """
        async with self._lock:
            analyzer, tracker = self.analyzer, self.tracker
            return {
                "baseline": {
                    "entries": analyzer.baseline_entries,
                    "limit": MAX_BASELINE_TOTAL,
                    "device_limit": MAX_BASELINE,
                    "dropped": analyzer.baseline_dropped,
                },
                "detection_window": {
                    "entries": analyzer.destinations,
                    "limit": MAX_DESTINATIONS_TOTAL,
                    "device_limit": MAX_DESTINATIONS,
                    "dropped": analyzer.destinations_dropped,
                },
                "activity_window": {
                    "entries": tracker.destinations,
                    "limit": tracker.max_total,
                    "device_limit": tracker.max_destinations,
                    "dropped": tracker.destinations_dropped,
                },
            }

    def _export_analyzer(self) -> None:
        """Keep the state to store in step with a change made outside a poll (under the lock)."""
        self._analyzer_state = self.analyzer.export_state()

    def forget(self, macs: set[str]) -> None:
        """Stop tracking devices the user removed; the tracker drops them next poll."""
        for mac in macs:
            self.last_seen.pop(mac, None)
        self._forgotten |= macs

    async def _async_setup(self) -> None:
        """Load the country data; start the stale clock of registered devices as if seen now."""
        self.countries = await self.hass.async_add_executor_job(load_country_source)
        self.tracker.country_of = self.analyzer.country_of = self.countries.lookup
        now = dt_util.utcnow()
        registry = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(registry, self.config_entry.entry_id):
            for kind, mac in device.connections:
                if kind == dr.CONNECTION_NETWORK_MAC and mac != self.router_id:
                    self.last_seen.setdefault(mac, now)
        self.quarantines.start()

    async def _async_update_data(self) -> PhoneHomeState:
        """Poll once; map router errors to reauth or a translated UpdateFailed."""
        started = time.monotonic()
        try:
            snapshot = await self.router.snapshot()
        except RouterAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="router_auth_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        except RouterHostKeyError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="router_host_key_changed",
                translation_placeholders=async_create_host_key_issue(
                    self.hass, self.config_entry, err
                ),
            ) from err
        except RouterError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key=_error_key(err),
                translation_placeholders={"error": str(err)},
            ) from err
        ir.async_delete_issue(self.hass, DOMAIN, host_key_issue_id(self.config_entry.entry_id))
        self._update_over_cap_issue(snapshot)
        devices = snapshot.devices
        if self.tracked:
            devices = {mac: device for mac, device in devices.items() if mac in self.tracked}
        now = snapshot.taken_at
        for mac in devices:
            self.last_seen[mac] = now
        stale = self._remove_stale(now) + sorted(self._forgotten)
        self._forgotten = set()
        async with self._lock:
            activity, analysis, self._analyzer_state = await self.hass.async_add_executor_job(
                _analyse, self.tracker, self.analyzer, snapshot.flows, devices, now, stale
            )
        self._announce(analysis.new_findings)
        self._save()  # baselines, learning and findings move with most polls
        await self.quarantines.async_maintain(snapshot, analysis.new_findings)
        return PhoneHomeState(
            taken_at=now,
            conntrack_count=snapshot.conntrack_count,
            flows=len(snapshot.flows),
            table_read=snapshot.table_read,
            byte_counters=snapshot.capabilities.byte_counters,
            parse_stats=snapshot.parse_stats,
            devices=devices,
            activity=activity,
            poll_duration=round(time.monotonic() - started, 3),
            table_source=snapshot.capabilities.table_source,
            analysis=analysis,
            quarantine_supported=snapshot.capabilities.quarantine,
            quarantined=snapshot.quarantined,
            device_traffic=snapshot.device_traffic,
        )

    def _announce(self, findings: tuple[Finding, ...]) -> None:
        """One bus event per new finding."""
        for finding in findings:
            fire_device_event(self.hass, finding.device, finding_data(finding))

    def _update_over_cap_issue(self, snapshot: Snapshot) -> None:
        """Raise the repair issue while the table is too big to read; clear it after."""
        issue_id = over_cap_issue_id(self.config_entry.entry_id)
        if snapshot.table_read or snapshot.conntrack_count is None:  # read, or no table
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="conntrack_over_cap",
            translation_placeholders={
                "count": str(snapshot.conntrack_count),
                "cap": str(self.router.conntrack_cap),
            },
            learn_more_url=LEARN_MORE_URL,
        )

    def _remove_stale(self, now: datetime) -> list[str]:
        """Detach devices unseen for ``stale_days`` from this entry; returns their MACs."""
        cutoff = now - self.stale_after
        stale = [mac for mac, seen in self.last_seen.items() if seen < cutoff]
        if not stale:
            return stale
        registry = dr.async_get(self.hass)
        entry_id = self.config_entry.entry_id
        for mac in stale:
            del self.last_seen[mac]
            device = registry.async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, mac)})
            if device is not None and entry_id in device.config_entries:
                _LOGGER.debug("Removing %s: not seen since %s", mac, cutoff)
                registry.async_update_device(device.id, remove_config_entry_id=entry_id)
        return stale


def _error_key(err: RouterError) -> str:
    if isinstance(err, RouterConnectionError):
        return "router_unreachable"
    if isinstance(err, RouterPermissionError):
        return "router_permission_denied"
    return "router_bad_response"


def destination_data(destination: Destination) -> dict[str, Any]:
    """A device's destination as attributes and service response data."""
    return {
        "ip": destination.ip,
        "port": destination.port,
        "protocol": protocol_name(destination.protocol),
        "country": destination.country,
        "bytes": destination.bytes,
        "first_seen": destination.first_seen.isoformat(),
        "last_seen": destination.last_seen.isoformat(),
    }


def finding_data(finding: Finding) -> dict[str, Any]:
    """A finding as event data and attributes."""
    return {
        "kind": finding.kind,
        "severity": finding.severity,
        "explanation": finding.explanation,
        "signature": finding.signature,
        "first_seen": finding.first_seen.isoformat(),
        "last_seen": finding.last_seen.isoformat(),
        "destinations": [
            {
                "ip": destination.ip,
                "port": destination.port,
                "protocol": destination.protocol,
                "country": destination.country,
            }
            for destination in finding.destinations
        ],
    }


def _allow_entries(stored: list[dict[str, Any]]) -> list[AllowEntry]:
    """Stored allow-list entries; an unreadable one is dropped with a warning."""
    entries: list[AllowEntry] = []
    for item in stored:
        try:
            entries.append(AllowEntry(**item))
        except (TypeError, ValueError):
            _LOGGER.warning("Ignoring unreadable allow-list entry %s", item)
    return entries


def _analyse(  # noqa: PLR0913, PLR0917 - one executor job for both folds
    tracker: ActivityTracker,
    analyzer: Analyzer,
    flows: list[Flow],
    devices: dict[str, LanDevice],
    now: datetime,
    stale: list[str],
) -> tuple[dict[str, DeviceActivity], AnalysisResult, dict[str, Any]]:
    """Runs in the executor: the tracker's and analyzer's state is touched only here.

    Also returns the analyzer's state to store, exported in the same job: the Store
    writes later, in another executor thread, while the next poll may be folding.
    """
    tracker.forget(stale)
    analyzer.forget(stale)
    activity = tracker.update(flows, devices, now)
    analysis = analyzer.update(flows, owners_from(devices.values()), now)
    return activity, analysis, analyzer.export_state()
