"""Diagnostics: the last poll and per-device activity, never a credential.

Not under freeze_time: the diagnostics component's own (mashumaro) models fail to
compile with frozen datetimes, so times are left out of the snapshot instead.
"""

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import paths, props
from syrupy.types import PropertyPath, SerializableData

from tests.emulators.ubus import UbusEmulator
from tests.routers.test_openwrt import HINTS, LEASES, THREE_DEVICES

TIMES = ("taken_at", "poll_duration", "first_seen", "last_seen", "last_internet_contact")
"""Keys whose values change from run to run (the emulator's port too)."""

_times = props(*TIMES)
_port = paths("entry.data.port")


def volatile(prop: SerializableData, path: PropertyPath) -> bool:
    """Leave out times and the emulator's port; pin everything else."""
    return bool(_times(prop=prop, path=path) or _port(prop=prop, path=path))


async def test_diagnostics_are_redacted(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    ubus_emulator: UbusEmulator,
    snapshot: SnapshotAssertion,
) -> None:
    ubus_emulator.proc_text = THREE_DEVICES
    ubus_emulator.host_hints = HINTS
    ubus_emulator.dhcp_leases = LEASES
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, config_entry)

    text = json.dumps(diagnostics)
    assert "secret" not in text
    assert '"root"' not in text
    assert diagnostics["entry"]["data"]["password"] == "**REDACTED**"
    assert diagnostics["entry"]["data"]["username"] == "**REDACTED**"
    assert diagnostics["last_poll"]["conntrack_count"] == 4
    assert diagnostics["last_poll"]["flows"] == 3
    assert diagnostics["activity"]["c0:ff:ee:00:00:01"]["internet_hosts"] == 1
    assert diagnostics["entry"]["data"]["port"] == ubus_emulator.port
    assert diagnostics == snapshot(exclude=volatile)
