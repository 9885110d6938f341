"""A UniFi site in Home Assistant: entities per connection source, quarantine through an
object-oriented network config (and block-sta with full block), no password anywhere."""

import copy
import json
import logging
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.phonehome.const import CONF_FULL_BLOCK, CONF_GATEWAY, CONF_HOST_KEY, DOMAIN
from custom_components.phonehome.quarantine import lost_issue_id
from custom_components.phonehome.routers.unifi_parse import quarantine_config
from tests.emulators.ssh import SshEmulator
from tests.emulators.unifi import NETWORK, UniFiEmulator, User
from tests.ha.conftest import setup
from tests.ha.test_config_flow_unifi import PASSWORD, UNIQUE_ID, unifi_entry
from tests.ha.test_ssh import PASSWORD as SSH_PASSWORD, poll, ssh_emulator

__all__ = ["ssh_emulator"]  # the fixture, for the gateway

CAMERA = "ac:cc:de:12:34:56"
CAMERA_CONFIG = "phonehome_acccde123456"
CONFIGS = f"{NETWORK}/v2/api/site/default/object-oriented-network-configs"
CONFIG = f"{NETWORK}/v2/api/site/default/object-oriented-network-config"
STAMGR = f"{NETWORK}/api/s/default/cmd/stamgr"

FLOW_KEYS = {"phoning_home", "internet_hosts", "internet_connections", "last_phone_home"}
FLOW_KEYS |= {"internet_policy", "reset_baseline"}
ALWAYS_KEYS = {"quarantine", "blocked_attempts", "phone_home"}


@pytest.fixture
def controller(unifi_emulator: UniFiEmulator) -> UniFiEmulator:
    """The console, with one flow of the camera to a public host among the fixture's."""
    unifi_emulator.users = {"hass": User(PASSWORD)}
    flow = copy.deepcopy(unifi_emulator.flows[0])
    flow["source"].update(ip="192.168.0.2", mac=CAMERA)
    unifi_emulator.flows.append(flow)
    return unifi_emulator


async def loaded(hass: HomeAssistant, emulator: UniFiEmulator, **changes: Any) -> MockConfigEntry:
    options = changes.pop("options", {})
    entry = unifi_entry(hass, emulator, **changes)
    hass.config_entries.async_update_entry(entry, options=options)
    await setup(hass, entry)
    return entry


def entity_keys(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, set[str]]:
    """The entry's entities, by subject (a device MAC, or "router") and key."""
    found: dict[str, set[str]] = {}
    for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id):
        unique_id = entity.unique_id
        if unique_id.startswith(f"{UNIQUE_ID}_"):
            found.setdefault("router", set()).add(unique_id.removeprefix(f"{UNIQUE_ID}_"))
        else:
            mac, _, key = unique_id.partition("_")
            found.setdefault(mac, set()).add(key)
    return found


def entity_id(hass: HomeAssistant, platform: str, key: str, mac: str = CAMERA) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{mac}_{key}")
    assert found is not None
    return found


def state(hass: HomeAssistant, platform: str, key: str, mac: str = CAMERA) -> str:
    current = hass.states.get(entity_id(hass, platform, key, mac))
    assert current is not None
    return current.state


async def switch(hass: HomeAssistant, service: str) -> None:
    await hass.services.async_call(
        "switch", service, {"entity_id": entity_id(hass, "switch", "quarantine")}, blocking=True
    )


def since(emulator: UniFiEmulator, start: int) -> list[tuple[str, str, Any]]:
    return emulator.requests[start:]


# ---------------------------------------------------------------- entities per source


async def test_traffic_flows_give_the_same_entities_as_openwrt(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    entry = await loaded(hass, controller)
    keys = entity_keys(hass, entry)
    assert keys["router"] == {"devices_phoning_home", "poll_duration"}
    assert keys[CAMERA] == FLOW_KEYS | ALWAYS_KEYS
    assert len(keys) == 5  # the router and the four clients
    assert state(hass, "sensor", "internet_hosts") == "1"
    diagnostics_source = entry.runtime_data.coordinator.data.table_source
    assert diagnostics_source == "traffic_flows"


async def test_dpi_gives_upload_and_download_totals_only(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    controller.traffic_flows = False
    entry = await loaded(hass, controller)
    keys = entity_keys(hass, entry)
    assert keys["router"] == {"poll_duration"}
    assert keys[CAMERA] == {"upload", "download"} | ALWAYS_KEYS
    assert float(state(hass, "sensor", "upload")) == 250e-6  # 200 + 50 bytes, in MB
    assert float(state(hass, "sensor", "download")) == 1500e-6


async def test_without_any_source_only_the_quarantine_remains(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    controller.traffic_flows = controller.dpi = False
    entry = await loaded(hass, controller)
    keys = entity_keys(hass, entry)
    assert keys["router"] == {"poll_duration"}
    assert keys[CAMERA] == ALWAYS_KEYS
    assert ir.async_get(hass).issues == {}  # not "too many connections to read"


async def test_the_gateway_over_ssh_gives_the_flows(
    hass: HomeAssistant,
    controller: UniFiEmulator,
    ssh_emulator: SshEmulator,
    hass_client: ClientSessionGenerator,
) -> None:
    gateway = {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: ssh_emulator.port,
        CONF_USERNAME: "root",
        CONF_PASSWORD: SSH_PASSWORD,
        CONF_HOST_KEY: ssh_emulator.public_host_key,
    }
    entry = await loaded(hass, controller, **{CONF_GATEWAY: gateway})
    keys = entity_keys(hass, entry)
    assert keys["router"] == {"tracked_connections", "devices_phoning_home", "poll_duration"}
    assert keys[CAMERA] == FLOW_KEYS | ALWAYS_KEYS
    assert entry.runtime_data.coordinator.data.table_source in {"proc", "conntrack"}
    assert entry.runtime_data.coordinator.data.flows > 0
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert SSH_PASSWORD not in json.dumps(diagnostics)
    assert diagnostics["entry"]["data"][CONF_GATEWAY][CONF_PASSWORD] == "**REDACTED**"


async def test_the_hub_is_a_ubiquiti_device_without_a_mac(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    entry = await loaded(hass, controller)
    hub = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, UNIQUE_ID)})
    assert hub is not None
    assert (hub.manufacturer, hub.model, hub.sw_version) == ("Ubiquiti", "UDMPRO", "7.4.162")
    assert hub.connections == set()
    assert hub.config_entries == {entry.entry_id}


# ---------------------------------------------------------------- quarantine


async def test_switch_quarantines_through_an_oon_config_and_releases_it(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    await loaded(hass, controller)
    start = len(controller.requests)
    await switch(hass, "turn_on")
    assert state(hass, "switch", "quarantine") == STATE_ON
    assert since(controller, start) == [
        ("GET", CONFIGS, None),
        ("POST", CONFIG, quarantine_config(CAMERA_CONFIG, CAMERA)),
        ("GET", CONFIGS, None),
    ]
    (config,) = controller.ours()
    start = len(controller.requests)
    await switch(hass, "turn_off")
    assert state(hass, "switch", "quarantine") == STATE_OFF
    assert since(controller, start) == [
        ("GET", CONFIGS, None),
        ("DELETE", f"{CONFIG}/{config['_id']}", None),
        ("GET", CONFIGS, None),
    ]
    assert controller.ours() == []


async def test_a_config_deleted_on_the_controller_comes_back_with_a_repair_issue(
    hass: HomeAssistant, controller: UniFiEmulator, freezer: FrozenDateTimeFactory
) -> None:
    await loaded(hass, controller)
    await switch(hass, "turn_on")
    controller.configs.remove(controller.ours()[0])
    start = len(controller.requests)
    await poll(hass, freezer)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, lost_issue_id(CAMERA))
    assert issue is not None
    assert issue.translation_key == "quarantine_lost"
    assert ("POST", CONFIG, quarantine_config(CAMERA_CONFIG, CAMERA)) in since(controller, start)
    assert len(controller.ours()) == 1
    await poll(hass, freezer)
    assert ir.async_get(hass).async_get_issue(DOMAIN, lost_issue_id(CAMERA)) is None
    assert state(hass, "switch", "quarantine") == STATE_ON


async def test_full_block_blocks_the_station_and_unblocks_it_after_a_restart(
    hass: HomeAssistant, controller: UniFiEmulator, hass_storage: dict[str, Any]
) -> None:
    entry = await loaded(hass, controller, options={CONF_FULL_BLOCK: True})
    await switch(hass, "turn_on")
    assert controller.calls("POST", STAMGR) == [{"cmd": "block-sta", "mac": CAMERA}]
    assert controller.clients[0]["blocked"] is True
    stored = hass_storage[f"phonehome.{entry.entry_id}"]["data"]["quarantines"][CAMERA]
    assert stored["station_blocked"] is True
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await switch(hass, "turn_off")
    assert controller.calls("POST", STAMGR)[1:] == [{"cmd": "unblock-sta", "mac": CAMERA}]
    assert controller.clients[0]["blocked"] is False
    assert controller.ours() == []


async def test_full_block_is_lifted_after_the_config_was_applied_again(
    hass: HomeAssistant, controller: UniFiEmulator, freezer: FrozenDateTimeFactory
) -> None:
    await loaded(hass, controller, options={CONF_FULL_BLOCK: True})
    await switch(hass, "turn_on")
    controller.configs.remove(controller.ours()[0])
    await poll(hass, freezer)  # applied again; the station is still blocked: not blocked twice
    assert len(controller.calls("POST", STAMGR)) == 1
    await switch(hass, "turn_off")
    assert controller.calls("POST", STAMGR)[-1] == {"cmd": "unblock-sta", "mac": CAMERA}


async def test_without_full_block_the_station_is_never_blocked(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    await loaded(hass, controller)
    await switch(hass, "turn_on")
    await switch(hass, "turn_off")
    assert controller.calls("POST", STAMGR) == []


async def test_a_read_only_account_gets_no_quarantine_switch(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    controller.users["hass"].role = "readonly"
    entry = await loaded(hass, controller)
    assert "quarantine" not in entity_keys(hass, entry)[CAMERA]


# ---------------------------------------------------------------- secrets


async def test_the_password_is_in_no_log_and_no_diagnostics(
    hass: HomeAssistant,
    controller: UniFiEmulator,
    caplog: pytest.LogCaptureFixture,
    hass_client: ClientSessionGenerator,
) -> None:
    caplog.set_level(logging.DEBUG)
    entry = await loaded(hass, controller, options={CONF_FULL_BLOCK: True})
    await switch(hass, "turn_on")
    controller.expire_sessions()  # a fresh login, logged at debug level
    await entry.runtime_data.coordinator.async_refresh()
    await switch(hass, "turn_off")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["router"]["kind"] == "unifi"
    assert PASSWORD not in json.dumps(diagnostics)
    assert PASSWORD not in caplog.text
    assert controller.calls("POST", "/api/auth/login")[-1]["password"] == PASSWORD
