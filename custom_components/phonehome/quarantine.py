"""Quarantines: cut a device off the internet, keep it cut across polls and restarts, release it.

Each change is written ahead: the Store holds the intent ("pending") before the
router is called, and the confirmed result after. A call the router refuses
restores what was stored; an intent left by a stop or crash is carried out at
the next start. Every poll re-applies a stored quarantine the router no longer
enforces; the first poll also adopts the blocks the router holds that the Store
lost.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components import network
from homeassistant.const import CONF_HOST
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .const import (
    CONF_AUTO_QUARANTINE,
    CONF_AUTO_QUARANTINE_MINUTES,
    CONF_PROTECTED_DEVICES,
    DEFAULT_AUTO_QUARANTINE_MINUTES,
    DOMAIN,
    EVENT_FINDING,
)
from .routers.base import (
    LanDevice,
    QuarantineRecord,
    RouterAuthError,
    RouterConnectionError,
    RouterError,
    RouterPermissionError,
    RouterVerificationError,
    quarantine_name,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from homeassistant.core import CALLBACK_TYPE, HomeAssistant

    from .coordinator import PhoneHomeCoordinator
    from .core.analyzer import Finding
    from .routers.base import Snapshot

_LOGGER = logging.getLogger(__name__)

EVENT_QUARANTINED: Final = "quarantined"
EVENT_RELEASED: Final = "released"
EVENT_AUTO_QUARANTINED: Final = "auto_quarantined"
QUARANTINE_EVENTS: Final = (EVENT_QUARANTINED, EVENT_RELEASED, EVENT_AUTO_QUARANTINED)
PENDING_QUARANTINE: Final = "quarantine"
PENDING_RELEASE: Final = "release"
PENDING: Final = (PENDING_QUARANTINE, PENDING_RELEASE)
REASON_RESUMED: Final = "resumed"
"""Event reason of a change Home Assistant stopped in the middle of and finished at start."""
REASON_ADOPTED: Final = "adopted"
"""Event reason of a block found on the router that the Store had lost."""


def signal_quarantine(entry_id: str) -> str:
    """Dispatcher signal of a config entry's quarantine changes: (mac, event type, data)."""
    return f"{DOMAIN}_{entry_id}_quarantine"


def lost_issue_id(mac: str) -> str:
    """Repair issue of a quarantine the router stopped enforcing."""
    return f"quarantine_lost_{mac.replace(':', '')}"


def auto_failed_issue_id(mac: str) -> str:
    """Repair issue of an automatic quarantine the router did not take."""
    return f"auto_quarantine_failed_{mac.replace(':', '')}"


def resume_failed_issue_id(mac: str) -> str:
    """Repair issue of a quarantine or release left half done that the router did not take."""
    return f"resume_failed_{mac.replace(':', '')}"


def adopted_issue_id(mac: str) -> str:
    """Repair issue of a block the router held that the Store had no record of."""
    return f"quarantine_adopted_{mac.replace(':', '')}"


class QuarantineError(HomeAssistantError):
    """The router did not take a quarantine or release; the message says why and what to do."""


class QuarantineRefusedError(ServiceValidationError):
    """The device may never be quarantined: the router, this Home Assistant, or protected."""


@dataclass(frozen=True, slots=True)
class Quarantine:
    """One device's quarantine as stored: what the router holds, since when, until when."""

    record: QuarantineRecord
    start: datetime
    end: datetime | None = None
    pending: str | None = None
    """The change written ahead of the router call ("quarantine" or "release") until the
    router confirms it; None once settled."""

    def as_dict(self) -> dict[str, Any]:
        """The Store's shape: {name, addresses, flows_cut, station_blocked, start, end, pending}.

        ``station_blocked`` came with UniFi's full block; a file without it blocked nothing.
        A file without ``pending`` (1.2) holds settled quarantines only.
        """
        return {
            "name": self.record.name,
            "addresses": list(self.record.addresses),
            "flows_cut": self.record.flows_cut,
            "station_blocked": self.record.station_blocked,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end is not None else None,
            "pending": self.pending,
        }

    @classmethod
    def from_dict(cls, mac: str, data: dict[str, Any]) -> Quarantine:
        """Raises ValueError, TypeError or KeyError for a stored entry it cannot read."""
        start = dt_util.parse_datetime(data["start"], raise_on_error=True)
        end = dt_util.parse_datetime(data["end"], raise_on_error=True) if data["end"] else None
        addresses = data.get("addresses", [])
        if not isinstance(addresses, list):
            raise TypeError(addresses)
        pending = data.get("pending")
        if pending is not None and pending not in PENDING:
            raise ValueError(pending)
        return cls(
            QuarantineRecord(
                mac=mac,
                name=str(data.get("name") or quarantine_name(mac)),
                addresses=tuple(str(address) for address in addresses),
                flows_cut=bool(data.get("flows_cut", False)),
                station_blocked=data.get("station_blocked") is True,
            ),
            start,
            end,
            pending,
        )


def quarantine_data(quarantine: Quarantine) -> dict[str, Any]:
    """A quarantine as event data and diagnostics: when it started and ends."""
    return {
        "start": quarantine.start.isoformat(),
        "end": quarantine.end.isoformat() if quarantine.end is not None else None,
    }


def _still_held(record: QuarantineRecord, previous: Quarantine | None) -> QuarantineRecord:
    """A quarantine applied again keeps the full block the earlier one made, for release."""
    if previous is None or not previous.record.station_blocked:
        return record
    return replace(record, station_blocked=True)


def _failure(err: RouterError, device: str) -> QuarantineError:
    """The router's error as a translated one a person can act on."""
    placeholders = {"device": device, "error": str(err)}
    if isinstance(err, RouterConnectionError):
        key = "quarantine_router_unreachable"
    elif isinstance(err, RouterPermissionError):
        key = "quarantine_permission_denied"
        placeholders["acl"] = err.acl or "unknown"
    elif isinstance(err, RouterVerificationError):
        key = "quarantine_not_verified"
    elif isinstance(err, RouterAuthError):
        key = "quarantine_auth_failed"
    else:
        key = "quarantine_bad_response"
    return QuarantineError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def ip_set(values: Iterable[str]) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The values that are IP addresses (a zone index dropped); names and junk skipped."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for value in values:
        try:
            found.add(ipaddress.ip_address(value.split("%")[0]))
        except ValueError:
            continue
    return found


class QuarantineManager:
    """A config entry's quarantines: the Store's intent, held true on the router."""

    def __init__(self, coordinator: PhoneHomeCoordinator, stored: dict[str, Any]) -> None:
        self.coordinator = coordinator
        self.hass = coordinator.hass
        self.entry = coordinator.config_entry
        options = self.entry.options
        self.protected = frozenset(mac.lower() for mac in options.get(CONF_PROTECTED_DEVICES, []))
        self.auto_kinds = frozenset(options.get(CONF_AUTO_QUARANTINE, []))
        minutes = options.get(CONF_AUTO_QUARANTINE_MINUTES, DEFAULT_AUTO_QUARANTINE_MINUTES)
        self.auto_duration = timedelta(minutes=minutes) if minutes else None
        self.active: dict[str, Quarantine] = {}
        """By MAC: every quarantine the user (or auto-quarantine) asked for; ``pending``
        until the router took it."""
        self.releasing: dict[str, Quarantine] = {}
        """By MAC: releases asked for that the router has not confirmed (a stop cut them short)."""
        for mac, item in stored.items():
            try:
                quarantine = Quarantine.from_dict(mac, item)
            except (ValueError, TypeError, KeyError):
                _LOGGER.warning("Ignoring unreadable stored quarantine of %s: %s", mac, item)
                continue
            held = self.releasing if quarantine.pending == PENDING_RELEASE else self.active
            held[mac] = quarantine
        self.devices: dict[str, LanDevice] = {}
        """Every LAN device of the last poll (tracked or not), by MAC."""
        self.supported = False
        """The router, with this login, can quarantine (Capabilities.quarantine)."""
        self._lock = asyncio.Lock()
        """One quarantine or release at a time on this router."""
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self.entry.async_on_unload(self._cancel_timers)
        self._lost: set[str] = set()
        """MACs whose block the router lost and does not enforce again yet (logged once)."""
        self._failing: set[str] = set()
        """MACs whose half-done change the router has not taken yet (logged once)."""
        self._adopting = True
        """Until the first poll that reads the router's quarantines (see ``_adopt``)."""
        self._uncertain: dict[str, Quarantine] = {}
        """By MAC: quarantines whose call was cut off before the router answered; the
        router may have taken them (see ``_settle_uncertain``)."""

    def export(self) -> dict[str, Any]:
        """The Store's ``quarantines``: the settled ones and the pending changes."""
        held = self.active | self.releasing
        return {mac: quarantine.as_dict() for mac, quarantine in sorted(held.items())}

    def start(self) -> None:
        """Schedule the end of every stored timed quarantine (ended ones go at the first poll)."""
        now = dt_util.utcnow()
        for mac, quarantine in self.active.items():
            if quarantine.end is not None and quarantine.end > now:
                self._schedule(mac, quarantine.end)

    async def async_quarantine(
        self, mac: str, duration: timedelta | None = None, reason: str = "user"
    ) -> Quarantine:
        """Quarantine the device for ``duration`` (None: until released), once verified."""
        device = self._device(mac)
        await self._check_target(device)
        async with self._lock:
            try:
                quarantine = await self._apply(device, duration)
            except RouterError as err:
                raise _failure(err, self._label(mac)) from err
        self._announce(mac, EVENT_QUARANTINED, {"reason": reason, **quarantine_data(quarantine)})
        return quarantine

    async def async_release(self, mac: str, reason: str = "user") -> None:
        """Remove the device's block; one the router no longer has is released all the same."""
        async with self._lock:
            try:
                await self._release(mac, reason)
            except RouterError as err:
                raise _failure(err, self._label(mac)) from err

    async def async_maintain(self, snapshot: Snapshot, new_findings: tuple[Finding, ...]) -> None:
        """Each poll: finish half-done changes, release ended ones, re-apply lost ones, auto.

        Never raises: what the router does not take becomes a repair issue, tried again.
        """
        self.devices = snapshot.devices
        self.supported = snapshot.capabilities.quarantine
        async with self._lock:
            if self._adopting and self.supported:
                self._adopting = False
                await self._adopt(snapshot)
            if self.supported:
                await self._settle_uncertain(snapshot)
            now = dt_util.utcnow()
            for mac, quarantine in list(self.active.items()):
                if quarantine.end is not None and quarantine.end <= now:
                    await self._release_quietly(mac, "expired")
            for mac, quarantine in list(self.releasing.items()):
                await self._resume_release(mac, quarantine)
            for mac, quarantine in list(self.active.items()):
                if quarantine.pending is not None:
                    await self._resume_quarantine(mac, quarantine)
                elif self.supported:  # unseen without the rights: not lost
                    await self._hold(mac, quarantine, snapshot)
            for finding in new_findings:
                if finding.kind in self.auto_kinds:
                    await self._auto_quarantine(finding)

    async def _apply(self, device: LanDevice, duration: timedelta | None) -> Quarantine:
        """Write the intent, have the router block the device, then store what it confirmed.

        A refusal stores again what was there before, and raises.
        """
        mac = device.mac
        previous = self.active.get(mac)
        releasing = self.releasing.pop(mac, None)
        held = previous or releasing
        now = dt_util.utcnow()
        intent = Quarantine(
            held.record
            if held is not None
            else QuarantineRecord(mac, quarantine_name(mac), device.ipv4 + device.ipv6),
            previous.start if previous is not None else now,
            now + duration if duration is not None else None,
            PENDING_QUARANTINE,
        )
        self.active[mac] = intent
        await self.coordinator.async_save_now()
        self._uncertain.pop(mac, None)
        try:
            record = await self.coordinator.router.quarantine(device)
        except RouterError as err:
            self._restore(mac, previous, releasing)
            if isinstance(err, RouterConnectionError) and previous is None:
                self._uncertain[mac] = intent
            await self.coordinator.async_save_now()
            raise
        quarantine = replace(intent, record=_still_held(record, held), pending=None)
        self.active[mac] = quarantine
        await self.coordinator.async_save_now()
        self._settled(mac)
        self._schedule(mac, quarantine.end)
        return quarantine

    async def _release(self, mac: str, reason: str) -> None:
        """Write the intent, have the router remove the block, then forget it.

        A refusal stores again what was there before, and raises. The record of a MAC
        not stored is made up: the router may hold a block by its name all the same.
        """
        previous = self.active.pop(mac, None)
        releasing = self.releasing.get(mac)
        held = (
            previous
            or releasing
            or Quarantine(QuarantineRecord(mac, quarantine_name(mac)), dt_util.utcnow())
        )
        intent = replace(held, pending=PENDING_RELEASE)
        self.releasing[mac] = intent
        await self.coordinator.async_save_now()
        try:
            await self.coordinator.router.release(intent.record)
        except RouterError:
            self._restore(mac, previous, releasing)
            await self.coordinator.async_save_now()
            raise
        await self._forget(mac, reason)

    def _restore(self, mac: str, active: Quarantine | None, releasing: Quarantine | None) -> None:
        """Hold again what was stored before a change the router refused."""
        self.active.pop(mac, None)
        self.releasing.pop(mac, None)
        if active is not None:
            self.active[mac] = active
        if releasing is not None:
            self.releasing[mac] = releasing

    async def _forget(self, mac: str, reason: str) -> None:
        """The router released the device: drop it, its timer and its notices; store; tell."""
        self.releasing.pop(mac, None)
        self._lost.discard(mac)
        self._failing.discard(mac)
        if (cancel := self._timers.pop(mac, None)) is not None:
            cancel()
        for issue_id in (lost_issue_id(mac), resume_failed_issue_id(mac), adopted_issue_id(mac)):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        await self.coordinator.async_save_now()
        self._announce(mac, EVENT_RELEASED, {"reason": reason})

    def _settled(self, mac: str) -> None:
        """The router took a quarantine: the notices about earlier attempts go."""
        if mac in self._failing:
            _LOGGER.info("The router took the change of %s left by the restart", mac)
            self._failing.discard(mac)
        for issue_id in (
            auto_failed_issue_id(mac),
            resume_failed_issue_id(mac),
            adopted_issue_id(mac),
        ):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)

    async def _release_quietly(self, mac: str, reason: str) -> None:
        try:
            await self._release(mac, reason)
        except RouterError as err:
            _LOGGER.warning("Cannot release %s yet (%s); trying again next poll", mac, err)

    async def _adopt(self, snapshot: Snapshot) -> None:
        """Keep and show each block by this integration's name that the Store has no record of.

        The Store was lost or unreadable, or an older version was stopped mid-change.
        Only the first poll does this: a later snapshot, read while a release was under
        way, would bring the released device back.
        """
        now = dt_util.utcnow()
        adopted: list[str] = []
        for mac, seen in snapshot.quarantined.items():
            if not seen.enforced or mac in self.active or mac in self.releasing:
                continue
            device = self._device(mac)
            record = QuarantineRecord(mac, quarantine_name(mac), device.ipv4 + device.ipv6)
            self.active[mac] = Quarantine(record, now)
            adopted.append(mac)
            _LOGGER.warning("The router blocks %s by a quarantine not on record; keeping it", mac)
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                adopted_issue_id(mac),
                is_fixable=False,
                is_persistent=True,
                severity=ir.IssueSeverity.WARNING,
                translation_key="quarantine_adopted",
                translation_placeholders={"device": self._label(mac), "name": record.name},
            )
        if not adopted:
            return
        await self.coordinator.async_save_now()
        for mac in adopted:
            data = quarantine_data(self.active[mac])
            self._announce(mac, EVENT_QUARANTINED, {"reason": REASON_ADOPTED, **data})

    async def _settle_uncertain(self, snapshot: Snapshot) -> None:
        """Keep a quarantine the router took although its call was cut off before the answer.

        The user asked for it and was told it failed; the router shows whether it holds
        it. Held: it is recorded as asked (duration included). Not held: nothing to do.
        """
        uncertain, self._uncertain = self._uncertain, {}
        for mac, intent in uncertain.items():
            seen = snapshot.quarantined.get(mac)
            if seen is None or not seen.enforced or mac in self.active or mac in self.releasing:
                continue
            quarantine = replace(intent, pending=None)
            self.active[mac] = quarantine
            _LOGGER.info("The router took the quarantine of %s after all; keeping it", mac)
            await self.coordinator.async_save_now()
            self._schedule(mac, quarantine.end)
            data = quarantine_data(quarantine)
            self._announce(mac, EVENT_QUARANTINED, {"reason": REASON_RESUMED, **data})

    async def _resume_quarantine(self, mac: str, quarantine: Quarantine) -> None:
        """Apply a quarantine whose intent a stop left written; a repair issue while it fails."""
        try:
            record = await self.coordinator.router.quarantine(self._device(mac, quarantine))
        except RouterError as err:
            self._resume_failed(mac, "quarantine_resume_failed", err)
            return
        settled = replace(quarantine, record=_still_held(record, quarantine), pending=None)
        self.active[mac] = settled
        await self.coordinator.async_save_now()
        self._settled(mac)
        data = quarantine_data(settled)
        self._announce(mac, EVENT_QUARANTINED, {"reason": REASON_RESUMED, **data})

    async def _resume_release(self, mac: str, quarantine: Quarantine) -> None:
        """Release a device whose release a stop left written; a repair issue while it fails."""
        try:
            await self.coordinator.router.release(quarantine.record)
        except RouterError as err:
            self._resume_failed(mac, "release_resume_failed", err)
            return
        await self._forget(mac, REASON_RESUMED)

    def _resume_failed(self, mac: str, key: str, err: RouterError) -> None:
        if mac not in self._failing:  # one line when it breaks, one when it is done
            _LOGGER.warning(
                "Cannot finish the change of %s left by the restart yet (%s); "
                "trying again every poll",
                mac,
                err,
            )
            self._failing.add(mac)
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            resume_failed_issue_id(mac),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=key,
            translation_placeholders={"device": self._label(mac), "error": str(err)},
        )

    async def _hold(self, mac: str, quarantine: Quarantine, snapshot: Snapshot) -> None:
        """A settled quarantine: no lost notice while the router enforces it; else re-apply."""
        seen = snapshot.quarantined.get(mac)
        if seen is None or not seen.enforced:
            await self._reassert(mac, quarantine)
            return
        if mac in self._lost:
            _LOGGER.info("The router blocks %s again", mac)
            self._lost.discard(mac)
        ir.async_delete_issue(self.hass, DOMAIN, lost_issue_id(mac))

    async def _reassert(self, mac: str, quarantine: Quarantine) -> None:
        """Apply a stored quarantine the router lost again; a repair issue says so."""
        if mac not in self._lost:  # one line when it breaks, one when it holds again
            _LOGGER.warning("The router no longer blocks %s; applying its quarantine again", mac)
            self._lost.add(mac)
        error = ""
        try:
            record = await self.coordinator.router.quarantine(self._device(mac, quarantine))
        except RouterError as err:
            _LOGGER.debug("Cannot quarantine %s again: %s", mac, err)
            error = str(err)
        else:
            self.active[mac] = replace(quarantine, record=_still_held(record, quarantine))
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            lost_issue_id(mac),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR if error else ir.IssueSeverity.WARNING,
            translation_key="quarantine_failed" if error else "quarantine_lost",
            translation_placeholders={"device": self._label(mac), "error": error},
        )

    async def _auto_quarantine(self, finding: Finding) -> None:
        """Quarantine a device a chosen finding names; a failure becomes a repair issue."""
        mac = finding.device
        device = self._device(mac)
        if not self.supported or mac in self.active or await self._refusal(device) is not None:
            return
        try:
            quarantine = await self._apply(device, self.auto_duration)
        except RouterError as err:
            _LOGGER.warning("Cannot quarantine %s automatically: %s", mac, err)
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                auto_failed_issue_id(mac),
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="auto_quarantine_failed",
                translation_placeholders={
                    "device": self._label(mac),
                    "kind": finding.kind,
                    "error": str(err),
                },
            )
            return
        _LOGGER.info("Quarantined %s automatically after a %s finding", mac, finding.kind)
        self._announce(
            mac,
            EVENT_AUTO_QUARANTINED,
            {"reason": "auto", "finding": finding.kind, **quarantine_data(quarantine)},
        )

    async def _check_target(self, device: LanDevice) -> None:
        if not self.supported:
            raise QuarantineError(
                translation_domain=DOMAIN,
                translation_key="quarantine_unsupported",
                translation_placeholders={"device": self._label(device.mac)},
            )
        if (key := await self._refusal(device)) is not None:
            raise QuarantineRefusedError(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders={"device": self._label(device.mac)},
            )

    async def _refusal(self, device: LanDevice) -> str | None:
        """Why the device must never be cut off (a translation key), or None."""
        mac = device.mac
        if mac in self.protected:
            return "quarantine_refused_protected"
        addresses = ip_set(device.ipv4 + device.ipv6)
        router_host = self.entry.data.get(CONF_HOST, "").strip("[]")  # the demo has none
        if mac in {self.coordinator.router_id, self.entry.unique_id} or addresses & ip_set(
            [router_host]
        ):
            return "quarantine_refused_router"
        own = [
            entry["address"]
            for adapter in await network.async_get_adapters(self.hass)
            for entry in (*adapter["ipv4"], *adapter["ipv6"])
        ]
        if addresses & ip_set(own):
            return "quarantine_refused_ha_host"
        return None

    def _device(self, mac: str, stored: Quarantine | None = None) -> LanDevice:
        """The device as the router listed it last, else as it was when quarantined."""
        if (device := self.devices.get(mac)) is not None:
            return device
        addresses = stored.record.addresses if stored is not None else ()
        return LanDevice(
            mac,
            ipv4=tuple(a for a in addresses if ":" not in a),
            ipv6=tuple(a for a in addresses if ":" in a),
        )

    def _label(self, mac: str) -> str:
        """The device's name and MAC, for messages."""
        device = self.devices.get(mac)
        name = (device.name or device.hostname) if device is not None else None
        return f"{name} ({mac})" if name else mac

    def _schedule(self, mac: str, end: datetime | None) -> None:
        if (cancel := self._timers.pop(mac, None)) is not None:
            cancel()
        if end is None:
            return

        async def expire(_now: datetime) -> None:
            self._timers.pop(mac, None)
            async with self._lock:
                if mac in self.active:
                    await self._release_quietly(mac, "expired")

        self._timers[mac] = async_track_point_in_utc_time(self.hass, expire, end)

    def _cancel_timers(self) -> None:
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()

    def _announce(self, mac: str, kind: str, data: dict[str, Any]) -> None:
        """Tell the device's event entity, refresh every entity, then tell the bus."""
        async_dispatcher_send(self.hass, signal_quarantine(self.entry.entry_id), mac, kind, data)
        self.coordinator.async_update_listeners()
        fire_device_event(self.hass, mac, {"kind": kind} | data)


def fire_device_event(hass: HomeAssistant, mac: str, data: dict[str, Any]) -> None:
    """The bus event ``phonehome_finding`` about one LAN device: its MAC, device id, then data."""
    device = dr.async_get(hass).async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, mac)})
    hass.bus.async_fire(
        EVENT_FINDING, {"mac": mac, "device_id": device.id if device is not None else None} | data
    )
