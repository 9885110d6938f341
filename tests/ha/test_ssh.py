"""An SSH router in Home Assistant: a changed host key stops setup and polls, raises a repair
issue, and is only ever accepted through Reconfigure; credentials never leak."""

import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.phonehome.const import (
    CONF_HOST_KEY,
    CONF_ROUTER_KIND,
    CONF_SSH_KEY,
    DOMAIN,
    ROUTER_KIND_LINUX_SSH,
)
from custom_components.phonehome.coordinator import host_key_issue_id
from custom_components.phonehome.routers import linux_poll
from tests.emulators.ssh import SshEmulator

ROUTERS = Path(__file__).parents[1] / "routers" / "fixtures" / "linux_ssh"
CORE = Path(__file__).parents[1] / "core" / "fixtures"
ROUTER_ID = "5f0e5ea51a2c4f6b8d3c9a7e1b2d4c6f"
"""The emulator's /etc/machine-id: the entry's unique id."""
PASSWORD = "pw-Zq8#not-in-logs"
POLL = timedelta(seconds=30)


@pytest.fixture
async def ssh_emulator(socket_enabled: None) -> AsyncIterator[SshEmulator]:
    """A Linux router's SSH server on 127.0.0.1, with a table, leases and neighbours."""
    emulator = SshEmulator()
    emulator.password = PASSWORD
    emulator.files = {
        linux_poll.CONNTRACK_PATH: (CORE / "proc_lab.txt").read_text(),
        linux_poll.COUNT_PATH: "7\n",
        "/tmp/dhcp.leases": (ROUTERS / "dhcp.leases").read_text(),
    }
    emulator.neigh = (ROUTERS / "ip_neigh.txt").read_text()
    await emulator.start()
    yield emulator
    emulator.drop()  # entries still loaded keep a connection: the server waits for it
    await emulator.close()


def swap_host_key(emulator: SshEmulator) -> asyncssh.SSHKey:
    """The router was reinstalled: a new host key for every later connection."""
    emulator.host_key = asyncssh.generate_private_key("ssh-ed25519")
    assert emulator._server is not None
    emulator._server.update(server_host_keys=[emulator.host_key])
    return emulator.host_key


def fingerprint(emulator: SshEmulator) -> str:
    return str(emulator.host_key.get_fingerprint("sha256"))


def ssh_entry(hass: HomeAssistant, emulator: SshEmulator, **changes: Any) -> MockConfigEntry:
    """A config entry pinned to the emulator's current host key, added to hass."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="gw",
        data={
            CONF_ROUTER_KIND: ROUTER_KIND_LINUX_SSH,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: emulator.port,
            CONF_USERNAME: "root",
            CONF_PASSWORD: PASSWORD,
            CONF_HOST_KEY: emulator.public_host_key,
        }
        | changes,
        unique_id=changes.pop("unique_id", ROUTER_ID),
    )
    entry.add_to_hass(hass)
    return entry


async def poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    freezer.tick(POLL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def loaded(hass: HomeAssistant, emulator: SshEmulator) -> tuple[MockConfigEntry, set[str]]:
    """An entry set up against the emulator, and its entities that have a state."""
    entry = ssh_entry(hass, emulator)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry, available(hass, entry)


async def reinstall(
    hass: HomeAssistant, emulator: SshEmulator, freezer: FrozenDateTimeFactory
) -> asyncssh.SSHKey:
    """The router was reinstalled and rebooted (a new host key); the next poll reconnects."""
    pinned = emulator.host_key
    swap_host_key(emulator)
    emulator.drop()
    await poll(hass, freezer)
    return pinned


def available(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    """The entry's entities that have a state now."""
    registry = er.async_get(hass)
    return {
        entity.entity_id
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
        if (state := hass.states.get(entity.entity_id)) is not None
        and state.state != STATE_UNAVAILABLE
    }


async def reconfigure_and_confirm(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Reconfigure with the same address: the router's new key is shown, then confirmed."""
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_linux_ssh"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: entry.data[CONF_PORT]}
    )
    assert result["step_id"] == "linux_ssh_host_key"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()


# ---------------------------------------------------------------- a changed host key


async def test_setup_with_a_changed_host_key_fails_with_a_repair_issue(
    hass: HomeAssistant, ssh_emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, ssh_emulator)
    swap_host_key(ssh_emulator)

    assert not await hass.config_entries.async_setup(entry.entry_id)

    assert entry.state is ConfigEntryState.SETUP_ERROR  # not retried as "not ready"
    assert entry.error_reason_translation_key == "router_host_key_changed"
    assert ssh_emulator.logins == []  # refused before any login
    issue = ir.async_get(hass).async_get_issue(DOMAIN, host_key_issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "host_key_changed"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert not issue.is_fixable
    assert issue.translation_placeholders == {
        "name": "gw",
        "host": "127.0.0.1",
        "fingerprint": fingerprint(ssh_emulator),
    }
    assert entry.data[CONF_HOST_KEY] != ssh_emulator.public_host_key  # never auto-accepted


async def test_reconfigure_confirming_the_new_key_clears_the_issue_and_sets_up(
    hass: HomeAssistant, ssh_emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, ssh_emulator)
    swap_host_key(ssh_emulator)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR

    await reconfigure_and_confirm(hass, entry)

    assert entry.data[CONF_HOST_KEY] == ssh_emulator.public_host_key
    assert entry.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, host_key_issue_id(entry.entry_id)) is None


async def test_poll_with_a_changed_host_key_makes_entities_unavailable_until_reconfigured(
    hass: HomeAssistant, ssh_emulator: SshEmulator, freezer: FrozenDateTimeFactory
) -> None:
    entry, polled = await loaded(hass, ssh_emulator)
    assert "sensor.gw_tracked_connections" in polled
    logins = len(ssh_emulator.logins)

    await reinstall(hass, ssh_emulator, freezer)

    assert available(hass, entry) == set()
    assert len(ssh_emulator.logins) == logins
    coordinator = entry.runtime_data.coordinator
    assert coordinator.last_exception is not None
    assert coordinator.last_exception.translation_key == "router_host_key_changed"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, host_key_issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_placeholders["fingerprint"] == fingerprint(ssh_emulator)

    await poll(hass, freezer)  # still refused, still one issue
    assert available(hass, entry) == set()
    assert len(ir.async_get(hass).issues) == 1

    await reconfigure_and_confirm(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert available(hass, entry) == polled
    assert ir.async_get(hass).async_get_issue(DOMAIN, host_key_issue_id(entry.entry_id)) is None


async def test_the_old_key_back_clears_the_issue_at_the_next_poll(
    hass: HomeAssistant, ssh_emulator: SshEmulator, freezer: FrozenDateTimeFactory
) -> None:
    entry, polled = await loaded(hass, ssh_emulator)
    pinned = await reinstall(hass, ssh_emulator, freezer)
    assert len(ir.async_get(hass).issues) == 1

    ssh_emulator.host_key = pinned  # it was someone else answering for a while
    assert ssh_emulator._server is not None
    ssh_emulator._server.update(server_host_keys=[pinned])
    await poll(hass, freezer)

    assert available(hass, entry) == polled
    assert ir.async_get(hass).async_get_issue(DOMAIN, host_key_issue_id(entry.entry_id)) is None


async def test_removing_the_entry_removes_its_host_key_issue(
    hass: HomeAssistant, ssh_emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, ssh_emulator)
    swap_host_key(ssh_emulator)
    await hass.config_entries.async_setup(entry.entry_id)
    assert len(ir.async_get(hass).issues) == 1

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()

    assert ir.async_get(hass).issues == {}


# ---------------------------------------------------------------- credentials


async def test_no_password_or_private_key_in_logs_or_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    ssh_emulator: SshEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not under freeze_time: diagnostics fail to compile with frozen datetimes."""
    caplog.set_level(logging.DEBUG)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    ssh_emulator.authorized_keys = [client_key]
    private = client_key.export_private_key().decode()
    entry = ssh_entry(hass, ssh_emulator, **{CONF_SSH_KEY: private})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    ssh_emulator.password = "changed"
    ssh_emulator.authorized_keys = []
    ssh_emulator.drop()
    await coordinator.async_refresh()  # refused: a reauth flow starts
    assert entry.async_get_active_flows(hass, {"reauth"})
    ssh_emulator.password = PASSWORD
    ssh_emulator.authorized_keys = [client_key]
    await coordinator.async_refresh()
    assert coordinator.last_update_success

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics["entry"]["data"][CONF_PASSWORD] == "**REDACTED**"
    assert diagnostics["entry"]["data"][CONF_SSH_KEY] == "**REDACTED**"
    assert diagnostics["router"]["kind"] == ROUTER_KIND_LINUX_SSH
    text = json.dumps(diagnostics)
    assert "refused the SSH login" in caplog.text  # the failure was logged, without secrets
    for secret in (PASSWORD, private.splitlines()[1], "PRIVATE KEY"):
        assert secret not in text
        assert secret not in caplog.text
