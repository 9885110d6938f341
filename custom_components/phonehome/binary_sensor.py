"""Binary sensors: per LAN device, whether it is phoning home (any finding active)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity

from .coordinator import finding_data
from .entity import PhoneHomeDeviceEntity, async_add_device_entities

if TYPE_CHECKING:
    from collections.abc import Hashable

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
    _shown_findings: Hashable = None
    """What the attribute was made from (None: not yet)."""

    def _read_poll(self) -> Hashable:
        """The device's active findings; the attribute is made again only when they changed."""
        report = self.coordinator.data.analysis.devices.get(self._mac)
        findings = report.findings if report is not None else ()
        shown = tuple(
            (
                finding.kind,
                finding.severity,
                finding.explanation,
                finding.signature,
                finding.first_seen,
                finding.destinations,
            )
            for finding in findings
        )
        if shown != self._shown_findings:
            self._shown_findings = shown
            self._attr_is_on = bool(findings)
            self._attr_extra_state_attributes = {
                "findings": [_finding_attribute(finding) for finding in findings]
            }
        return shown


def _finding_attribute(finding: Finding) -> dict[str, Any]:
    """A finding as the attribute lists it: without its last seen time, which moves every poll."""
    data = finding_data(finding)
    del data["last_seen"]
    return data
