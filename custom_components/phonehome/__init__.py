"""Phone Home Guard: see which internet hosts each LAN device talks to."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from .router_factory import create_router
from .routers.base import (
    RouterAuthError,
    RouterConnectionError,
    RouterError,
    RouterHostKeyError,
)
from .services import async_setup_services
from .store import PhoneHomeStore

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
    coordinator = PhoneHomeCoordinator(hass, entry, router, store, await store.async_load_safe())
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
    """Remove the sensors and log out of the router."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.router.close()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: PhoneHomeConfigEntry) -> None:
    """Delete the entry's stored detection state, and its host key repair issue."""
    await PhoneHomeStore(hass, entry.entry_id).async_remove()
    ir.async_delete_issue(hass, DOMAIN, host_key_issue_id(entry.entry_id))


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
