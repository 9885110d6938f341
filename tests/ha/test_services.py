"""Services: allow a destination, reset a baseline, get a report; validation and admin rights."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import User
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.phonehome.const import DOMAIN
from tests.emulators.ubus import UbusEmulator
from tests.ha.conftest import setup
from tests.ha.test_detection import (
    CAMERA,
    FOSCAM,
    PHONING,
    TV,
    TV_IP,
    flush_store,
    https,
    poll,
    stored,
)
from tests.routers.test_openwrt import HINTS, LEASES

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EXCEPTIONS = json.loads(
    (Path(__file__).parents[2] / "custom_components/phonehome/translations/en.json").read_text()
)["exceptions"]

pytestmark = pytest.mark.freeze_time(T0)


@pytest.fixture
async def foscam(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    ubus_emulator: UbusEmulator,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> UbusEmulator:
    """Set up with the camera (monitored) phoning home and the TV on HTTPS."""
    stored(hass_storage, config_entry, policies={CAMERA: "monitor"})
    ubus_emulator.plugin_installed = True
    ubus_emulator.host_hints = HINTS
    ubus_emulator.dhcp_leases = LEASES
    ubus_emulator.proc_text = ""
    await setup(hass, config_entry)
    ubus_emulator.proc_text = FOSCAM + https(TV_IP, "198.51.100.7", 51000)
    await poll(hass, freezer)
    assert hass.states.get(PHONING).state == STATE_ON  # type: ignore[union-attr]
    return ubus_emulator


def device_id(device_registry: dr.DeviceRegistry, mac: str) -> str:
    device = device_registry.async_get_device(connections={(dr.CONNECTION_NETWORK_MAC, mac)})
    assert device is not None
    return device.id


@pytest.mark.usefixtures("foscam")
async def test_allow_destination_silences_the_camera_and_persists(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    await hass.services.async_call(
        DOMAIN,
        "allow_destination",
        {"device_id": device_id(device_registry, CAMERA), "destination": "203.0.113.0/24"},
        blocking=True,
    )
    await poll(hass, freezer)
    assert hass.states.get(PHONING).state == STATE_OFF  # type: ignore[union-attr]
    await flush_store(hass, freezer)
    assert hass_storage[f"phonehome.{config_entry.entry_id}"]["data"]["allow"] == [
        {"network": "203.0.113.0/24", "mac": CAMERA, "port": None, "protocol": None}
    ]

    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(PHONING).state == STATE_OFF  # type: ignore[union-attr]


@pytest.mark.usefixtures("foscam")
async def test_allow_destination_by_mac_port_and_protocol(
    hass: HomeAssistant, config_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    data = {"mac": "C0-FF-EE-00-00-01", "destination": "203.0.113.20", "port": 10001}
    for _ in range(2):  # the same entry twice is stored once
        await hass.services.async_call(
            DOMAIN, "allow_destination", data | {"protocol": "udp"}, blocking=True
        )
    coordinator = config_entry.runtime_data.coordinator
    assert [(e.network, e.mac, e.port, e.protocol) for e in coordinator.allow] == [
        ("203.0.113.20/32", CAMERA, 10001, 17)
    ]
    await poll(hass, freezer)
    assert hass.states.get(PHONING).state == STATE_ON  # type: ignore[union-attr]


@pytest.mark.usefixtures("foscam")
@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"mac": CAMERA, "destination": "203.0.113.0/33"}, "invalid_destination"),
        ({"mac": CAMERA, "destination": "example.com"}, "invalid_destination"),
        ({"mac": "c0:ff:ee:00:00:99", "destination": "203.0.113.0/24"}, "unknown_device"),
        ({"mac": "camera", "destination": "203.0.113.0/24"}, "invalid_mac"),
        ({"mac": CAMERA, "destination": "203.0.113.0/24", "port": 0}, "invalid_port"),
        ({"mac": CAMERA, "destination": "203.0.113.0/24", "port": 65536}, "invalid_port"),
        ({"mac": CAMERA, "destination": "203.0.113.0/24", "port": "80; x"}, "invalid_port"),
        ({"mac": CAMERA, "destination": "203.0.113.0/24", "port": 80.5}, "invalid_port"),
        ({"mac": CAMERA, "destination": "203.0.113.0/24", "port": True}, "invalid_port"),
        ({"mac": CAMERA, "destination": "203.0.113.0/24", "protocol": "icmp"}, "invalid_protocol"),
        ({"mac": CAMERA, "destination": "203.0.113.0/24", "protocol": 6}, "invalid_protocol"),
        ({"device_id": "nope", "destination": "203.0.113.0/24"}, "unknown_device"),
    ],
)
async def test_bad_allow_destination_input_is_a_translated_error(
    hass: HomeAssistant, data: dict[str, Any], key: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "allow_destination", data, blocking=True)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key


@pytest.mark.usefixtures("foscam")
async def test_a_port_and_protocol_are_read_leniently(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    data = {"mac": CAMERA, "destination": "203.0.113.9", "port": " 443 ", "protocol": "TCP"}
    await hass.services.async_call(DOMAIN, "allow_destination", data, blocking=True)
    await hass.services.async_call(
        DOMAIN, "allow_destination", data | {"port": 8443.0}, blocking=True
    )
    coordinator = config_entry.runtime_data.coordinator
    assert [(e.port, e.protocol) for e in coordinator.allow] == [(443, 6), (8443, 6)]


@pytest.mark.usefixtures("foscam")
@pytest.mark.parametrize(
    "case",
    [
        ("quarantine", {"mac": "c0:ff:ee:00:00"}, "invalid_mac"),
        ("release", {"mac": "c0:ff:ee:00:00:01; reboot"}, "invalid_mac"),
        ("quarantine", {"mac": "c0:ff:ee:00:00:99"}, "unknown_device"),
        ("release", {"device_id": "nope"}, "unknown_device"),
        ("quarantine", {"entity_id": "switch.nope_quarantine"}, "unknown_device"),
        ("quarantine", {"mac": CAMERA, "duration": "soon"}, "invalid_duration"),
        ("quarantine", {"mac": CAMERA, "duration": "00:00:00"}, "invalid_duration"),
        ("quarantine", {"mac": CAMERA, "duration": "-01:00:00"}, "invalid_duration"),
        ("quarantine", {"mac": CAMERA, "duration": {"days": 366}}, "invalid_duration"),
        ("quarantine", {"mac": CAMERA, "duration": {"days": 1e12}}, "invalid_duration"),
        ("quarantine", {"mac": CAMERA, "duration": 1e300}, "invalid_duration"),
        ("quarantine", {"mac": CAMERA, "duration": "99999999:00:00"}, "invalid_duration"),
    ],
)
async def test_bad_quarantine_input_is_a_translated_error_and_changes_nothing(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    foscam: UbusEmulator,
    case: tuple[str, dict[str, Any], str],
) -> None:
    service, data, key = case
    requests = foscam.requests
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, service, data, blocking=True)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key
    message = EXCEPTIONS[key]["message"]  # translated, every placeholder filled
    assert str(err.value) == message.format(**err.value.translation_placeholders or {}).rstrip(".")
    assert config_entry.runtime_data.coordinator.quarantines.active == {}
    assert foscam.requests == requests  # the router was never asked


@pytest.mark.usefixtures("foscam")
async def test_an_echoed_value_is_cleaned_and_cut(hass: HomeAssistant) -> None:
    hostile = "<img src=x onerror=alert(1)>\n" + "9" * 10_000
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "allow_destination", {"mac": CAMERA, "destination": hostile}, blocking=True
        )
    shown = err.value.translation_placeholders["destination"]  # type: ignore[index]
    assert shown.startswith("img src=x onerror=alert(1) 999")
    assert len(shown) == 64


@pytest.mark.usefixtures("foscam")
async def test_router_device_is_not_a_lan_device(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    router = device_registry.async_get_device(identifiers={(DOMAIN, "94:83:c4:00:00:01")})
    assert router is not None
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "reset_baseline", {"device_id": router.id}, blocking=True
        )
    assert err.value.translation_key == "unknown_device"


@pytest.mark.usefixtures("foscam")
async def test_non_admin_cannot_allow_a_destination(
    hass: HomeAssistant, hass_read_only_user: User
) -> None:
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "allow_destination",
            {"mac": CAMERA, "destination": "203.0.113.0/24"},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )


@pytest.mark.usefixtures("foscam")
async def test_reset_baseline_service_learns_again(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.tick(timedelta(hours=1))
    await hass.services.async_call(
        DOMAIN, "reset_baseline", {"device_id": device_id(device_registry, TV)}, blocking=True
    )
    saved = config_entry.runtime_data.coordinator.analyzer.export_state()["devices"][TV]
    assert saved["first_seen"] == datetime.now(UTC).isoformat()


@pytest.mark.usefixtures("foscam")
async def test_get_report(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry, snapshot: SnapshotAssertion
) -> None:
    report = await hass.services.async_call(
        DOMAIN, "get_report", {}, blocking=True, return_response=True
    )
    assert report == snapshot
    one = await hass.services.async_call(
        DOMAIN,
        "get_report",
        {"device_id": device_id(device_registry, TV)},
        blocking=True,
        return_response=True,
    )
    assert one == {"devices": {TV: report["devices"][TV]}}  # type: ignore[index]
