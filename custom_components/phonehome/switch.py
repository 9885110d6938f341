"""Switches: per LAN device, its quarantine (internet cut off, LAN untouched)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.switch import SwitchEntity

from .entity import PhoneHomeDeviceEntity, async_add_device_entities

if TYPE_CHECKING:
    from collections.abc import Hashable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 1
"""The router takes one quarantine change at a time."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One quarantine switch per LAN device, when the router's login may quarantine."""
    if entry.runtime_data.coordinator.data.quarantine_supported:
        async_add_device_entities(entry, async_add_entities, QuarantineSwitch, "quarantine")


class QuarantineSwitch(PhoneHomeDeviceEntity, SwitchEntity):
    """On while the device is quarantined (the stored intent, re-asserted every poll)."""

    def _read_poll(self) -> Hashable:
        """Only whether the device is quarantined is shown."""
        return self.is_on

    @property
    def is_on(self) -> bool:
        """The device is quarantined."""
        return self._mac in self.coordinator.quarantines.active

    async def async_turn_on(self, **kwargs: object) -> None:
        """Quarantine until released; raises a translated error when the router does not take it."""
        await self.coordinator.quarantines.async_quarantine(self._mac)

    async def async_turn_off(self, **kwargs: object) -> None:
        """Release the device."""
        await self.coordinator.quarantines.async_release(self._mac)
