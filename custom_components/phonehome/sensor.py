"""Sensors: per LAN device its internet hosts, connections, last contact and blocked attempts; per router its load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation, UnitOfTime

from .const import TOP_DESTINATIONS
from .coordinator import TOTALS_ONLY_SOURCES, destination_data
from .entity import (
    PhoneHomeEntity,
    async_track_devices,
    lan_device_info,
    router_device_info,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.device_registry import DeviceInfo
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
    from homeassistant.helpers.typing import StateType

    from .coordinator import PhoneHomeCoordinator, PhoneHomeState
    from .core.activity import DeviceActivity
    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 0
"""Entities only read the coordinator."""


@dataclass(frozen=True, kw_only=True)
class PhoneHomeSensorEntityDescription(SensorEntityDescription):
    """A sensor kind: how to read its value (and attributes) from one poll."""

    value_fn: Callable[[PhoneHomeState, str], StateType | datetime]
    """(state, MAC or router id) -> native value."""
    attrs_fn: Callable[[PhoneHomeState, str], Mapping[str, Any] | None] = lambda _s, _m: None
    available_fn: Callable[[PhoneHomeCoordinator, str], bool] = lambda _c, _m: True
    """(coordinator, MAC or router id) -> whether there is a value, beyond the last poll's success."""
    supported_fn: Callable[[PhoneHomeState], bool] = lambda _s: True
    """Whether the router can give this sensor at all (decided when the device is added)."""


def _activity(state: PhoneHomeState, mac: str) -> DeviceActivity | None:
    return state.activity.get(mac)


def _hosts(state: PhoneHomeState, mac: str) -> int:
    activity = _activity(state, mac)
    return activity.internet_hosts if activity is not None else 0


def _connections(state: PhoneHomeState, mac: str) -> int:
    activity = _activity(state, mac)
    return activity.internet_connections if activity is not None else 0


def _last_contact(state: PhoneHomeState, mac: str) -> datetime | None:
    activity = _activity(state, mac)
    return activity.last_internet_contact if activity is not None else None


def _destinations(state: PhoneHomeState, mac: str) -> dict[str, Any]:
    """The newest destinations, small enough for an attribute (excluded from the recorder)."""
    activity = _activity(state, mac)
    destinations = activity.destinations[:TOP_DESTINATIONS] if activity is not None else ()
    return {"destinations": [destination_data(destination) for destination in destinations]}


def _sent(state: PhoneHomeState, mac: str) -> int | None:
    traffic = state.device_traffic.get(mac)
    return traffic.tx_bytes if traffic is not None else None


def _received(state: PhoneHomeState, mac: str) -> int | None:
    traffic = state.device_traffic.get(mac)
    return traffic.rx_bytes if traffic is not None else None


def _has_flows(state: PhoneHomeState) -> bool:
    return state.has_flows


def _totals_only(state: PhoneHomeState) -> bool:
    """Per-device byte totals are all the router gives (UniFi DPI): no connections."""
    return state.table_source in TOTALS_ONLY_SOURCES


def _blocked(state: PhoneHomeState, mac: str) -> int | None:
    quarantine = state.quarantined.get(mac)
    return quarantine.blocked_packets if quarantine is not None else None


def _blocked_known(coordinator: PhoneHomeCoordinator, mac: str) -> bool:
    """Quarantined, and the router counts what the block rejects."""
    return mac in coordinator.quarantines.active and _blocked(coordinator.data, mac) is not None


DEVICE_SENSORS: Final[tuple[PhoneHomeSensorEntityDescription, ...]] = (
    PhoneHomeSensorEntityDescription(
        key="internet_hosts",
        translation_key="internet_hosts",
        state_class=SensorStateClass.MEASUREMENT,
        supported_fn=_has_flows,
        value_fn=_hosts,
        attrs_fn=_destinations,
    ),
    PhoneHomeSensorEntityDescription(
        key="internet_connections",
        translation_key="internet_connections",
        state_class=SensorStateClass.MEASUREMENT,
        supported_fn=_has_flows,
        value_fn=_connections,
    ),
    PhoneHomeSensorEntityDescription(
        key="last_phone_home",
        translation_key="last_phone_home",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_contact,
        supported_fn=_has_flows,
    ),
    PhoneHomeSensorEntityDescription(
        key="blocked_attempts",
        translation_key="blocked_attempts",
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement="packets",
        value_fn=_blocked,
        available_fn=_blocked_known,
        supported_fn=lambda state: state.quarantine_supported,
    ),
    *(
        PhoneHomeSensorEntityDescription(
            key=key,
            translation_key=key,
            device_class=SensorDeviceClass.DATA_SIZE,
            state_class=SensorStateClass.TOTAL_INCREASING,
            native_unit_of_measurement=UnitOfInformation.BYTES,
            suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
            value_fn=value_fn,
            supported_fn=_totals_only,
        )
        for key, value_fn in (("upload", _sent), ("download", _received))
    ),
)

ROUTER_SENSORS: Final[tuple[PhoneHomeSensorEntityDescription, ...]] = (
    PhoneHomeSensorEntityDescription(
        key="tracked_connections",
        translation_key="tracked_connections",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _id: state.conntrack_count,
        supported_fn=lambda state: state.kernel_table,
    ),
    PhoneHomeSensorEntityDescription(
        key="devices_phoning_home",
        translation_key="devices_phoning_home",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _id: sum(
            1 for report in state.analysis.devices.values() if report.findings
        ),
        supported_fn=_has_flows,
    ),
    PhoneHomeSensorEntityDescription(
        key="poll_duration",
        translation_key="poll_duration",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state, _id: state.poll_duration,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PhoneHomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Router sensors now; LAN device sensors now and whenever a new device shows up."""
    coordinator = entry.runtime_data.coordinator
    info = entry.runtime_data.info
    async_add_entities(
        PhoneHomeDeviceSensor(coordinator, description, info.unique_id, router_device_info(info))
        for description in ROUTER_SENSORS
        if description.supported_fn(coordinator.data)
    )

    def factory(mac: str, forget: Callable[[str], None]) -> list[PhoneHomeDeviceSensor]:
        device_info = lan_device_info(coordinator, mac, info)
        return [
            PhoneHomeDeviceSensor(coordinator, description, mac, device_info, forget)
            for description in DEVICE_SENSORS
            if description.supported_fn(coordinator.data)
        ]

    async_track_devices(entry, async_add_entities, factory)


class PhoneHomeDeviceSensor(PhoneHomeEntity, SensorEntity):
    """Any Phone Home Guard sensor; its description says what it reads."""

    entity_description: PhoneHomeSensorEntityDescription
    _unrecorded_attributes = frozenset({"destinations"})

    def __init__(
        self,
        coordinator: PhoneHomeCoordinator,
        description: PhoneHomeSensorEntityDescription,
        subject: str,
        device_info: DeviceInfo,
        on_remove: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        self._subject = subject
        self._forget_subject = on_remove
        self._attr_unique_id = f"{subject}_{description.key}"
        self._attr_device_info = device_info

    @property
    def available(self) -> bool:
        """The last poll succeeded and the description has a value for the subject."""
        return super().available and self.entity_description.available_fn(
            self.coordinator, self._subject
        )

    @property
    def native_value(self) -> StateType | datetime:
        """The description's value of the latest poll."""
        return self.entity_description.value_fn(self.coordinator.data, self._subject)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The description's attributes of the latest poll, if any."""
        return self.entity_description.attrs_fn(self.coordinator.data, self._subject)

    async def async_will_remove_from_hass(self) -> None:
        """Let the platform add this device's entities again if it comes back."""
        await super().async_will_remove_from_hass()
        if self._forget_subject is not None:
            self._forget_subject(self._subject)
