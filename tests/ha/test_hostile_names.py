"""Names that devices chose, in Home Assistant: cleaned in the registry, states and reports.

A camera announces HTML, control characters and 10 kB as its name; the TV a
bidi override. What Home Assistant shows (device name, entity names, the report,
the dashboard's markdown) carries none of it.
"""

import copy
import unicodedata
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.template import Template
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.phonehome.const import DOMAIN
from custom_components.phonehome.core.labels import MAX_LABEL
from tests.emulators.ubus import UbusEmulator
from tests.ha.conftest import setup
from tests.ha.test_demo import dashboard_cards
from tests.ha.test_detection import CAMERA, FOSCAM, T0, TV, poll
from tests.routers.test_openwrt import HINTS, LEASES

pytestmark = pytest.mark.freeze_time(T0)

HOSTILE = "<img src=x onerror=alert(1)>\x1b[2J\u202e" + "A" * 10_000
SHOWN = ("img src=x onerror=alert(1) (2J" + "A" * 64)[: MAX_LABEL - 1] + "…"
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def hostile(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    ubus_emulator: UbusEmulator,
    freezer: FrozenDateTimeFactory,
) -> UbusEmulator:
    """The camera (phoning home) names itself HOSTILE; the TV's lease name hides a bidi override."""
    hints = copy.deepcopy(HINTS)
    hints["C0:FF:EE:00:00:01"]["name"] = HOSTILE
    leases: dict[str, Any] = copy.deepcopy(LEASES)
    leases["dhcp_leases"][1]["hostname"] = "\u202evt\u202c room"
    ubus_emulator.host_hints = hints
    ubus_emulator.dhcp_leases = leases
    ubus_emulator.proc_text = ""
    await setup(hass, config_entry)
    ubus_emulator.proc_text = FOSCAM
    await poll(hass, freezer)
    return ubus_emulator


def _device(device_registry: dr.DeviceRegistry, mac: str) -> dr.DeviceEntry:
    device = device_registry.async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, mac)})
    assert device is not None
    return device


def _strings(value: object) -> list[str]:
    """Every string inside an attribute value (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.items() for text in _strings(list(item))]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


def _safe(text: str) -> bool:
    return "<" not in text and not any(unicodedata.category(char) in {"Cc", "Cf"} for char in text)


@pytest.mark.usefixtures("hostile")
async def test_device_names_are_cleaned_and_cut(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    assert _device(device_registry, CAMERA).name == SHOWN
    assert _device(device_registry, TV).name == "vt room"


@pytest.mark.usefixtures("hostile")
async def test_every_entity_name_and_attribute_is_safe(hass: HomeAssistant) -> None:
    states = [state for state in hass.states.async_all() if state.entity_id != "sun.sun"]
    assert len(states) > 10
    for state in states:
        assert _safe(state.entity_id)
        assert _safe(state.name)
        assert len(state.name) <= MAX_LABEL + len(" internet connections")
        assert all(_safe(text) for text in _strings(dict(state.attributes))), state.entity_id


@pytest.mark.usefixtures("hostile")
async def test_the_report_shows_the_cleaned_name(hass: HomeAssistant) -> None:
    report = await hass.services.async_call(
        DOMAIN, "get_report", {}, blocking=True, return_response=True
    )
    assert report is not None
    assert report["devices"][CAMERA]["name"] == SHOWN  # type: ignore[index]


@pytest.mark.usefixtures("hostile")
async def test_the_dashboard_escapes_a_name_whoever_set_it(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    # A name set outside this integration (the user, another integration) is not cleaned.
    device_registry.async_update_device(_device(device_registry, TV).id, name_by_user=IMG)
    every_device = next(card for card in dashboard_cards() if card.get("title") == "Every device")
    rendered = Template(every_device["content"], hass).async_render(parse_result=False)
    assert "<img" not in rendered
    assert "**&lt;img src=x onerror=alert(1)&gt;**" in rendered
    assert f"**{SHOWN}**" in rendered
