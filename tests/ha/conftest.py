"""Fixtures for the Home Assistant tests: the ubus and UniFi emulators, entries pointed at them."""

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.phonehome.const import CONF_ROUTER_KIND, DOMAIN, ROUTER_KIND_OPENWRT
from tests.emulators.ubus import UbusEmulator
from tests.emulators.unifi import UniFiEmulator
from tests.routers.conftest import self_signed
from tests.routers.test_openwrt import HINTS, LEASES, THREE_DEVICES


@pytest.fixture
async def ubus_emulator(socket_enabled: None) -> AsyncIterator[UbusEmulator]:
    """OpenWrt's /ubus on 127.0.0.1 (sockets on; connections still only to 127.0.0.1)."""
    emulator = UbusEmulator()
    await emulator.start()
    yield emulator
    await emulator.close()


@pytest.fixture
def network(ubus_emulator: UbusEmulator) -> UbusEmulator:
    """Three LAN devices (a camera, a TV, a laptop) and their flows."""
    ubus_emulator.proc_text = THREE_DEVICES
    ubus_emulator.host_hints = HINTS
    ubus_emulator.dhcp_leases = LEASES
    return ubus_emulator


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set the entry up and let its first poll finish."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Options of the config entry; override in a test module to change them."""
    return {}


@pytest.fixture
def config_entry(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, entry_options: dict[str, Any]
) -> MockConfigEntry:
    """A config entry for the emulated router, added to hass (not set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="OpenWrt",
        data={
            CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT,
            "host": "127.0.0.1",
            "port": ubus_emulator.port,
            "ssl": False,
            "verify_ssl": True,
            "username": "root",
            "password": "secret",
        },
        options=entry_options,
        unique_id="94:83:c4:00:00:01",
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format: registry ids and times masked, states readable."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
async def refused_handshakes_ignored(hass: HomeAssistant) -> AsyncIterator[None]:
    """A client hanging up on a self-signed certificate is expected: not a test failure.

    The server's failed handshake goes to the loop's exception handler, which the
    ``hass`` fixture turns into a failure; those two errors are left out.
    """
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()

    def ignore(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), ConnectionResetError | ssl.SSLError):
            return
        if handler is not None:
            handler(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(ignore)
    yield
    loop.set_exception_handler(handler)


@pytest.fixture(scope="session")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, as UniFi consoles ship."""
    return self_signed(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
async def unifi_emulator(
    socket_enabled: None, refused_handshakes_ignored: None, tls_context: ssl.SSLContext
) -> AsyncIterator[UniFiEmulator]:
    """A UniFi OS console's HTTPS API on 127.0.0.1 (self-signed), from the real fixtures."""
    emulator = UniFiEmulator()
    await emulator.start(tls_context)
    yield emulator
    await emulator.close()
