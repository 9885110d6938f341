"""Events: per LAN device, one event per new finding."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from homeassistant.components.event import EventEntity
from homeassistant.core import callback

from .coordinator import finding_data
from .entity import PhoneHomeDeviceEntity, async_track_devices

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 0
"""Entities only read the coordinator."""

FINDING_KINDS: Final = [
    "signature",
    "p2p_fanout",
    "unreplied_attempts",
    "dns_bypass",
    "local_only_violation",
    "new_destination",
    "shared_p2p_server",
]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One phone-home event entity per LAN device."""
    data = entry.runtime_data

    def factory(mac: str, forget: Callable[[str], None]) -> list[PhoneHomeDeviceEntity]:
        return [PhoneHomeEvent(data.coordinator, "phone_home", mac, data.info, forget)]

    async_track_devices(entry, async_add_entities, factory)


class PhoneHomeEvent(PhoneHomeDeviceEntity, EventEntity):
    """Triggered by each finding the last poll raised for the device."""

    _attr_event_types = FINDING_KINDS
    _unrecorded_attributes = frozenset({"destinations"})

    async def async_added_to_hass(self) -> None:
        """Also announce the findings of the poll that made this device known."""
        await super().async_added_to_hass()
        self._trigger_new_findings()

    @callback
    def _handle_coordinator_update(self) -> None:
        self._trigger_new_findings()
        super()._handle_coordinator_update()

    def _trigger_new_findings(self) -> None:
        """One event per finding the last poll raised for this device."""
        for finding in self.coordinator.data.analysis.new_findings:
            if finding.device == self._mac:
                self._trigger_event(finding.kind, finding_data(finding))
                self.async_write_ha_state()  # one state change per finding
