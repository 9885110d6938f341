"""Binary sensors: per LAN device, whether it is phoning home (any finding active)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity

from .coordinator import finding_data
from .entity import PhoneHomeDeviceEntity, async_add_device_entities

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .core.analyzer import Finding
    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 0
"""Entities only read the coordinator."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One phoning-home sensor per LAN device."""
    async_add_device_entities(
        entry, async_add_entities, PhoningHomeSensor, "phoning_home", needs_flows=True
    )


class PhoningHomeSensor(PhoneHomeDeviceEntity, BinarySensorEntity):
    """On while the analyzer has any finding for the device."""

    _attr_device_class = BinarySensorDeviceClass.PROBLEM
    _unrecorded_attributes = frozenset({"findings"})

    def _findings(self) -> tuple[Finding, ...]:
        report = self.coordinator.data.analysis.devices.get(self._mac)
        return report.findings if report is not None else ()

    @property
    def is_on(self) -> bool:
        """Whether any finding is active."""
        return bool(self._findings())

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """The active findings (excluded from the recorder)."""
        return {"findings": [finding_data(finding) for finding in self._findings()]}
