"""Entity writes: a poll writes only the entities whose state or attributes changed.

A write counts whether Home Assistant records it as a change (state_changed) or
as the same state reported again (state_reported): both cost the event loop.
"""

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN, SERVICE_SELECT_OPTION
from homeassistant.const import (
    ATTR_ENTITY_ID,
    ATTR_OPTION,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_UNAVAILABLE,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from tests.emulators.ubus import Failure, UbusEmulator
from tests.ha.conftest import setup
from tests.ha.test_detection import CAMERA, FOSCAM, FOSCAM_KINDS, TV, stored
from tests.routers.test_openwrt import HINTS, LEASES, THREE_DEVICES

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLL = timedelta(seconds=30)
TV_TO_A_NEW_HOST = (
    "ipv4     2 tcp      6 7439 ESTABLISHED src=192.168.1.21 dst=198.51.100.9 sport=51001 "
    "dport=443 packets=4 bytes=600 src=198.51.100.9 dst=192.168.1.21 sport=443 dport=51001 "
    "packets=4 bytes=800 [ASSURED] mark=0 zone=0 use=2\n"
)

pytestmark = pytest.mark.freeze_time(T0)


@pytest.fixture
def writes(hass: HomeAssistant) -> Counter[str]:
    """Entity id -> states written for it (changed or reported the same)."""
    counted: Counter[str] = Counter()

    @callback
    def count(event: Event[Mapping[str, Any]]) -> None:
        counted[event.data["entity_id"]] += 1

    @callback
    def every(_data: Mapping[str, Any]) -> bool:
        return True

    hass.bus.async_listen(EVENT_STATE_CHANGED, count)
    hass.bus.async_listen(EVENT_STATE_REPORTED, count, event_filter=every)
    return counted


@pytest.fixture
async def polled(
    hass: HomeAssistant, config_entry: MockConfigEntry, network: UbusEmulator
) -> MockConfigEntry:
    """The three-device network set up (its first poll done at T0)."""
    await setup(hass, config_entry)
    return config_entry


async def poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """The next scheduled poll, 30 s later."""
    freezer.tick(POLL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def entity_ids(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    registry = er.async_get(hass)
    return {item.entity_id for item in er.async_entries_for_config_entry(registry, entry.entry_id)}


async def test_an_unchanged_poll_writes_nothing(
    hass: HomeAssistant,
    polled: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    writes: Counter[str],
) -> None:
    assert hass.states.get("binary_sensor.garage_camera_phoning_home") is not None
    writes.clear()
    await poll(hass, freezer)  # the same table, 12:00:30
    assert polled.runtime_data.coordinator.data.taken_at == T0 + POLL
    assert writes == Counter()


async def test_a_changed_value_writes_its_entity_only(
    hass: HomeAssistant,
    polled: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    writes: Counter[str],
) -> None:
    writes.clear()
    # the TV reaches a second host; the camera's counters grow (not shown any more)
    network.proc_text = (
        THREE_DEVICES.replace("packets=7 bytes=420", "packets=9 bytes=540") + TV_TO_A_NEW_HOST
    )
    await poll(hass, freezer)
    assert writes == Counter(
        {
            "sensor.tv_internet_hosts": 1,
            "sensor.tv_internet_connections": 1,
            "sensor.b6f391692652_tracked_connections": 1,
        }
    )
    tv = hass.states.get("sensor.tv_internet_hosts")
    assert tv is not None
    assert tv.state == "2"
    assert [d["ip"] for d in tv.attributes["destinations"]] == ["198.51.100.7", "198.51.100.9"]

    writes.clear()
    await poll(hass, freezer)  # 12:01: the last contact moves to the next minute
    assert writes == Counter(
        {f"sensor.{name}_last_phone_home": 1 for name in ("garage_camera", "tv", "laptop")}
    )
    state = hass.states.get("sensor.tv_last_phone_home")
    assert state is not None
    assert state.state == (T0 + timedelta(minutes=1)).isoformat()


async def test_a_policy_change_writes_its_select_once(
    hass: HomeAssistant,
    polled: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    writes: Counter[str],
) -> None:
    writes.clear()
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: "select.tv_internet_policy", ATTR_OPTION: "monitor"},
        blocking=True,
    )
    await poll(hass, freezer)
    assert writes == Counter({"select.tv_internet_policy": 1})


async def test_availability_flips_when_the_router_fails_and_comes_back(
    hass: HomeAssistant,
    polled: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    writes: Counter[str],
) -> None:
    every = entity_ids(hass, polled)
    before = {entity_id: hass.states.get(entity_id) for entity_id in every}
    available = {e for e, state in before.items() if state.state != STATE_UNAVAILABLE}  # type: ignore[union-attr]
    assert "sensor.tv_blocked_attempts" in every - available  # not quarantined: no count
    writes.clear()
    network.failure = Failure.HTTP_500
    await poll(hass, freezer)
    assert writes == Counter(dict.fromkeys(available, 1))
    assert {hass.states.get(entity_id).state for entity_id in every} == {STATE_UNAVAILABLE}  # type: ignore[union-attr]

    writes.clear()
    await poll(hass, freezer)  # still failing: already unavailable
    assert writes == Counter()

    network.failure = None
    await poll(hass, freezer)  # 12:01:30
    assert writes == Counter(dict.fromkeys(available, 1))
    for entity_id, state in before.items():
        after = hass.states.get(entity_id)
        assert after is not None
        if entity_id.endswith("_last_phone_home"):
            assert after.state == (T0 + timedelta(minutes=1)).isoformat()
        else:
            assert after.state == state.state, entity_id  # type: ignore[union-attr]
            assert after.attributes == state.attributes, entity_id  # type: ignore[union-attr]


@pytest.fixture
def monitored(
    hass_storage: dict[str, Any], config_entry: MockConfigEntry, ubus_emulator: UbusEmulator
) -> UbusEmulator:
    """The camera and the TV idle under the monitor policy, the rpcd plugin installed."""
    stored(hass_storage, config_entry, policies={CAMERA: "monitor", TV: "monitor"})
    ubus_emulator.plugin_installed = True
    ubus_emulator.host_hints, ubus_emulator.dhcp_leases = HINTS, LEASES
    return ubus_emulator


async def test_a_device_phoning_home_writes_when_its_findings_change_only(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    writes: Counter[str],
) -> None:
    await setup(hass, config_entry)
    await poll(hass, freezer)
    monitored.proc_text = FOSCAM
    await poll(hass, freezer)  # 12:01: the camera starts calling its P2P cloud
    phoning = hass.states.get("binary_sensor.garage_camera_phoning_home")
    assert phoning is not None
    assert {finding["kind"] for finding in phoning.attributes["findings"]} == FOSCAM_KINDS
    writes.clear()
    await poll(hass, freezer)  # 12:01:30, the same table: the findings are seen again
    assert writes == Counter()
