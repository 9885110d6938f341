"""Selects: per LAN device, its internet policy (monitor, learn, local only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

from homeassistant.components.select import SelectEntity
from homeassistant.const import EntityCategory

from .entity import PhoneHomeDeviceEntity, async_add_device_entities
from .store import POLICIES

if TYPE_CHECKING:
    from collections.abc import Hashable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .core.analyzer import Policy
    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 0
"""Selecting only touches the analyzer in memory."""

POLICY_OPTIONS: Final = list(POLICIES)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One policy select per LAN device."""
    async_add_device_entities(
        entry, async_add_entities, InternetPolicySelect, "internet_policy", needs_flows=True
    )


class InternetPolicySelect(PhoneHomeDeviceEntity, SelectEntity):
    """How the analyzer judges the device's internet traffic."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_options = POLICY_OPTIONS

    def _read_poll(self) -> Hashable:
        """Only the policy is shown."""
        return self.current_option

    @property
    def current_option(self) -> str:
        """The device's policy (learn unless changed)."""
        return self.coordinator.policy(self._mac)

    async def async_select_option(self, option: str) -> None:
        """Apply the policy from the next poll on and persist it."""
        await self.coordinator.async_set_policy(self._mac, cast("Policy", option))
        self.async_write_ha_state()
