"""The demo network in Home Assistant: set up through the flow, its dashboard and blueprint."""

import asyncio
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.components.automation import DOMAIN as AUTOMATION_DOMAIN
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.template import Template
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.phonehome.const import CONF_ROUTER_KIND, DOMAIN, ROUTER_KIND_DEMO
from custom_components.phonehome.routers.demo import HOME, ROUTER_MAC
from tests.ha.conftest import setup

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLL = timedelta(seconds=30)
REPO = Path(__file__).parents[2]
DASHBOARD = REPO / "dashboards" / "phonehome.yaml"
BLUEPRINT = REPO / "blueprints" / "automation" / "phonehome" / "notify_and_quarantine.yaml"
CAMERA = "front_door_camera"
CAMERA_MAC = HOME[0].device.mac
PHONING_HOME = {"front_door_camera", "baby_monitor", "backyard_dvr", "smart_plug", "garage_nvr"}

pytestmark = pytest.mark.freeze_time(T0)


@pytest.fixture
def demo_entry(hass: HomeAssistant) -> MockConfigEntry:
    """The demo network's entry, as the config flow makes it."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Demo network",
        data={CONF_ROUTER_KIND: ROUTER_KIND_DEMO},
        unique_id=ROUTER_MAC,
    )
    entry.add_to_hass(hass)
    return entry


async def run_polls(hass: HomeAssistant, freezer: FrozenDateTimeFactory, count: int) -> None:
    for _ in range(count):
        freezer.tick(POLL)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
async def demo(
    hass: HomeAssistant, demo_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """The demo set up and polled for five minutes."""
    await setup(hass, demo_entry)
    await run_polls(hass, freezer, 10)
    return demo_entry


def dashboard_cards() -> list[dict[str, Any]]:
    """Every card of the dashboard, stacks opened."""
    cards: list[dict[str, Any]] = []
    pending = list(yaml.safe_load(DASHBOARD.read_text())["views"][0]["cards"])
    while pending:
        card = pending.pop(0)
        cards.append(card)
        pending.extend(card.get("cards", []))
    return cards


async def test_the_flow_adds_the_demo_once(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ROUTER_KIND: ROUTER_KIND_DEMO}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "demo"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Demo network"
    assert result["data"] == {CONF_ROUTER_KIND: ROUTER_KIND_DEMO}
    await hass.async_block_till_done()

    again = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    again = await hass.config_entries.flow.async_configure(
        again["flow_id"], {CONF_ROUTER_KIND: ROUTER_KIND_DEMO}
    )
    again = await hass.config_entries.flow.async_configure(again["flow_id"], {})
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"


async def test_the_cameras_phone_home_and_the_rest_stay_quiet(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    on = {
        state.entity_id.removeprefix("binary_sensor.").removesuffix("_phoning_home")
        for state in hass.states.async_all("binary_sensor")
        if state.state == STATE_ON
    }
    assert on == PHONING_HOME
    camera = hass.states.get(f"binary_sensor.{CAMERA}_phoning_home")
    assert camera is not None
    assert {f["kind"] for f in camera.attributes["findings"]} == {
        "signature",
        "p2p_fanout",
        "unreplied_attempts",
    }
    assert hass.states.get("sensor.demo_network_devices_phoning_home").state == "5"  # type: ignore[union-attr]


async def test_quarantine_in_the_demo_stops_the_camera(
    hass: HomeAssistant, demo: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    switch = f"switch.{CAMERA}_quarantine"
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    await run_polls(hass, freezer, 2)

    assert hass.states.get(switch).state == STATE_ON  # type: ignore[union-attr]
    assert hass.states.get(f"sensor.{CAMERA}_internet_connections").state == "0"  # type: ignore[union-attr]
    blocked = int(hass.states.get(f"sensor.{CAMERA}_blocked_attempts").state)  # type: ignore[union-attr]
    assert blocked > 0

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    await run_polls(hass, freezer, 1)
    assert int(hass.states.get(f"sensor.{CAMERA}_internet_connections").state) > 0  # type: ignore[union-attr]


async def test_every_dashboard_entity_exists(hass: HomeAssistant, demo: MockConfigEntry) -> None:
    wanted = set()
    for card in dashboard_cards():
        if "entity" in card:
            wanted.add(card["entity"])
        for item in card.get("entities", []):
            wanted.add(item if isinstance(item, str) else item["entity"])

    assert len(wanted) == 3 + 8 * 8
    assert {entity for entity in wanted if hass.states.get(entity) is None} == set()


async def test_dashboard_markdown_renders_the_findings(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    rendered = [
        Template(card["content"], hass).async_render(parse_result=False)
        for card in dashboard_cards()
        if card["type"] == "markdown"
    ]

    every_device = rendered[0].strip().splitlines()
    assert len([line for line in every_device if line.startswith("- ")]) == len(HOME)
    alert, fine = '- <ha-icon icon="mdi:alert-circle">', '- <ha-icon icon="mdi:check-circle">'
    assert any(
        line.startswith(alert) and "Front door camera**: sig" in line for line in every_device
    )
    assert any(line.startswith(fine) and line.endswith("Living room TV**") for line in every_device)
    camera = rendered[1]
    assert camera.count("\n- **") + camera.startswith("- **") == 3
    assert "the Foscam P2P cloud" in camera
    assert rendered[-1].strip() == "No findings in the window."  # the phone


def install(folder: Path) -> None:
    """Copy the blueprint where Home Assistant looks for it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, folder / BLUEPRINT.name)


@pytest.fixture
async def blueprint_automation(hass: HomeAssistant) -> list[Any]:
    """The blueprint installed and used by one automation; the phone's notify service mocked.

    It listens to unreplied_attempts only, which in the demo only the Foscam-style
    camera shows: one automation run waits for the answer.
    """
    target = Path(hass.config.path("blueprints", "automation", "phonehome"))
    await hass.async_add_executor_job(install, target)
    notify = async_mock_service(hass, "notify", "mobile_app_phone")
    assert await async_setup_component(
        hass,
        AUTOMATION_DOMAIN,
        {
            AUTOMATION_DOMAIN: {
                "alias": "Phone home",
                "use_blueprint": {
                    "path": f"phonehome/{BLUEPRINT.name}",
                    "input": {
                        "notify_action": "notify.mobile_app_phone",
                        "finding_kinds": ["unreplied_attempts"],
                        "quarantine_for": {"hours": 1, "minutes": 0, "seconds": 0},
                    },
                },
            }
        },
    )
    return notify


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (the automation waits for an answer,
    so ``async_block_till_done`` would wait for it too)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    pytest.fail("the automation did not get there")


async def notified(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    calls: list[Any],
) -> Any:
    """Set the demo up, poll once more, and return the camera's notification."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    freezer.tick(POLL)
    await entry.runtime_data.coordinator.async_refresh()
    await until(lambda: bool(calls))
    (call,) = calls
    return call


def answer(hass: HomeAssistant, notification: Any, title: str) -> None:
    """Tap a notification's button, as the Companion app reports it."""
    action = next(a for a in notification.data["data"]["actions"] if a["title"] == title)
    hass.bus.async_fire("mobile_app_notification_action", {"action": action["action"]})


async def test_blueprint_notifies_and_quarantines_on_request(
    hass: HomeAssistant,
    demo_entry: MockConfigEntry,
    blueprint_automation: list[Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    camera = await notified(hass, demo_entry, freezer, blueprint_automation)
    assert camera.data["title"] == "Front door camera is phoning home"
    assert "without reply to 4 internet hosts" in camera.data["message"]
    assert camera.data["data"]["tag"] == f"phonehome_{CAMERA_MAC}"

    answer(hass, camera, "Quarantine")
    quarantines = demo_entry.runtime_data.coordinator.quarantines.active
    await until(lambda: CAMERA_MAC in quarantines)
    await hass.async_block_till_done()

    assert hass.states.get(f"switch.{CAMERA}_quarantine").state == STATE_ON  # type: ignore[union-attr]
    stored = quarantines[CAMERA_MAC]
    assert stored.end is not None
    assert stored.end - stored.start == timedelta(hours=1)


async def test_blueprint_ignore_allows_the_destinations(
    hass: HomeAssistant,
    demo_entry: MockConfigEntry,
    blueprint_automation: list[Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    camera = await notified(hass, demo_entry, freezer, blueprint_automation)
    coordinator = demo_entry.runtime_data.coordinator

    answer(hass, camera, "Ignore")
    await until(lambda: len(coordinator.allow) == 4)
    await hass.async_block_till_done()

    allowed = {
        (entry.mac, entry.network, entry.port, entry.protocol) for entry in coordinator.allow
    }
    assert allowed == {(CAMERA_MAC, f"203.0.113.{host}/32", 10001, 17) for host in (10, 11, 12, 13)}
    await run_polls(hass, freezer, 1)
    findings = hass.states.get(f"binary_sensor.{CAMERA}_phoning_home").attributes["findings"]  # type: ignore[union-attr]
    assert findings == []
