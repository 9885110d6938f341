"""Events: per LAN device, one event per new finding, quarantine and release."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.event import EventEntity
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import FINDING_KINDS
from .coordinator import finding_data
from .entity import PhoneHomeDeviceEntity, async_add_device_entities
from .quarantine import QUARANTINE_EVENTS, signal_quarantine

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .core.analyzer import AnalysisResult
    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 0
"""Entities only read the coordinator."""

EVENT_TYPES: Final = [*FINDING_KINDS, *QUARANTINE_EVENTS]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One phone-home event entity per LAN device."""
    async_add_device_entities(entry, async_add_entities, PhoneHomeEvent, "phone_home")


class PhoneHomeEvent(PhoneHomeDeviceEntity, EventEntity):
    """Triggered by each new finding of the device, and when it is quarantined or released."""

    _attr_event_types = EVENT_TYPES
    _unrecorded_attributes = frozenset({"destinations"})
    _announced: AnalysisResult | None = None
    """The poll whose findings were triggered last (listeners also update between polls)."""

    async def async_added_to_hass(self) -> None:
        """Also announce the findings of the poll that made this device known."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_quarantine(self.coordinator.config_entry.entry_id),
                self._handle_quarantine,
            )
        )
        self._trigger_new_findings()

    @callback
    def _handle_coordinator_update(self) -> None:
        self._trigger_new_findings()
        super()._handle_coordinator_update()

    @callback
    def _handle_quarantine(self, mac: str, kind: str, data: dict[str, Any]) -> None:
        if mac == self._mac:
            self._trigger_event(kind, data)
            self.async_write_ha_state()

    def _trigger_new_findings(self) -> None:
        """One event per finding the last poll raised for this device."""
        analysis = self.coordinator.data.analysis
        if analysis is self._announced:
            return
        self._announced = analysis
        for finding in analysis.new_findings:
            if finding.device == self._mac:
                self._trigger_event(finding.kind, finding_data(finding))
                self.async_write_ha_state()  # one state change per finding
