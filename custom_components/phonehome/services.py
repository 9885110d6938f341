"""Services: allow a destination, reset a device's baseline, report what devices do."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.service import async_register_admin_service

from .const import DOMAIN
from .coordinator import destination_data, finding_data
from .core.addresses import normalize_mac
from .core.analyzer import AllowEntry

if TYPE_CHECKING:
    from homeassistant.core import ServiceResponse

    from .coordinator import PhoneHomeCoordinator
    from .data import PhoneHomeConfigEntry

SERVICE_ALLOW_DESTINATION: Final = "allow_destination"
SERVICE_RESET_BASELINE: Final = "reset_baseline"
SERVICE_GET_REPORT: Final = "get_report"
ATTR_MAC: Final = "mac"
ATTR_DESTINATION: Final = "destination"
ATTR_PORT: Final = "port"
ATTR_PROTOCOL: Final = "protocol"
PROTOCOLS: Final = {"tcp": 6, "udp": 17}

ALLOW_SCHEMA: Final = vol.All(
    vol.Schema(
        {
            vol.Optional(ATTR_DEVICE_ID): cv.string,
            vol.Optional(ATTR_MAC): cv.string,
            vol.Required(ATTR_DESTINATION): cv.string,
            vol.Optional(ATTR_PORT): vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
            vol.Optional(ATTR_PROTOCOL): vol.In(list(PROTOCOLS)),
        }
    ),
    cv.has_at_least_one_key(ATTR_DEVICE_ID, ATTR_MAC),
)
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
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_destination",
                translation_placeholders={"destination": destination},
            ) from err
        coordinator, mac = _device(hass, call)
        protocol = call.data.get(ATTR_PROTOCOL)
        await coordinator.async_allow(
            AllowEntry(
                network,
                mac=mac,
                port=call.data.get(ATTR_PORT),
                protocol=PROTOCOLS[protocol] if protocol is not None else None,
            )
        )

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
    wanted = call.data.get(ATTR_DEVICE_ID) or call.data.get(ATTR_MAC, "")
    macs: set[str] = set()
    entry_ids: set[str] | None = None
    if ATTR_DEVICE_ID in call.data:
        device = dr.async_get(hass).async_get(call.data[ATTR_DEVICE_ID])
        if device is not None:
            entry_ids = device.config_entries
            macs = {
                mac
                for kind, value in device.connections
                if kind == dr.CONNECTION_NETWORK_MAC and (mac := normalize_mac(value)) is not None
            }
    elif (mac := normalize_mac(call.data[ATTR_MAC])) is not None:
        macs = {mac}
    for coordinator in _coordinators(hass):
        if entry_ids is not None and coordinator.config_entry.entry_id not in entry_ids:
            continue
        state = coordinator.data
        known = state.devices.keys() | state.activity.keys()
        for mac in sorted(macs & known):
            return coordinator, mac
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_device",
        translation_placeholders={"device": wanted},
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
