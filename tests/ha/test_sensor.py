"""Sensor entities: states pinned by syrupy snapshots, values checked against the flows."""

from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.sensor import ATTR_STATE_CLASS
from homeassistant.const import ATTR_DEVICE_CLASS, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.phonehome.const import DOMAIN, TOP_DESTINATIONS
from tests.emulators.ubus import UbusEmulator
from tests.ha.conftest import setup

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ROUTER = "94:83:c4:00:00:01"

pytestmark = pytest.mark.freeze_time(T0)


def udp_line(src: str, dst: str, dport: int, sport: int) -> str:
    return (
        f"ipv4     2 udp      17 29 src={src} dst={dst} sport={sport} dport={dport} packets=2 "
        f"bytes=120 [UNREPLIED] src={dst} dst={src} sport={dport} dport={sport} packets=0 "
        f"bytes=0 mark=0 zone=0 use=2\n"
    )


@pytest.mark.usefixtures("network", "freezer")
async def test_entities(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    with patch("custom_components.phonehome.PLATFORMS", [Platform.SENSOR]):
        await setup(hass, config_entry)
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


async def test_states_match_the_flows(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    expected = {
        # camera: UDP 10001 to one host; TV: HTTPS to one host; laptop: one IPv6 HTTPS
        # flow (its TIME_WAIT entry is dropped by LuCI, as on the router)
        "garage_camera": ("1", "1"),
        "tv": ("1", "1"),
        "laptop": ("1", "1"),
    }
    for name, (hosts, connections) in expected.items():
        assert hass.states.get(f"sensor.{name}_internet_hosts").state == hosts
        assert hass.states.get(f"sensor.{name}_internet_connections").state == connections
        assert hass.states.get(f"sensor.{name}_last_phone_home").state == T0.isoformat()
    assert hass.states.get("sensor.b6f391692652_tracked_connections").state == "4"

    camera = hass.states.get("sensor.garage_camera_internet_hosts")
    assert camera.attributes["destinations"] == [
        {
            "ip": "203.0.113.5",
            "port": 10001,
            "protocol": "udp",
            "country": None,
            "first_seen": T0.isoformat(),
        }
    ]
    laptop = hass.states.get("sensor.laptop_internet_hosts")
    assert laptop.attributes["destinations"][0]["ip"] == "2001:db8::1"
    connections = hass.states.get("sensor.tv_internet_connections")
    assert connections.attributes[ATTR_STATE_CLASS] == "measurement"
    last = hass.states.get("sensor.tv_last_phone_home")
    assert last.attributes[ATTR_DEVICE_CLASS] == "timestamp"


async def test_devices_merge_by_mac_and_hang_off_the_router(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    existing = device_registry.async_get_or_create(
        config_entry_id=other.entry_id,
        connections={(dr.CONNECTION_NETWORK_MAC, "c0:ff:ee:00:00:02")},
        name="Living room TV",
    )
    await setup(hass, config_entry)
    tv = device_registry.async_get(existing.id)
    assert tv is not None
    assert config_entry.entry_id in tv.config_entries
    assert tv.config_entries == {other.entry_id, config_entry.entry_id}  # one device, merged
    assert tv.name == "Living room TV"  # the other integration's name stays
    router = device_registry.async_get_device(identifiers={(DOMAIN, ROUTER)})
    assert router is not None
    assert tv.via_device_id == router.id
    unnamed = device_registry.async_get_device(
        connections={(dr.CONNECTION_NETWORK_MAC, "c0:ff:ee:00:00:03")}
    )
    assert unnamed is not None
    assert unnamed.name == "laptop"


async def test_device_without_name_or_hostname_is_named_by_mac(
    hass: HomeAssistant, config_entry: MockConfigEntry, network: UbusEmulator
) -> None:
    network.host_hints = {"C0:FF:EE:00:00:07": {"ipaddrs": ["192.168.1.27"], "ip6addrs": []}}
    network.dhcp_leases = {"dhcp_leases": [], "dhcp6_leases": []}
    await setup(hass, config_entry)
    state = hass.states.get("sensor.c0_ff_ee_00_00_07_internet_hosts")
    assert state is not None
    assert state.state == "0"
    assert state.attributes["destinations"] == []
    assert hass.states.get("sensor.c0_ff_ee_00_00_07_last_phone_home").state == "unknown"


async def test_window_and_top_destinations_over_polls(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    # the camera fans out to 12 hosts on UDP 32100, one poll later
    network.proc_text = "".join(
        udp_line("192.168.1.20", f"203.0.113.{100 + i}", 32100, 41000 + i) for i in range(12)
    )
    freezer.tick(timedelta(seconds=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    t1 = T0 + timedelta(seconds=30)
    hosts = hass.states.get("sensor.garage_camera_internet_hosts")
    assert hosts.state == "13"  # 12 new + the one from the first poll, within 15 min
    assert len(hosts.attributes["destinations"]) == TOP_DESTINATIONS
    assert all(d["first_seen"] == t1.isoformat() for d in hosts.attributes["destinations"])
    assert hass.states.get("sensor.garage_camera_internet_connections").state == "12"
    assert hass.states.get("sensor.tv_internet_connections").state == "0"
    assert hass.states.get("sensor.tv_internet_hosts").state == "1"
    assert hass.states.get("sensor.tv_last_phone_home").state == T0.isoformat()
    # to the minute: 12:00:30 shows as 12:00
    assert hass.states.get("sensor.garage_camera_last_phone_home").state == T0.isoformat()

    network.proc_text = ""
    freezer.tick(timedelta(minutes=15))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.tv_internet_hosts").state == "0"  # T0 is 15.5 min ago
    assert hass.states.get("sensor.garage_camera_internet_hosts").state == "12"
    assert hass.states.get("sensor.b6f391692652_tracked_connections").state == "0"
