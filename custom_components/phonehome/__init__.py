"""Phone Home Guard: see which internet hosts each LAN device talks to."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import Platform
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)

from .const import CONF_ROUTER_KIND, DOMAIN, MANUFACTURERS, ROUTER_KIND_OPENWRT
from .coordinator import PhoneHomeCoordinator, async_create_host_key_issue, host_key_issue_id
from .core.addresses import normalize_mac
from .data import PhoneHomeConfigEntry, PhoneHomeData
from .quarantine import (
    Quarantine,
    adopted_issue_id,
    lost_issue_id,
    resume_failed_issue_id,
)
from .router_factory import create_router
from .routers.base import (
    QuarantineRecord,
    RouterAuthError,
    RouterConnectionError,
    RouterError,
    RouterHostKeyError,
    quarantine_name,
)
from .services import async_setup_services
from .store import PhoneHomeStore, store_unreadable_issue_id

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.typing import ConfigType

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]


CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

_LOGGER = logging.getLogger(__name__)

REMOVAL_TIMEOUT: Final = 60
"""Seconds removing an entry may spend releasing its quarantines on the router."""


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once, whatever the number of routers."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PhoneHomeConfigEntry) -> bool:
    """Log in to the router, poll it once, and set up the sensors."""
    router = create_router(hass, entry.data, entry.options)
    try:
        info = await router.connect()
    except RouterAuthError as err:
        await router.close()
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="router_auth_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    except RouterHostKeyError as err:
        await router.close()
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="router_host_key_changed",
            translation_placeholders=async_create_host_key_issue(hass, entry, err),
        ) from err
    except RouterError as err:
        await router.close()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key=(
                "router_unreachable"
                if isinstance(err, RouterConnectionError)
                else "router_bad_response"
            ),
            translation_placeholders={"error": str(err)},
        ) from err
    ir.async_delete_issue(hass, DOMAIN, host_key_issue_id(entry.entry_id))

    store = PhoneHomeStore(hass, entry.entry_id)
    coordinator = PhoneHomeCoordinator(
        hass, entry, router, store, await store.async_load_safe(entry.title)
    )
    coordinator.router_id = info.unique_id
    try:
        await coordinator.async_config_entry_first_refresh()
    except Exception:
        await router.close()
        raise
    entry.runtime_data = PhoneHomeData(router=router, coordinator=coordinator, info=info)

    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, info.unique_id)},
        # A UniFi site is no MAC: its id is the controller's and the site's name.
        connections=(
            {(dr.CONNECTION_NETWORK_MAC, mac)}
            if (mac := normalize_mac(info.unique_id)) is not None
            else set()
        ),
        manufacturer=MANUFACTURERS[entry.data.get(CONF_ROUTER_KIND, ROUTER_KIND_OPENWRT)],
        name=info.name,
        model=info.model,
        sw_version=info.firmware,
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PhoneHomeConfigEntry) -> bool:
    """Remove the sensors, write what waits to be stored, and log out of the router.

    Written now, not after the Store's delay: a reload reads it at once, and a delayed
    write must not overwrite what the next setup (or a removal) did since.
    """
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.coordinator.async_save_now()
        await entry.runtime_data.router.close()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: PhoneHomeConfigEntry) -> None:
    """Release the entry's quarantines on the router, then delete its state and notices.

    A device the router could not release stays cut off: a repair issue names it.
    """
    store = PhoneHomeStore(hass, entry.entry_id)
    records = _records((await store.async_load_safe(entry.title))["quarantines"])
    blocked, error = await _async_release_all(hass, entry, records)
    await store.async_remove()
    for mac in records:
        for issue_id in (lost_issue_id(mac), resume_failed_issue_id(mac), adopted_issue_id(mac)):
            ir.async_delete_issue(hass, DOMAIN, issue_id)
    for issue_id in (host_key_issue_id(entry.entry_id), store_unreadable_issue_id(entry.entry_id)):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
    if blocked:
        _LOGGER.warning("Could not release %s on removal (%s)", ", ".join(blocked), error)
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"quarantines_left_{entry.entry_id}",
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="quarantines_left",
            translation_placeholders={
                "name": entry.title,
                "devices": ", ".join(blocked),
                "rules": ", ".join(records[mac].name for mac in blocked),
                "error": error,
            },
        )


def _records(stored: dict[str, Any]) -> dict[str, QuarantineRecord]:
    """What each stored quarantine put on the router (made up by name where unreadable)."""
    records: dict[str, QuarantineRecord] = {}
    for mac, item in stored.items():
        try:
            records[mac] = Quarantine.from_dict(mac, item).record
        except (ValueError, TypeError, KeyError):
            records[mac] = QuarantineRecord(mac, quarantine_name(mac))
    return records


async def _async_release_all(
    hass: HomeAssistant, entry: PhoneHomeConfigEntry, records: dict[str, QuarantineRecord]
) -> tuple[list[str], str]:
    """Connect once and release every stored block; the MACs still blocked, sorted, and why.

    Blocks the Store had lost are in it since the first poll adopted them. Without any,
    the router is not contacted: removing the entry of a router gone for good is instant.
    """
    if not records:
        return [], ""
    router = create_router(hass, entry.data, entry.options)
    blocked = set(records)
    error = ""
    try:
        async with asyncio.timeout(REMOVAL_TIMEOUT):
            await router.connect()
            for mac, record in records.items():
                try:
                    await router.release(record)
                except RouterError as err:
                    error = str(err)
                else:
                    blocked.discard(mac)
    except RouterError as err:
        error = str(err)
    except TimeoutError:
        error = f"the router took longer than {REMOVAL_TIMEOUT} s"
    finally:
        await router.close()
    return sorted(blocked), error


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: PhoneHomeConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a LAN device the router does not list right now."""
    data = entry.runtime_data
    if (DOMAIN, data.info.unique_id) in device.identifiers:
        return False
    current = data.coordinator.data.devices
    macs = {mac for kind, mac in device.connections if kind == dr.CONNECTION_NETWORK_MAC}
    if macs & current.keys():
        return False
    data.coordinator.forget(macs)
    return True


async def _async_options_updated(hass: HomeAssistant, entry: PhoneHomeConfigEntry) -> None:
    """New options (interval, window, devices, cap) take effect through a reload."""
    await hass.config_entries.async_reload(entry.entry_id)
