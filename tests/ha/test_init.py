"""Setup, unload, polling, errors, repairs and stale devices, against the emulated router."""

import logging
from datetime import timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.helpers.update_coordinator import UpdateFailed
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.phonehome.const import DOMAIN
from custom_components.phonehome.coordinator import over_cap_issue_id
from custom_components.phonehome.core.addresses import INTERNET_SCOPES
from custom_components.phonehome.core.conntrack import parse_proc
from tests.bench.synthetic import proc_text
from tests.emulators.ubus import HASS_UBUS, Failure, UbusEmulator, User
from tests.ha.conftest import setup
from tests.routers.test_openwrt import HINTS, LEASES, THREE_DEVICES

CAMERA = "c0:ff:ee:00:00:01"
CAMERA_HOSTS = "sensor.garage_camera_internet_hosts"
POLL = timedelta(seconds=30)


async def poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta = POLL
) -> None:
    """Move time on by ``delta`` and let the scheduled poll run."""
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records of this integration (not asyncio's slow-callback notes under frozen time)."""
    return [r for r in caplog.records if r.name.startswith("custom_components.phonehome")]


async def test_setup_and_unload(
    hass: HomeAssistant, config_entry: MockConfigEntry, network: UbusEmulator
) -> None:
    await setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.info.unique_id == "94:83:c4:00:00:01"
    router = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, "94:83:c4:00:00:01")})
    assert router is not None
    assert (router.manufacturer, router.model, router.sw_version) == (
        "OpenWrt",
        "Example Board X1",
        "OpenWrt 24.10.8 r29233-443ec4032a",
    )
    assert router.connections == {(dr.CONNECTION_NETWORK_MAC, "94:83:c4:00:00:01")}
    sessions = len(network.sessions)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.NOT_LOADED
    assert len(network.sessions) == sessions - 1  # logged out


async def test_unreachable_router_at_setup_retries(
    hass: HomeAssistant, config_entry: MockConfigEntry, ubus_emulator: UbusEmulator
) -> None:
    ubus_emulator.failure = Failure.HTTP_500
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_router_down_at_setup_retries(
    hass: HomeAssistant, config_entry: MockConfigEntry, ubus_emulator: UbusEmulator
) -> None:
    ubus_emulator.failure = Failure.DROP
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_first_poll_failing_retries_setup(
    hass: HomeAssistant, config_entry: MockConfigEntry, ubus_emulator: UbusEmulator
) -> None:
    ubus_emulator.failure = Failure.WRONG_SHAPE
    ubus_emulator.failure_on = "luci-rpc.getHostHints"
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_wrong_password_at_setup_starts_reauth(
    hass: HomeAssistant, config_entry: MockConfigEntry, ubus_emulator: UbusEmulator
) -> None:
    ubus_emulator.users["root"].password = "changed"
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    assert [
        flow["context"]["source"]
        for flow in config_entry.async_get_active_flows(hass, {SOURCE_REAUTH})
    ] == [SOURCE_REAUTH]


async def test_wrong_password_at_poll_starts_reauth(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    network.users["root"].password = "changed"
    network.expire_sessions()
    await poll(hass, freezer)
    flows = list(config_entry.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert len(flows) == 1
    assert flows[0]["context"]["entry_id"] == config_entry.entry_id


async def test_expired_session_relogs_once(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    assert network.calls["session.login"] == 1
    network.expire_sessions()
    await poll(hass, freezer)
    assert network.calls["session.login"] == 2
    assert hass.states.get(CAMERA_HOSTS).state == "1"
    assert config_entry.runtime_data.coordinator.last_update_success


async def test_router_down_and_back_logs_once_each_way(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup(hass, config_entry)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="custom_components.phonehome")
    network.failure = Failure.DROP
    await poll(hass, freezer)
    await poll(hass, freezer)
    assert hass.states.get(CAMERA_HOSTS).state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.b6f391692652_tracked_connections").state == STATE_UNAVAILABLE
    failed = [r for r in ours(caplog) if r.levelno >= logging.WARNING]
    assert len(failed) == 1
    assert "Error fetching" in failed[0].getMessage()
    assert failed[0].exc_info is None  # no traceback for an expected failure

    caplog.clear()
    network.failure = None
    await poll(hass, freezer)
    await poll(hass, freezer)
    assert hass.states.get(CAMERA_HOSTS).state == "1"
    recovered = [r for r in ours(caplog) if r.levelno >= logging.INFO]
    assert [r.getMessage() for r in recovered] == [
        f"Fetching {DOMAIN} {config_entry.title} data recovered"
    ]


async def test_acl_lost_at_poll_is_a_permission_error(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    network.users["root"] = User.from_acl("secret")  # the README's rights, reading included
    network.users["root"].ubus = HASS_UBUS - {"luci.getConntrackList"}
    await poll(hass, freezer)
    coordinator = config_entry.runtime_data.coordinator
    assert not coordinator.last_update_success
    assert isinstance(coordinator.last_exception, UpdateFailed)
    assert coordinator.last_exception.translation_key == "router_permission_denied"
    assert "getConntrackList" in coordinator.last_exception.translation_placeholders["error"]
    assert hass.states.get(CAMERA_HOSTS).state == STATE_UNAVAILABLE
    assert not list(config_entry.async_get_active_flows(hass, {SOURCE_REAUTH}))


async def test_table_above_the_cap_raises_a_repair_and_is_never_read(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    issue_id = over_cap_issue_id(config_entry.entry_id)
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    calls = network.calls["luci.getConntrackList"]

    network.proc_text = proc_text(4000)
    await poll(hass, freezer)
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "conntrack_over_cap"
    assert issue.translation_placeholders == {"count": "4000", "cap": "3000"}
    assert issue.learn_more_url == "https://github.com/phonehome-guard/phonehome#openwrt-access"
    assert network.calls["luci.getConntrackList"] == calls
    assert network.rpcd_alive
    assert hass.states.get("sensor.b6f391692652_tracked_connections").state == "4000"
    assert hass.states.get(CAMERA_HOSTS).state == "1"  # still within the window

    network.proc_text = THREE_DEVICES
    await poll(hass, freezer)
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    assert network.calls["luci.getConntrackList"] == calls + 1


async def test_with_the_plugin_a_65536_entry_table_reaches_home_assistant(
    hass: HomeAssistant, config_entry: MockConfigEntry, network: UbusEmulator
) -> None:
    network.plugin_installed = True
    text = THREE_DEVICES + proc_text(65536 - THREE_DEVICES.count("\n"))
    network.proc_text = text
    await setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    issue = ir.async_get(hass).async_get_issue(DOMAIN, over_cap_issue_id(config_entry.entry_id))
    assert issue is None
    assert network.calls["luci.getConntrackList"] == 0
    assert network.calls["phonehome.conntrack"] >= 2
    assert network.rpcd_alive
    assert max(size for _, size in network.reply_sizes) < 256 * 1024
    state = config_entry.runtime_data.coordinator.data
    assert (state.table_read, state.table_source) == (True, "plugin")
    camera = [
        flow
        for flow in parse_proc(text).flows
        if flow.src == "192.168.1.20" and flow.dst_scope in INTERNET_SCOPES
    ]
    assert hass.states.get("sensor.b6f391692652_tracked_connections").state == "65536"
    assert hass.states.get(CAMERA_HOSTS).state == str(len({flow.dst for flow in camera}))
    connections = hass.states.get("sensor.garage_camera_internet_connections")
    assert connections.state == str(len(camera))


@pytest.mark.parametrize("entry_options", [{"conntrack_cap": 3}])
async def test_small_cap_option_is_honoured(
    hass: HomeAssistant, config_entry: MockConfigEntry, network: UbusEmulator
) -> None:
    entry = config_entry
    await setup(hass, entry)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, over_cap_issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_placeholders == {"count": "4", "cap": "3"}
    assert network.calls["luci.getConntrackList"] == 0


async def test_new_device_gets_entities_without_reload(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    assert hass.states.get("sensor.doorbell_internet_hosts") is None
    network.host_hints = {
        **HINTS,
        "C0:FF:EE:00:00:04": {"ipaddrs": ["192.168.1.23"], "ip6addrs": [], "name": "Doorbell"},
    }
    network.proc_text = THREE_DEVICES + (
        "ipv4     2 udp      17 29 src=192.168.1.23 dst=203.0.113.77 sport=40010 dport=32100 "
        "packets=2 bytes=120 [UNREPLIED] src=203.0.113.77 dst=192.168.1.23 sport=32100 "
        "dport=40010 packets=0 bytes=0 mark=0 zone=0 use=2\n"
    )
    loads = network.calls["system.board"]
    await poll(hass, freezer)
    assert hass.states.get("sensor.doorbell_internet_hosts").state == "1"
    assert hass.states.get("sensor.doorbell_internet_connections").state == "1"
    assert network.calls["system.board"] == loads  # no reload (connect reads the board)


@pytest.mark.parametrize("entry_options", [{"tracked_devices": ["C0:FF:EE:00:00:01"]}])
async def test_tracked_devices_option_limits_the_devices(
    hass: HomeAssistant, config_entry: MockConfigEntry, network: UbusEmulator
) -> None:
    entry = config_entry
    await setup(hass, entry)
    assert set(entry.runtime_data.coordinator.data.devices) == {CAMERA}
    assert hass.states.get(CAMERA_HOSTS).state == "1"
    assert hass.states.get("sensor.laptop_internet_hosts") is None


async def test_stale_device_is_removed_from_the_registry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    device_registry = dr.async_get(hass)
    entity_registry = er.async_get(hass)
    await setup(hass, config_entry)
    camera = device_registry.async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, CAMERA)})
    assert camera is not None
    assert camera.name == "Garage camera"

    network.host_hints = {k: v for k, v in HINTS.items() if k != "C0:FF:EE:00:00:01"}
    network.dhcp_leases = {"dhcp_leases": LEASES["dhcp_leases"][1:], "dhcp6_leases": []}
    await poll(hass, freezer, timedelta(days=6))
    assert device_registry.async_get(camera.id) is not None  # not stale yet
    assert hass.states.get(CAMERA_HOSTS).state == "0"  # the window passed

    await poll(hass, freezer, timedelta(days=1, seconds=1))
    assert device_registry.async_get(camera.id) is None
    assert entity_registry.async_get(CAMERA_HOSTS) is None
    assert hass.states.get("sensor.tv_internet_hosts") is not None
    assert CAMERA not in config_entry.runtime_data.coordinator.data.activity
    assert CAMERA not in config_entry.runtime_data.coordinator.analyzer.export_state()["devices"]

    # it comes back: new entities, no reload
    network.host_hints = HINTS
    await poll(hass, freezer)
    assert hass.states.get(CAMERA_HOSTS).state == "1"


async def test_devices_registered_earlier_go_stale_too(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    ubus_emulator: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    old = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id,
        connections={(dr.CONNECTION_NETWORK_MAC, "c0:ff:ee:00:00:99")},
        name="Old plug",
    )
    gone = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id,
        connections={(dr.CONNECTION_NETWORK_MAC, "c0:ff:ee:00:00:98")},
    )
    await setup(hass, config_entry)
    device_registry.async_remove_device(gone.id)  # deleted by hand meanwhile
    await poll(hass, freezer, timedelta(days=7, seconds=1))
    assert device_registry.async_get(old.id) is None
    assert device_registry.async_get_device(identifiers={(DOMAIN, "94:83:c4:00:00:01")})


async def test_options_change_reloads(
    hass: HomeAssistant, config_entry: MockConfigEntry, network: UbusEmulator
) -> None:
    await setup(hass, config_entry)
    coordinator = config_entry.runtime_data.coordinator
    assert coordinator.update_interval == timedelta(seconds=30)
    hass.config_entries.async_update_entry(config_entry, options={"scan_interval": 60})
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.coordinator is not coordinator
    assert config_entry.runtime_data.coordinator.update_interval == timedelta(seconds=60)
    assert network.calls["session.login"] == 2


async def test_remove_a_device_only_when_not_seen(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    network: UbusEmulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    from custom_components.phonehome import async_remove_config_entry_device

    await setup(hass, config_entry)
    camera = device_registry.async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, CAMERA)})
    router = device_registry.async_get_device(identifiers={(DOMAIN, "94:83:c4:00:00:01")})
    gone = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id,
        connections={(dr.CONNECTION_NETWORK_MAC, "c0:ff:ee:00:00:99")},
    )
    assert camera is not None
    assert router is not None
    assert not await async_remove_config_entry_device(hass, config_entry, camera)
    assert not await async_remove_config_entry_device(hass, config_entry, router)
    assert await async_remove_config_entry_device(hass, config_entry, gone)
