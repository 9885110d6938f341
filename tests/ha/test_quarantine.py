"""Quarantine in Home Assistant: switch, services, safety, persistence, re-assertion, auto."""

import copy
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import User
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.phonehome.const import DOMAIN, EVENT_FINDING
from custom_components.phonehome.diagnostics import async_get_config_entry_diagnostics
from custom_components.phonehome.quarantine import ip_set
from custom_components.phonehome.store import STORAGE_MINOR_VERSION
from tests.emulators.ubus import UbusEmulator, User as EmulatedUser
from tests.ha.conftest import setup
from tests.ha.test_detection import CAMERA, FOSCAM, POLL, TV, poll, stored
from tests.routers.test_openwrt import HINTS, LEASES

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SWITCH = "switch.garage_camera_quarantine"
TV_SWITCH = "switch.tv_quarantine"
BLOCKED = "sensor.garage_camera_blocked_attempts"
EVENT = "event.garage_camera_phone_home"
SECTION = "phonehome_c0ffee000001"
TV_SECTION = "phonehome_c0ffee000002"
LOST = "quarantine_lost_c0ffee000001"
ROUTER_MAC = "94:83:c4:00:00:01"
READ_ONLY = (
    "file.read",
    "session.access",
    "system.board",
    "luci.getConntrackList",
    "luci-rpc.getHostHints",
    "luci-rpc.getDHCPLeases",
    "luci-rpc.getNetworkDevices",
    "phonehome.conntrack",
    "phonehome.summary",
)
"""A login that may read everything a poll needs and change nothing."""

pytestmark = pytest.mark.freeze_time(T0)


@pytest.fixture
def lan(ubus_emulator: UbusEmulator) -> UbusEmulator:
    """The camera, the TV and a laptop on the LAN, idle; the rpcd plugin installed."""
    ubus_emulator.plugin_installed = True
    ubus_emulator.proc_text = ""
    ubus_emulator.host_hints = copy.deepcopy(HINTS)
    ubus_emulator.dhcp_leases = copy.deepcopy(LEASES)
    return ubus_emulator


def rules(emulator: UbusEmulator) -> set[str]:
    """The phonehome sections in the router's committed firewall config."""
    return {name for name in emulator.uci["firewall"] if name.startswith("phonehome_")}


def store_data(hass_storage: dict[str, Any], entry: MockConfigEntry) -> dict[str, Any]:
    data: dict[str, Any] = hass_storage[f"phonehome.{entry.entry_id}"]["data"]
    return data


def stored_quarantines(
    hass_storage: dict[str, Any], entry: MockConfigEntry, **quarantines: dict[str, Any]
) -> None:
    """The entry's Store as a previous run left it, with these quarantines by MAC."""
    hass_storage[f"phonehome.{entry.entry_id}"] = {
        "version": 1,
        "minor_version": STORAGE_MINOR_VERSION,
        "key": f"phonehome.{entry.entry_id}",
        "data": {"analyzer": None, "policies": {}, "allow": [], "quarantines": quarantines},
    }


def stored_quarantine(
    hass_storage: dict[str, Any], entry: MockConfigEntry, end: datetime | None = None
) -> None:
    """The camera quarantined since an hour before T0, as a previous run left it."""
    camera = {
        "name": SECTION,
        "addresses": ["192.168.1.20"],
        "flows_cut": True,
        "start": (T0 - timedelta(hours=1)).isoformat(),
        "end": end.isoformat() if end is not None else None,
    }
    stored_quarantines(hass_storage, entry, **{CAMERA: camera})


def state(hass: HomeAssistant, entity_id: str) -> str:
    current = hass.states.get(entity_id)
    assert current is not None
    return current.state


def device_id(hass: HomeAssistant, mac: str) -> str:
    device = dr.async_get(hass).async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, mac)})
    assert device is not None
    return device.id


async def tick(hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta) -> None:
    """Move time on; let every timer due and the poll it starts finish."""
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def quarantine(hass: HomeAssistant, context: Context | None = None, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, "quarantine", data, blocking=True, context=context)


async def release(hass: HomeAssistant, context: Context | None = None, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, "release", data, blocking=True, context=context)


async def switch(hass: HomeAssistant, service: str, entity_id: str = SWITCH) -> None:
    await hass.services.async_call(
        SWITCH_DOMAIN, service, {ATTR_ENTITY_ID: entity_id}, blocking=True
    )


async def test_switch_quarantines_and_releases_the_camera(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    assert state(hass, SWITCH) == STATE_OFF

    await switch(hass, SERVICE_TURN_ON)
    assert rules(lan) == {SECTION}
    assert lan.uci["firewall"][SECTION]["src_mac"].lower() == CAMERA
    assert state(hass, SWITCH) == STATE_ON
    saved = store_data(hass_storage, config_entry)["quarantines"]  # written at once
    assert saved[CAMERA]["start"] == T0.isoformat()
    assert saved[CAMERA]["end"] is None
    assert saved[CAMERA]["name"] == SECTION
    event = hass.states.get(EVENT)
    assert event is not None
    assert event.attributes["event_type"] == "quarantined"
    assert event.attributes["reason"] == "user"

    await switch(hass, SERVICE_TURN_OFF)
    assert rules(lan) == set()
    assert state(hass, SWITCH) == STATE_OFF
    assert store_data(hass_storage, config_entry)["quarantines"] == {}
    assert hass.states.get(EVENT).attributes["event_type"] == "released"  # type: ignore[union-attr]
    assert [(e.data["kind"], e.data["mac"], e.data["reason"]) for e in events] == [
        ("quarantined", CAMERA, "user"),
        ("released", CAMERA, "user"),
    ]
    assert events[0].data["device_id"] == device_id(hass, CAMERA)


async def test_quarantine_twice_keeps_one_rule_and_its_start(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    await setup(hass, config_entry)
    await quarantine(hass, mac=CAMERA)
    freezer.tick(timedelta(minutes=5))
    await quarantine(hass, mac=CAMERA.upper())
    assert rules(lan) == {SECTION}
    assert store_data(hass_storage, config_entry)["quarantines"][CAMERA]["start"] == T0.isoformat()


async def test_services_target_devices_and_entities_for_a_while(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    await quarantine(
        hass,
        device_id=device_id(hass, CAMERA),
        entity_id="sensor.tv_internet_hosts",
        duration={"hours": 1},
    )
    assert rules(lan) == {SECTION, TV_SECTION}
    assert state(hass, TV_SWITCH) == STATE_ON
    end = (T0 + timedelta(hours=1)).isoformat()
    saved = store_data(hass_storage, config_entry)["quarantines"]
    assert {mac: item["end"] for mac, item in saved.items()} == {CAMERA: end, TV: end}
    assert events[0].data["end"] == end

    await release(hass, entity_id=TV_SWITCH)
    assert rules(lan) == {SECTION}

    await tick(hass, freezer, timedelta(minutes=59))
    assert rules(lan) == {SECTION}

    await tick(hass, freezer, timedelta(minutes=1))
    assert rules(lan) == set()
    assert state(hass, SWITCH) == STATE_OFF
    assert events[-1].data | {"device_id": None} == {
        "mac": CAMERA,
        "device_id": None,
        "kind": "released",
        "reason": "expired",
    }
    assert store_data(hass_storage, config_entry)["quarantines"] == {}


@pytest.mark.parametrize("service", ["quarantine", "release"])
async def test_quarantine_services_are_admin_only(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_read_only_user: User,
    service: str,
) -> None:
    await setup(hass, config_entry)
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            service,
            {"mac": CAMERA},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert rules(lan) == set()


@pytest.mark.parametrize(
    ("break_router", "key", "placeholder"),
    [
        (lambda e: setattr(e, "rpcd_alive", False), "quarantine_router_unreachable", None),
        (lambda e: e.statuses.update({"uci.add": 6}), "quarantine_permission_denied", "acl"),
        (lambda e: setattr(e, "firewall_reload_lag", 10), "quarantine_not_verified", None),
        (lambda e: e.statuses.update({"uci.get": 5}), "quarantine_bad_response", None),
        (
            lambda e: (e.users["root"].__setattr__("password", "changed"), e.expire_sessions()),
            "quarantine_auth_failed",
            None,
        ),
    ],
    ids=["unreachable", "permission", "not_verified", "bad_response", "auth"],
)
async def test_a_quarantine_the_router_did_not_take_is_not_recorded(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    break_router: Any,
    key: str,
    placeholder: str | None,
) -> None:
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    config_entry.runtime_data.router.firewall.verify_timeout = 0
    break_router(lan)
    with pytest.raises(HomeAssistantError) as raised:
        await switch(hass, SERVICE_TURN_ON)
    assert raised.value.translation_key == key
    assert raised.value.translation_placeholders["device"] == f"Garage camera ({CAMERA})"
    assert f"Garage camera ({CAMERA})" in str(raised.value)  # the translated message
    if placeholder is not None:
        assert raised.value.translation_placeholders[placeholder]
    assert state(hass, SWITCH) == STATE_OFF
    assert CAMERA not in config_entry.runtime_data.coordinator.quarantines.active
    assert store_data(hass_storage, config_entry)["quarantines"] == {}  # the intent undone
    assert events == []


async def test_release_the_router_refuses_is_kept(
    hass: HomeAssistant, config_entry: MockConfigEntry, lan: UbusEmulator
) -> None:
    await setup(hass, config_entry)
    await switch(hass, SERVICE_TURN_ON)
    lan.statuses["uci.delete"] = 6
    with pytest.raises(HomeAssistantError) as raised:
        await release(hass, mac=CAMERA)
    assert raised.value.translation_key == "quarantine_permission_denied"
    assert state(hass, SWITCH) == STATE_ON
    assert rules(lan) == {SECTION}


@pytest.mark.parametrize(
    ("target", "key"),
    [
        ({"mac": ROUTER_MAC}, "quarantine_refused_router"),
        ({"mac": "c0:ff:ee:00:00:03"}, "quarantine_refused_router"),
        ({"mac": TV}, "quarantine_refused_ha_host"),
        ({"mac": CAMERA}, "quarantine_refused_protected"),
        ({"mac": "00:11:22:33:44:55"}, "unknown_device"),
        ({"mac": "not a mac"}, "invalid_mac"),
        ({"device_id": "no such device"}, "unknown_device"),
        ({"entity_id": "sensor.no_such_sensor"}, "unknown_device"),
    ],
)
@pytest.mark.parametrize("entry_options", [{"protected_devices": [CAMERA]}])
async def test_refused_targets_say_why(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    target: dict[str, Any],
    key: str,
) -> None:
    lan.host_hints["C0:FF:EE:00:00:03"]["ipaddrs"] = ["127.0.0.1"]  # the router's address
    lan.host_hints["C0:FF:EE:00:00:02"]["ipaddrs"] = ["10.10.10.10"]  # Home Assistant's
    await setup(hass, config_entry)
    with pytest.raises(ServiceValidationError) as raised:
        await quarantine(hass, **target)
    assert raised.value.translation_key == key
    assert "{" not in str(raised.value)  # every placeholder filled
    assert rules(lan) == set()


async def test_the_router_hub_device_is_refused(
    hass: HomeAssistant, config_entry: MockConfigEntry, lan: UbusEmulator
) -> None:
    await setup(hass, config_entry)
    hub = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, ROUTER_MAC)})
    assert hub is not None
    with pytest.raises(ServiceValidationError) as raised:
        await quarantine(hass, device_id=hub.id)
    assert raised.value.translation_key == "quarantine_refused_router"


async def test_a_device_of_another_integration_is_unknown(
    hass: HomeAssistant, config_entry: MockConfigEntry, lan: UbusEmulator
) -> None:
    await setup(hass, config_entry)
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id,
        connections={(dr.CONNECTION_NETWORK_MAC, "02:00:00:00:00:42")},
    )
    with pytest.raises(ServiceValidationError) as raised:
        await quarantine(hass, device_id=device.id)
    assert raised.value.translation_key == "unknown_device"


def test_addresses_that_are_not_ip_addresses_are_skipped() -> None:
    assert ip_set(["router.lan", "fe80::1%br-lan", "192.168.1.1"]) == {
        ip_address("fe80::1"),
        ip_address("192.168.1.1"),
    }


async def test_a_login_without_firewall_rights_gets_no_switch(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    lan.users["root"] = EmulatedUser("secret", set(READ_ONLY))
    stored_quarantine(hass_storage, config_entry)
    await setup(hass, config_entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, LOST) is None  # unseen is not lost
    assert hass.states.get(SWITCH) is None
    assert hass.states.get(BLOCKED) is None
    with pytest.raises(HomeAssistantError) as raised:
        await quarantine(hass, mac=CAMERA)
    assert raised.value.translation_key == "quarantine_unsupported"


async def test_stored_quarantine_is_reasserted_at_start(  # noqa: PLR0913, PLR0917 - fixtures
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The router was reset while Home Assistant was down: the rule is back after setup."""
    issue_registry = ir.async_get(hass)
    stored_quarantine(hass_storage, config_entry)
    await setup(hass, config_entry)
    assert rules(lan) == {SECTION}
    assert state(hass, SWITCH) == STATE_ON
    assert "no longer blocks c0:ff:ee:00:00:01" in caplog.text
    issue = issue_registry.async_get_issue(DOMAIN, LOST)
    assert issue is not None
    assert issue.translation_key == "quarantine_lost"

    await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, LOST) is None
    saved = store_data(hass_storage, config_entry)["quarantines"][CAMERA]
    assert saved["start"] == (T0 - timedelta(hours=1)).isoformat()


async def test_a_rule_deleted_on_the_router_comes_back_with_a_repair_issue(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issue_registry = ir.async_get(hass)
    await setup(hass, config_entry)
    await switch(hass, SERVICE_TURN_ON)
    await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, LOST) is None

    lan.statuses["uci.add"] = 6  # someone deleted the rule, and re-adding fails at first
    del lan.uci["firewall"][SECTION]
    await poll(hass, freezer)
    issue = issue_registry.async_get_issue(DOMAIN, LOST)
    assert issue is not None
    assert issue.translation_key == "quarantine_failed"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert config_entry.runtime_data.coordinator.last_update_success
    assert state(hass, SWITCH) == STATE_ON  # still the intent

    await poll(hass, freezer)  # still failing: logged once
    assert caplog.text.count("no longer blocks c0:ff:ee:00:00:01") == 1

    del lan.statuses["uci.add"]
    await poll(hass, freezer)
    assert rules(lan) == {SECTION}
    issue = issue_registry.async_get_issue(DOMAIN, LOST)
    assert issue is not None
    assert issue.translation_key == "quarantine_lost"

    await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, LOST) is None
    assert "The router blocks c0:ff:ee:00:00:01 again" in caplog.text


async def test_a_quarantine_that_ended_while_down_is_released_at_start(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    await setup(hass, config_entry)
    await quarantine(hass, mac=CAMERA, duration="00:30:00")
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()

    await tick(hass, freezer, timedelta(hours=2))
    assert rules(lan) == {SECTION}  # nothing ran while unloaded

    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    assert rules(lan) == set()
    assert state(hass, SWITCH) == STATE_OFF
    assert store_data(hass_storage, config_entry)["quarantines"] == {}
    assert [(e.data["kind"], e.data["reason"]) for e in events] == [("released", "expired")]


async def test_a_pending_timed_quarantine_ends_on_time_after_a_restart(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    stored_quarantine(hass_storage, config_entry, end=T0 + timedelta(seconds=10))
    await setup(hass, config_entry)
    assert rules(lan) == {SECTION}
    await tick(hass, freezer, timedelta(seconds=10))  # before the next poll: the timer did it
    assert rules(lan) == set()


async def test_a_release_that_fails_at_its_end_is_retried_each_poll(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup(hass, config_entry)
    await quarantine(hass, mac=CAMERA, duration=timedelta(minutes=1))
    await quarantine(hass, mac=CAMERA, duration=timedelta(minutes=2))  # the later end counts
    lan.statuses["uci.delete"] = 6
    await tick(hass, freezer, timedelta(minutes=2))
    assert "Cannot release c0:ff:ee:00:00:01 yet" in caplog.text
    assert state(hass, SWITCH) == STATE_ON
    del lan.statuses["uci.delete"]
    await poll(hass, freezer)
    assert rules(lan) == set()
    assert state(hass, SWITCH) == STATE_OFF


async def test_releasing_a_device_the_router_forgot_cleans_the_store(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    del lan.host_hints["C0:FF:EE:00:00:01"]
    lan.dhcp_leases["dhcp_leases"] = lan.dhcp_leases["dhcp_leases"][1:]
    stored_quarantine(hass_storage, config_entry)
    await setup(hass, config_entry)
    assert rules(lan) == {SECTION}  # re-asserted by MAC
    del lan.uci["firewall"][SECTION]  # and gone again (router reset)

    await release(hass, mac=CAMERA)
    assert store_data(hass_storage, config_entry)["quarantines"] == {}
    assert rules(lan) == set()


async def test_unreadable_stored_quarantine_is_dropped(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored_quarantine(hass_storage, config_entry)
    store_data(hass_storage, config_entry)["quarantines"][CAMERA]["start"] = "yesterday"
    store_data(hass_storage, config_entry)["quarantines"][TV] = {
        "start": T0.isoformat(),
        "end": None,
        "addresses": "192.168.1.21",
    }
    await setup(hass, config_entry)
    assert rules(lan) == set()
    assert "Ignoring unreadable stored quarantine" in caplog.text


async def test_store_1_1_migrates_to_1_3(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    stored(hass_storage, config_entry, policies={CAMERA: "monitor"})
    await setup(hass, config_entry)
    saved = hass_storage[f"phonehome.{config_entry.entry_id}"]
    assert saved["minor_version"] == STORAGE_MINOR_VERSION == 3
    assert saved["data"]["quarantines"] == {}
    assert saved["data"]["policies"] == {CAMERA: "monitor"}
    assert state(hass, "select.garage_camera_internet_policy") == "monitor"


async def test_blocked_attempts_count_while_quarantined(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    assert state(hass, BLOCKED) == STATE_UNAVAILABLE
    await switch(hass, SERVICE_TURN_ON)
    lan.rule_counters[SECTION] = 42
    await poll(hass, freezer)
    assert state(hass, BLOCKED) == "42"
    lan.rule_counters[SECTION] = 57
    await poll(hass, freezer)
    assert state(hass, BLOCKED) == "57"
    await switch(hass, SERVICE_TURN_OFF)
    assert state(hass, BLOCKED) == STATE_UNAVAILABLE


@pytest.mark.parametrize("platform", [Platform.SWITCH, Platform.SENSOR])
async def test_entities(  # noqa: PLR0913, PLR0917 - fixtures
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    with patch("custom_components.phonehome.PLATFORMS", [platform]):
        await setup(hass, config_entry)
        await quarantine(hass, mac=CAMERA)
        lan.rule_counters[SECTION] = 7
        await poll(hass, freezer)
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


@pytest.mark.parametrize(
    "entry_options",
    [{"auto_quarantine_kinds": ["signature"], "auto_quarantine_minutes": 60}],
)
async def test_a_new_signature_finding_quarantines_the_camera(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    stored(hass_storage, config_entry, policies={CAMERA: "monitor", TV: "monitor"})
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    lan.proc_text = FOSCAM
    await poll(hass, freezer)

    assert rules(lan) == {SECTION}
    assert state(hass, SWITCH) == STATE_ON
    auto = [e.data for e in events if e.data["kind"] == "auto_quarantined"]
    assert auto == [
        {
            "mac": CAMERA,
            "device_id": device_id(hass, CAMERA),
            "kind": "auto_quarantined",
            "reason": "auto",
            "finding": "signature",
            "start": (T0 + POLL).isoformat(),
            "end": (T0 + POLL + timedelta(hours=1)).isoformat(),
        }
    ]
    event = hass.states.get(EVENT)
    assert event is not None
    assert "auto_quarantined" in event.attributes["event_types"]

    await switch(hass, SERVICE_TURN_OFF)  # the user lets it out again
    event = hass.states.get(EVENT)
    assert event is not None
    assert event.attributes["event_type"] == "released"  # the poll's findings not replayed

    await poll(hass, freezer)  # the finding is not new any more: it stays out
    assert rules(lan) == set()
    assert len([e for e in events if e.data["kind"] == "auto_quarantined"]) == 1


@pytest.mark.parametrize(
    "entry_options",
    [{"auto_quarantine_kinds": ["signature"], "protected_devices": [CAMERA]}],
)
async def test_auto_quarantine_spares_protected_devices(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    stored(hass_storage, config_entry, policies={CAMERA: "monitor"})
    await setup(hass, config_entry)
    lan.proc_text = FOSCAM
    await poll(hass, freezer)
    assert rules(lan) == set()


@pytest.mark.parametrize("entry_options", [{"auto_quarantine_kinds": ["p2p_fanout"]}])
async def test_auto_quarantine_failure_raises_a_repair_issue_not_the_poll(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    issue_registry = ir.async_get(hass)
    stored(hass_storage, config_entry, policies={CAMERA: "monitor"})
    await setup(hass, config_entry)
    lan.statuses["uci.commit"] = 6
    lan.proc_text = FOSCAM
    await poll(hass, freezer)
    assert config_entry.runtime_data.coordinator.last_update_success
    assert state(hass, SWITCH) == STATE_OFF
    issue = issue_registry.async_get_issue(DOMAIN, "auto_quarantine_failed_c0ffee000001")
    assert issue is not None
    assert issue.translation_placeholders["kind"] == "p2p_fanout"  # type: ignore[index]

    del lan.statuses["uci.commit"]
    await switch(hass, SERVICE_TURN_ON)
    assert issue_registry.async_get_issue(DOMAIN, "auto_quarantine_failed_c0ffee000001") is None


async def test_diagnostics_list_quarantines(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    await quarantine(hass, mac=CAMERA, duration=3600)
    lan.rule_counters[SECTION] = 3
    await poll(hass, freezer)
    diagnostics = await async_get_config_entry_diagnostics(hass, config_entry)
    assert diagnostics["quarantines"] == {
        CAMERA: {
            "start": T0.isoformat(),
            "end": (T0 + timedelta(hours=1)).isoformat(),
            "enforced": True,
            "blocked": 3,
        }
    }
    assert diagnostics["router"]["capabilities"]["quarantine"] is True
    assert "secret" not in str(diagnostics)
