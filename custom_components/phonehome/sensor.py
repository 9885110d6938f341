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

from .coordinator import TOTALS_ONLY_SOURCES, destination_data
from .entity import (
    PhoneHomeEntity,
    async_track_devices,
    lan_device_info,
    router_device_info,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from datetime import datetime

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.device_registry import DeviceInfo
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
    from homeassistant.helpers.typing import StateType

    from .coordinator import PhoneHomeCoordinator, PhoneHomeState
    from .core.activity import Destination, DeviceActivity
    from .data import PhoneHomeConfigEntry

PARALLEL_UPDATES = 0
"""Entities only read the coordinator."""

PER_POLL: Final = frozenset({"bytes", "last_seen"})
"""Destination values left out of the attribute: they would change it every poll."""


@dataclass(frozen=True, kw_only=True)
class PhoneHomeSensorEntityDescription(SensorEntityDescription):
    """A sensor kind: how to read its value (and attributes) from one poll."""

    value_fn: Callable[[PhoneHomeState, str], StateType | datetime]
    """(state, MAC or router id) -> native value."""
    shown_fn: Callable[[PhoneHomeState, str], Hashable] = lambda _s, _m: None
    """(state, MAC or router id) -> what the attributes show, cheap to compare between polls."""
    attrs_fn: Callable[[PhoneHomeState, str], dict[str, Any]] = lambda _s, _m: {}
    """(state, MAC or router id) -> the attributes; called only when ``shown_fn`` changed."""
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
    """To the minute: a device online all the time would move it (and write it) every poll."""
    activity = _activity(state, mac)
    if activity is None or activity.last_internet_contact is None:
        return None
    return activity.last_internet_contact.replace(second=0, microsecond=0)


def _top_destinations(state: PhoneHomeState, mac: str) -> tuple[Destination, ...]:
    activity = _activity(state, mac)
    return activity.recent if activity is not None else ()


def _destinations_shown(state: PhoneHomeState, mac: str) -> Hashable:
    """What ``_destinations`` shows, as plain tuples."""
    return tuple(
        (
            destination.ip,
            destination.port,
            destination.protocol,
            destination.country,
            destination.first_seen,
        )
        for destination in _top_destinations(state, mac)
    )


def _destinations(state: PhoneHomeState, mac: str) -> dict[str, Any]:
    """The newest destinations, small enough for an attribute (excluded from the recorder).

    Without what moves every poll (bytes, last seen): get_report has those.
    """
    return {
        "destinations": [
            {
                key: value
                for key, value in destination_data(destination).items()
                if key not in PER_POLL
            }
            for destination in _top_destinations(state, mac)
        ]
    }


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
        shown_fn=_destinations_shown,
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


_UNREAD: Final = object()


class PhoneHomeDeviceSensor(PhoneHomeEntity, SensorEntity):
    """Any Phone Home Guard sensor; its description says what it reads."""

    entity_description: PhoneHomeSensorEntityDescription
    _unrecorded_attributes = frozenset({"destinations"})
    _attrs_shown: Hashable = _UNREAD
    """``shown_fn``'s value the attributes were made from."""

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

    def _read_poll(self) -> Hashable:
        """The description's value and attributes of the latest poll (attributes only if changed)."""
        description, state, subject = self.entity_description, self.coordinator.data, self._subject
        self._attr_native_value = description.value_fn(state, subject)
        shown = description.shown_fn(state, subject)
        if shown != self._attrs_shown:
            self._attrs_shown = shown
            self._attr_extra_state_attributes = description.attrs_fn(state, subject)
        return self._attr_native_value, shown

    async def async_will_remove_from_hass(self) -> None:
        """Let the platform add this device's entities again if it comes back."""
        await super().async_will_remove_from_hass()
        if self._forget_subject is not None:
            self._forget_subject(self._subject)
