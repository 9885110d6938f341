"""Services: quarantine and release devices, allow a destination, reset a baseline, report.

The schemas check only the shape of a call; each value is checked by the service
itself, so that a bad MAC, network, port, protocol or duration (from an automation
or a script as well as the UI) is a translated ServiceValidationError that says
which value is wrong.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.service import async_register_admin_service

from .const import DOMAIN
from .coordinator import destination_data, finding_data
from .core.addresses import normalize_mac
from .core.analyzer import AllowEntry
from .core.labels import clean_label

if TYPE_CHECKING:
    from homeassistant.core import ServiceResponse

    from .coordinator import PhoneHomeCoordinator
    from .data import PhoneHomeConfigEntry

SERVICE_ALLOW_DESTINATION: Final = "allow_destination"
SERVICE_RESET_BASELINE: Final = "reset_baseline"
SERVICE_GET_REPORT: Final = "get_report"
SERVICE_QUARANTINE: Final = "quarantine"
SERVICE_RELEASE: Final = "release"
ATTR_DURATION: Final = "duration"
ATTR_MAC: Final = "mac"
ATTR_DESTINATION: Final = "destination"
ATTR_PORT: Final = "port"
ATTR_PROTOCOL: Final = "protocol"
PROTOCOLS: Final = {"tcp": 6, "udp": 17}
MAX_PORT: Final = 65535
MAX_DURATION: Final = timedelta(days=365)
"""Longest timed quarantine; longer is "until released" (no duration)."""

ALLOW_SCHEMA: Final = vol.All(
    vol.Schema(
        {
            vol.Optional(ATTR_DEVICE_ID): cv.string,
            vol.Optional(ATTR_MAC): cv.string,
            vol.Required(ATTR_DESTINATION): cv.string,
            vol.Optional(ATTR_PORT): object,
            vol.Optional(ATTR_PROTOCOL): object,
        }
    ),
    cv.has_at_least_one_key(ATTR_DEVICE_ID, ATTR_MAC),
)
_TARGET_FIELDS: Final = {
    vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
    vol.Optional(ATTR_ENTITY_ID): cv.entity_ids,
    vol.Optional(ATTR_MAC): cv.string,
}
_ANY_TARGET: Final = cv.has_at_least_one_key(ATTR_DEVICE_ID, ATTR_ENTITY_ID, ATTR_MAC)
QUARANTINE_SCHEMA: Final = vol.All(
    vol.Schema(
        {
            **_TARGET_FIELDS,
            vol.Optional(ATTR_DURATION): object,
        }
    ),
    _ANY_TARGET,
)
RELEASE_SCHEMA: Final = vol.All(vol.Schema(_TARGET_FIELDS), _ANY_TARGET)
RESET_SCHEMA: Final = vol.Schema({vol.Required(ATTR_DEVICE_ID): cv.string})
REPORT_SCHEMA: Final = vol.Schema({vol.Optional(ATTR_DEVICE_ID): cv.string})


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services once, for every config entry of the domain."""

    async def allow_destination(call: ServiceCall) -> None:
        destination = call.data[ATTR_DESTINATION]
        try:
            network = str(ipaddress.ip_network(destination.strip(), strict=False))
        except ValueError as err:
            raise _invalid("invalid_destination", destination=destination) from err
        port = _port(call.data.get(ATTR_PORT))
        protocol = _protocol(call.data.get(ATTR_PROTOCOL))
        coordinator, mac = _device(hass, call)
        await coordinator.async_allow(AllowEntry(network, mac=mac, port=port, protocol=protocol))

    async def reset_baseline(call: ServiceCall) -> None:
        coordinator, mac = _device(hass, call)
        await coordinator.async_reset_baseline(mac)

    async def get_report(call: ServiceCall) -> ServiceResponse:
        if ATTR_DEVICE_ID in call.data:
            coordinator, mac = _device(hass, call)
            return {"devices": {mac: _report(coordinator, mac)}}
        devices: dict[str, Any] = {}
        for coordinator in _coordinators(hass):
            state = coordinator.data
            for mac in sorted(state.devices.keys() | state.activity.keys()):
                devices[mac] = _report(coordinator, mac)
        return {"devices": devices}

    async def quarantine(call: ServiceCall) -> None:
        duration = _duration(call.data.get(ATTR_DURATION))
        for coordinator, mac in _targets(hass, call):
            await coordinator.quarantines.async_quarantine(mac, duration)

    async def release(call: ServiceCall) -> None:
        for coordinator, mac in _targets(hass, call):
            await coordinator.quarantines.async_release(mac)

    async_register_admin_service(hass, DOMAIN, SERVICE_QUARANTINE, quarantine, QUARANTINE_SCHEMA)
    async_register_admin_service(hass, DOMAIN, SERVICE_RELEASE, release, RELEASE_SCHEMA)
    async_register_admin_service(
        hass, DOMAIN, SERVICE_ALLOW_DESTINATION, allow_destination, ALLOW_SCHEMA
    )
    async_register_admin_service(hass, DOMAIN, SERVICE_RESET_BASELINE, reset_baseline, RESET_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_REPORT,
        get_report,
        REPORT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


def _coordinators(hass: HomeAssistant) -> list[PhoneHomeCoordinator]:
    entries: list[PhoneHomeConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    return [
        entry.runtime_data.coordinator
        for entry in entries
        if entry.state is ConfigEntryState.LOADED
    ]


def _device(hass: HomeAssistant, call: ServiceCall) -> tuple[PhoneHomeCoordinator, str]:
    """The coordinator that watches the call's device, and the device's MAC."""
    if ATTR_DEVICE_ID in call.data:
        return _find(
            hass, call.data[ATTR_DEVICE_ID], *_device_macs(hass, call.data[ATTR_DEVICE_ID])
        )
    return _find(hass, call.data[ATTR_MAC], _mac_set(call.data[ATTR_MAC]), None)


def _targets(hass: HomeAssistant, call: ServiceCall) -> list[tuple[PhoneHomeCoordinator, str]]:
    """Each device of ``device_id``, of ``entity_id`` and of ``mac``: its coordinator and MAC.

    A device the router no longer lists is found through its stored quarantine.
    """
    entities = er.async_get(hass)
    device_ids = list(call.data.get(ATTR_DEVICE_ID, []))
    for entity_id in call.data.get(ATTR_ENTITY_ID, []):
        entity = entities.async_get(entity_id)
        device_ids.append(
            entity.device_id if entity is not None and entity.device_id else entity_id
        )
    found = [
        _find(hass, device_id, *_device_macs(hass, device_id), quarantines=True)
        for device_id in device_ids
    ]
    if ATTR_MAC in call.data:
        mac = call.data[ATTR_MAC]
        found.append(_find(hass, mac, _mac_set(mac), None, quarantines=True))
    return found


def _find(
    hass: HomeAssistant,
    name: str,
    macs: set[str],
    entry_ids: set[str] | None,
    *,
    quarantines: bool = False,
) -> tuple[PhoneHomeCoordinator, str]:
    """The first loaded entry (of ``entry_ids``, or any) watching one of ``macs``.

    With ``quarantines``, also a device only the entry's quarantines know, and the router.
    """
    for coordinator in _coordinators(hass):
        if entry_ids is not None and coordinator.config_entry.entry_id not in entry_ids:
            continue
        state = coordinator.data
        for mac in sorted(macs):
            if mac in state.devices or mac in state.activity:
                return coordinator, mac
            if quarantines and (
                mac in coordinator.quarantines.active or mac == coordinator.router_id
            ):
                return coordinator, mac  # a stored quarantine; the router, to refuse it clearly
    raise _invalid("unknown_device", device=name)


def _device_macs(hass: HomeAssistant, device_id: str) -> tuple[set[str], set[str] | None]:
    """A registry device's MACs and config entries; nothing (any entry) when it is unknown."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return set(), None
    macs = {
        mac
        for kind, value in device.connections
        if kind == dr.CONNECTION_NETWORK_MAC and (mac := normalize_mac(value)) is not None
    }
    return macs, device.config_entries


def _mac_set(value: str) -> set[str]:
    mac = normalize_mac(value)
    if mac is None:
        raise _invalid("invalid_mac", mac=value)
    return {mac}


def _port(value: object) -> int | None:
    """A remote port 1-65535 (an integral number or its digits), None when not given."""
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PORT):
        raise _invalid("invalid_port", port=value)
    return int(text)


def _protocol(value: object) -> int | None:
    """The protocol number of "tcp" or "udp", None when not given."""
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in PROTOCOLS:
        raise _invalid("invalid_protocol", protocol=value)
    return PROTOCOLS[value.strip().lower()]


def _duration(value: object) -> timedelta | None:
    """A quarantine's duration: above zero, at most MAX_DURATION; None when not given."""
    if value is None:
        return None
    try:
        duration: timedelta = cv.time_period(value)
    except (vol.Invalid, OverflowError) as err:
        raise _invalid("invalid_duration", duration=value) from err
    if not timedelta(0) < duration <= MAX_DURATION:
        raise _invalid("invalid_duration", duration=value)
    return duration


def _invalid(key: str, **given: object) -> ServiceValidationError:
    """The translated error for a bad value; the value is echoed cleaned and cut."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={
            name: clean_label(str(value)) or repr(value)[:64] for name, value in given.items()
        },
    )


def _report(coordinator: PhoneHomeCoordinator, mac: str) -> dict[str, Any]:
    state = coordinator.data
    device = state.devices.get(mac)
    activity = state.activity.get(mac)
    report = state.analysis.devices.get(mac)
    return {
        "name": (device.name or device.hostname or mac) if device is not None else mac,
        "policy": coordinator.policy(mac),
        "destinations": [
            destination_data(destination)
            for destination in (activity.destinations if activity is not None else ())
        ],
        "findings": [finding_data(f) for f in (report.findings if report is not None else ())],
    }
