"""The 24-hour soak (simulated time) in a Home Assistant test instance (marked slow).

See tests/bench/soak.py for what it does; ``scripts/bench soak`` runs the same soak
outside pytest and prints every hour's figures. It runs by default (``-m "not slow"``
leaves it out); PHONEHOME_SOAK_POLLS shortens it (e.g. 720 polls: two simulated
hours) when working on it.
"""

import os
from collections.abc import AsyncIterator

import pytest
from homeassistant.core import HomeAssistant

from tests.bench import soak
from tests.bench.harness import entry_for
from tests.emulators.ubus import UbusEmulator

pytestmark = pytest.mark.slow


@pytest.fixture
async def emulator(enable_custom_integrations: None) -> AsyncIterator[UbusEmulator]:
    """The router, listing the soak's 500 devices (the soak answers the table itself)."""
    emulator = UbusEmulator()
    emulator.host_hints, emulator.dhcp_leases = soak.hints_and_leases(soak.DEVICES)
    await emulator.start()
    yield emulator
    await emulator.close()


async def test_soak_24_hours(hass: HomeAssistant, emulator: UbusEmulator) -> None:
    """8,640 polls at 10 s: memory flat after the first hour, the Store file under 5 MB."""
    polls = int(os.environ.get("PHONEHOME_SOAK_POLLS", soak.POLLS))
    entry = entry_for(emulator.port, {"scan_interval": 3600})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    result = await soak.run(hass, entry, polls=polls)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert result.polls == polls
    assert len(result.checkpoints) == -(-polls // soak.HOUR)
    assert result.full_polls == -(-polls // 60) + (polls % 60 != 1)
    assert not result.missed, "\n".join(
        [*result.missed, *(str(checkpoint) for checkpoint in result.checkpoints)]
    )
