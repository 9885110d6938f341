"""Detection in Home Assistant: the Foscam story end to end through the ubus emulator."""

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON, STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.phonehome.const import EVENT_FINDING
from custom_components.phonehome.store import SAVE_DELAY
from tests.emulators.ubus import UbusEmulator
from tests.ha.conftest import setup
from tests.routers.test_openwrt import HINTS, LEASES

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLL = timedelta(seconds=30)
CAMERA, TV = "c0:ff:ee:00:00:01", "c0:ff:ee:00:00:02"
CAMERA_IP, TV_IP = "192.168.1.20", "192.168.1.21"
PHONING = "binary_sensor.garage_camera_phoning_home"
TV_PHONING = "binary_sensor.tv_phoning_home"
EVENT = "event.garage_camera_phone_home"
POLICY = "select.garage_camera_internet_policy"
TV_POLICY = "select.tv_internet_policy"
RESET = "button.garage_camera_reset_baseline"
COUNT = "sensor.b6f391692652_devices_phoning_home"
FOSCAM_KINDS = {"signature", "p2p_fanout", "unreplied_attempts"}

pytestmark = pytest.mark.freeze_time(T0)


def udp_unreplied(src: str, dst: str, dport: int, sport: int) -> str:
    return (
        f"ipv4     2 udp      17 29 src={src} dst={dst} sport={sport} dport={dport} packets=2 "
        f"bytes=120 [UNREPLIED] src={dst} dst={src} sport={dport} dport={sport} packets=0 "
        f"bytes=0 mark=0 zone=0 use=2\n"
    )


def https(src: str, dst: str, sport: int) -> str:
    return (
        f"ipv4     2 tcp      6 7439 ESTABLISHED src={src} dst={dst} sport={sport} dport=443 "
        f"packets=10 bytes=1500 src={dst} dst={src} sport=443 dport={sport} packets=12 "
        f"bytes=9000 [ASSURED] mark=0 zone=0 use=2\n"
    )


FOSCAM = "".join(
    udp_unreplied(CAMERA_IP, f"203.0.113.{host}", 10001, 40000 + retry)
    for host in (20, 21, 22, 23)
    for retry in range(6)
)
"""Four hosts in 203.0.113.0/24, six retries each from fresh source ports: 24 attempts."""
TV_HTTPS = "".join(https(TV_IP, f"198.51.100.{host}", 50000 + host) for host in range(40))


def stored(hass_storage: dict[str, Any], entry: MockConfigEntry, **data: Any) -> None:
    """Put detection state in the entry's Store file, as a previous run left it."""
    hass_storage[f"phonehome.{entry.entry_id}"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"phonehome.{entry.entry_id}",
        "data": {"analyzer": None, "policies": {}, "allow": []} | data,
    }


async def poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Move time on by one interval and let the scheduled poll run."""
    freezer.tick(POLL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def flush_store(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Let the delayed Store write happen."""
    freezer.tick(timedelta(seconds=SAVE_DELAY + 1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


def finding_kinds(hass: HomeAssistant, entity_id: str) -> set[str]:
    state = hass.states.get(entity_id)
    assert state is not None
    return {finding["kind"] for finding in state.attributes["findings"]}


@pytest.fixture
def quiet(ubus_emulator: UbusEmulator) -> UbusEmulator:
    """The camera and the TV are on the LAN but idle; the rpcd plugin shows [UNREPLIED]."""
    ubus_emulator.plugin_installed = True
    ubus_emulator.proc_text = ""
    ubus_emulator.host_hints = HINTS
    ubus_emulator.dhcp_leases = LEASES
    return ubus_emulator


@pytest.fixture
def monitored(
    hass_storage: dict[str, Any], config_entry: MockConfigEntry, quiet: UbusEmulator
) -> UbusEmulator:
    """The camera and the TV under the monitor policy (no learning period)."""
    stored(hass_storage, config_entry, policies={CAMERA: "monitor", TV: "monitor"})
    return quiet


async def test_foscam_camera_is_phoning_home_after_one_poll(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    assert hass.states.get(PHONING).state == STATE_OFF  # type: ignore[union-attr]
    assert hass.states.get(EVENT).state == STATE_UNKNOWN  # type: ignore[union-attr]
    assert hass.states.get(COUNT).state == "0"  # type: ignore[union-attr]

    monitored.proc_text = FOSCAM
    await poll(hass, freezer)

    phoning = hass.states.get(PHONING)
    assert phoning is not None
    assert phoning.state == STATE_ON
    assert finding_kinds(hass, PHONING) == FOSCAM_KINDS
    signature = next(f for f in phoning.attributes["findings"] if f["kind"] == "signature")
    assert signature["signature"] == "foscam_p2p"
    assert signature["severity"] == "high"
    assert {d["ip"] for d in signature["destinations"]} == {
        f"203.0.113.{host}" for host in (20, 21, 22, 23)
    }
    assert signature["first_seen"] == (T0 + POLL).isoformat()

    camera = device_registry.async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, CAMERA)})
    assert camera is not None
    assert sorted(event.data["kind"] for event in events) == sorted(FOSCAM_KINDS)
    for event in events:
        assert event.data["mac"] == CAMERA
        assert event.data["device_id"] == camera.id
        assert event.data["explanation"]
        assert event.data["severity"] in {"low", "medium", "high"}
        assert event.data["destinations"]

    event_state = hass.states.get(EVENT)
    assert event_state is not None
    assert event_state.state == (T0 + POLL).isoformat(timespec="milliseconds")
    last = events[-1].data
    assert event_state.attributes["event_type"] == last["kind"]
    assert event_state.attributes["explanation"] == last["explanation"]
    assert set(event_state.attributes["event_types"]) >= FOSCAM_KINDS
    assert hass.states.get(COUNT).state == "1"  # type: ignore[union-attr]

    # still there next poll: nothing announced again
    await poll(hass, freezer)
    assert len(events) == len(FOSCAM_KINDS)
    assert hass.states.get(PHONING).state == STATE_ON  # type: ignore[union-attr]


async def test_destinations_carry_their_country(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A DVR asking 114.114.114.114 directly: the finding and the hosts say CN."""
    await setup(hass, config_entry)
    monitored.proc_text = udp_unreplied(CAMERA_IP, "114.114.114.114", 53, 40000)
    await poll(hass, freezer)

    phoning = hass.states.get(PHONING)
    assert phoning is not None
    bypass = next(f for f in phoning.attributes["findings"] if f["kind"] == "dns_bypass")
    assert bypass["destinations"] == [
        {"ip": "114.114.114.114", "port": 53, "protocol": "udp", "country": "CN"}
    ]
    assert " in CN" in bypass["explanation"]
    hosts = hass.states.get("sensor.garage_camera_internet_hosts")
    assert hosts is not None
    assert hosts.attributes["destinations"][0]["country"] == "CN"


@pytest.mark.parametrize(
    "platform", [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.EVENT, Platform.SELECT]
)
async def test_entities(  # noqa: PLR0913, PLR0917 - fixtures
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    with patch("custom_components.phonehome.PLATFORMS", [platform]):
        await setup(hass, config_entry)
        monitored.proc_text = FOSCAM
        await poll(hass, freezer)
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


async def test_tv_doing_https_to_40_hosts_raises_nothing(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    monitored.proc_text = TV_HTTPS
    await poll(hass, freezer)

    assert hass.states.get("sensor.tv_internet_hosts").state == "40"  # type: ignore[union-attr]
    assert hass.states.get(TV_PHONING).state == STATE_OFF  # type: ignore[union-attr]
    assert hass.states.get(TV_PHONING).attributes["findings"] == []  # type: ignore[union-attr]
    assert events == []
    assert hass.states.get(COUNT).state == "0"  # type: ignore[union-attr]


async def test_local_only_policy_flags_the_next_internet_contact(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    quiet: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    await setup(hass, config_entry)
    assert hass.states.get(TV_POLICY).state == "learn"  # type: ignore[union-attr]
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: TV_POLICY, ATTR_OPTION: "local_only"},
        blocking=True,
    )
    assert hass.states.get(TV_POLICY).state == "local_only"  # type: ignore[union-attr]

    quiet.proc_text = https(TV_IP, "198.51.100.7", 51000)
    await poll(hass, freezer)
    assert finding_kinds(hass, TV_PHONING) == {"local_only_violation"}
    await flush_store(hass, freezer)
    assert hass_storage[f"phonehome.{config_entry.entry_id}"]["data"]["policies"] == {
        TV: "local_only"
    }


async def test_switching_back_to_learn_starts_the_baseline_again(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    monitored.proc_text = FOSCAM
    await poll(hass, freezer)
    assert hass.states.get(PHONING).state == STATE_ON  # type: ignore[union-attr]

    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: POLICY, ATTR_OPTION: "learn"},
        blocking=True,
    )
    assert hass.states.get(POLICY).state == "learn"  # type: ignore[union-attr]
    saved = config_entry.runtime_data.coordinator.analyzer.export_state()["devices"][CAMERA]
    assert saved["first_seen"] == (T0 + POLL).isoformat()
    assert len(saved["baseline"]) == 1  # 203.0.113.0/24, UDP 10001


async def test_reset_button_learns_the_device_again(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    quiet: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    await setup(hass, config_entry)
    quiet.proc_text = https(TV_IP, "198.51.100.7", 51000)
    freezer.tick(timedelta(days=2))
    await poll(hass, freezer)
    analyzer = config_entry.runtime_data.coordinator.analyzer
    assert analyzer.export_state()["devices"][TV]["first_seen"] == T0.isoformat()

    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: "button.tv_reset_baseline"}, blocking=True
    )
    now = datetime.now(UTC)
    saved = analyzer.export_state()["devices"][TV]
    assert saved["first_seen"] == now.isoformat()
    assert saved["baseline"] == [("198.51.100.0/24", 443, 6)]
    await flush_store(hass, freezer)
    on_disk = hass_storage[f"phonehome.{config_entry.entry_id}"]["data"]["analyzer"]
    assert on_disk["devices"][TV]["first_seen"] == now.isoformat()
    assert hass.states.get(RESET) is not None


async def test_store_survives_a_restart_without_announcing_again(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    monitored.proc_text = FOSCAM
    await poll(hass, freezer)
    assert len(events) == len(FOSCAM_KINDS)
    await flush_store(hass, freezer)
    saved = hass_storage[f"phonehome.{config_entry.entry_id}"]["data"]
    assert {f["kind"] for f in saved["analyzer"]["devices"][CAMERA]["findings"]} == FOSCAM_KINDS

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    await setup(hass, config_entry)

    assert hass.states.get(PHONING).state == STATE_ON  # type: ignore[union-attr]
    assert hass.states.get(POLICY).state == "monitor"  # type: ignore[union-attr]
    assert len(events) == len(FOSCAM_KINDS)  # restored findings are not news


async def test_the_delayed_write_never_reads_the_live_analyzer(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """The Store writes in an executor thread while the next poll may be folding: the
    state it writes was exported under the lock, in the poll's own job."""
    await setup(hass, config_entry)
    monitored.proc_text = FOSCAM
    await poll(hass, freezer)
    analyzer = config_entry.runtime_data.coordinator.analyzer

    with patch.object(analyzer, "export_state", side_effect=RuntimeError("mid-update")):
        await flush_store(hass, freezer)

    saved = hass_storage[f"phonehome.{config_entry.entry_id}"]["data"]
    assert {f["kind"] for f in saved["analyzer"]["devices"][CAMERA]["findings"]} == FOSCAM_KINDS


async def test_unreadable_detection_state_starts_fresh(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    quiet: UbusEmulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored(
        hass_storage,
        config_entry,
        analyzer={"version": 999},
        allow=[{"network": "not an address"}, {"network": "203.0.113.0/24", "mac": CAMERA}],
    )
    await setup(hass, config_entry)
    assert hass.states.get(PHONING).state == STATE_OFF  # type: ignore[union-attr]
    assert len(config_entry.runtime_data.coordinator.allow) == 1
    assert "Stored detection state unreadable" in caplog.text
    assert "Ignoring unreadable allow-list entry" in caplog.text


@pytest.mark.parametrize(
    "data",
    [
        "not a mapping",
        None,
        {"analyzer": [], "policies": [], "allow": "x"},
        {"policies": {CAMERA: "block", TV: "monitor"}, "allow": ["x"]},
        {"analyzer": {"version": 1, "devices": {CAMERA: {"first_seen": "yesterday"}}}},
        {"quarantines": [CAMERA]},
    ],
)
async def test_corrupt_store_file_does_not_break_setup(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    quiet: UbusEmulator,
    hass_storage: dict[str, Any],
    data: Any,
) -> None:
    hass_storage[f"phonehome.{config_entry.entry_id}"] = {"version": 1, "data": data}
    await setup(hass, config_entry)
    assert hass.states.get(PHONING).state == STATE_OFF  # type: ignore[union-attr]
    assert hass.states.get(POLICY).state == "learn"  # type: ignore[union-attr]
    coordinator = config_entry.runtime_data.coordinator
    assert coordinator.allow == []
    assert set(coordinator.policies) <= {TV}


async def test_store_that_cannot_be_read_does_not_break_setup(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    quiet: UbusEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with patch(
        "custom_components.phonehome.store.Store.async_load",
        side_effect=HomeAssistantError("bad JSON"),
    ):
        await setup(hass, config_entry)
    assert hass.states.get(PHONING).state == STATE_OFF  # type: ignore[union-attr]
    assert "starting fresh" in caplog.text


async def test_removing_the_entry_deletes_its_store(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    quiet: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    await setup(hass, config_entry)
    await flush_store(hass, freezer)
    assert f"phonehome.{config_entry.entry_id}" in hass_storage
    assert await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert f"phonehome.{config_entry.entry_id}" not in hass_storage


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            "window_minutes": 30,
            "fanout_hosts": 5,
            "unreplied_attempts": 100,
            "learning_hours": 0,
            "lan_resolvers": ["192.168.1.1"],
        }
    ],
)
async def test_options_reach_the_analyzer(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    monitored: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    settings = config_entry.runtime_data.coordinator.analyzer.settings
    assert settings.window == timedelta(minutes=30)
    assert (settings.fanout_hosts, settings.unreplied_attempts) == (5, 100)
    assert settings.learning_period == timedelta(0)
    assert settings.lan_resolvers == frozenset({"192.168.1.1"})

    monitored.proc_text = FOSCAM  # four hosts, 24 attempts: under both thresholds now
    await poll(hass, freezer)
    assert finding_kinds(hass, PHONING) == {"signature"}
