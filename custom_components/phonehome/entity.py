"""Base entities: one Home Assistant device per LAN device (by MAC), via the router."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from homeassistant.core import callback
from homeassistant.helpers.device_registry import CONNECTION_NETWORK_MAC, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import PhoneHomeCoordinator

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

    from homeassistant.helpers.entity import Entity
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .data import PhoneHomeConfigEntry
    from .routers.base import RouterInfo


_NOTHING_WRITTEN: Final = object()


class PhoneHomeEntity(CoordinatorEntity[PhoneHomeCoordinator]):
    """Reads the coordinator's state; never calls the router.

    Writes its state after a poll only when what it shows changed: with hundreds
    of devices most entities stay the same from one poll to the next, and each
    write costs the event loop.
    """

    _attr_has_entity_name = True
    _written: object = _NOTHING_WRITTEN
    """Availability and ``_read_poll()`` as last written."""

    def _read_poll(self) -> Hashable:
        """Take what this entity shows from the latest poll; return it, cheap to compare.

        Entities that keep their values in ``_attr_`` attributes set them here.
        None (the default): nothing beyond availability comes from the poll.
        """
        return None

    @callback
    def async_write_ha_state(self) -> None:
        """Write the latest poll's values, and remember what was written."""
        self._written = (self.available, self._read_poll())
        super().async_write_ha_state()

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write only when availability or what the poll gives this entity changed."""
        shown = (self.available, self._read_poll())
        if shown != self._written:
            self._written = shown
            super().async_write_ha_state()


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


class PhoneHomeDeviceEntity(PhoneHomeEntity):
    """An entity of one LAN device; tells its platform when it goes away."""

    def __init__(
        self,
        coordinator: PhoneHomeCoordinator,
        key: str,
        mac: str,
        router: RouterInfo,
        on_remove: Callable[[str], None],
    ) -> None:
        super().__init__(coordinator)
        self._mac = mac
        self._forget_mac = on_remove
        self._attr_translation_key = key
        self._attr_unique_id = f"{mac}_{key}"
        self._attr_device_info = lan_device_info(coordinator, mac, router)

    async def async_will_remove_from_hass(self) -> None:
        """Let the platform add this device's entities again if it comes back."""
        await super().async_will_remove_from_hass()
        self._forget_mac(self._mac)


def async_track_devices(
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: Callable[[str, Callable[[str], None]], Iterable[Entity]],
) -> None:
    """Add a LAN device's entities now and whenever a new device shows up."""
    coordinator = entry.runtime_data.coordinator
    known: set[str] = set()

    @callback
    def forget(mac: str) -> None:
        known.discard(mac)

    @callback
    def add_new_devices() -> None:
        state = coordinator.data
        new = (state.devices.keys() | state.activity.keys()) - known
        if not new:
            return
        known.update(new)
        async_add_entities(entity for mac in sorted(new) for entity in factory(mac, forget))

    add_new_devices()
    entry.async_on_unload(coordinator.async_add_listener(add_new_devices))


def async_add_device_entities(
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: type[PhoneHomeDeviceEntity],
    key: str,
    *,
    needs_flows: bool = False,
) -> None:
    """One ``entity_class`` entity (translation key ``key``) per LAN device, as devices appear.

    ``needs_flows``: none at all when the router gives per-device totals, no connections.
    """
    data = entry.runtime_data
    if needs_flows and not data.coordinator.data.has_flows:
        return
    async_track_devices(
        entry,
        async_add_entities,
        lambda mac, forget: [entity_class(data.coordinator, key, mac, data.info, forget)],
    )
