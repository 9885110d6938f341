"""Base entities: one Home Assistant device per LAN device (by MAC), via the router."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.helpers.device_registry import CONNECTION_NETWORK_MAC, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import PhoneHomeCoordinator

if TYPE_CHECKING:
    from .routers.base import RouterInfo


class PhoneHomeEntity(CoordinatorEntity[PhoneHomeCoordinator]):
    """Reads the coordinator's state; never calls the router."""

    _attr_has_entity_name = True


def lan_device_info(coordinator: PhoneHomeCoordinator, mac: str, router: RouterInfo) -> DeviceInfo:
    """Matched by MAC connection, so it merges with the device other integrations made.

    The name is only a default: a device another integration already named keeps
    its name.
    """
    device = coordinator.data.devices.get(mac)
    name = (device.name or device.hostname) if device is not None else None
    return DeviceInfo(
        connections={(CONNECTION_NETWORK_MAC, mac)},
        default_name=name or mac,
        via_device=(DOMAIN, router.unique_id),
    )


def router_device_info(router: RouterInfo) -> DeviceInfo:
    """The hub device registered at setup."""
    return DeviceInfo(identifiers={(DOMAIN, router.unique_id)})
