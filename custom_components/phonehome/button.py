"""Buttons: per LAN device, start learning its normal destinations again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory

from .entity import PhoneHomeDeviceEntity, async_add_device_entities

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 0
"""Pressing only touches the analyzer in memory."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One reset-baseline button per LAN device."""
    async_add_device_entities(
        entry, async_add_entities, ResetBaselineButton, "reset_baseline", needs_flows=True
    )


class ResetBaselineButton(PhoneHomeDeviceEntity, ButtonEntity):
    """Forget the learned baseline; the device learns again from now."""

    _attr_entity_category = EntityCategory.CONFIG

    async def async_press(self) -> None:
        """Reset the baseline and persist it."""
        await self.coordinator.async_reset_baseline(self._mac)
