"""The config, reauth and reconfigure flows of the SSH router kind, against the SSH emulator."""

import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, patch

import asyncssh
import pytest
import voluptuous as vol
import voluptuous_serialize
from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.phonehome.config_flow import SSH_README_URL
from custom_components.phonehome.const import (
    CONF_HOST_KEY,
    CONF_LEASES_PATH,
    CONF_ROUTER_KIND,
    CONF_SSH_KEY,
    DOMAIN,
    ROUTER_KIND_LINUX_SSH,
    ROUTER_KINDS,
)
from custom_components.phonehome.routers.linux_ssh import LinuxSshRouter
from tests.emulators.ssh import SshEmulator
from tests.ha.test_config_flow import setup_entry  # noqa: F401 - autouse: entries not set up
from tests.ha.test_ssh import (
    PASSWORD,
    ROUTER_ID,
    fingerprint,
    ssh_emulator,  # noqa: F401 - the fixture
    ssh_entry,
    swap_host_key,
)

TRANSLATIONS = Path(__file__).parents[2] / "custom_components/phonehome/translations/en.json"


@pytest.fixture
def emulator(ssh_emulator: SshEmulator) -> SshEmulator:  # noqa: F811
    return ssh_emulator


def user_input(emulator: SshEmulator, **changes: Any) -> dict[str, Any]:
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: emulator.port,
        CONF_USERNAME: "root",
        CONF_PASSWORD: PASSWORD,
    } | changes


async def ssh_form(hass: HomeAssistant) -> ConfigFlowResult:
    """A user flow past the kind step, showing the SSH form."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ROUTER_KIND: ROUTER_KIND_LINUX_SSH}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "linux_ssh"
    assert result["errors"] == {}
    return result


async def submit(
    hass: HomeAssistant, flow: ConfigFlowResult, data: dict[str, Any]
) -> ConfigFlowResult:
    return await hass.config_entries.flow.async_configure(flow["flow_id"], data)


async def confirm_step(
    hass: HomeAssistant, emulator: SshEmulator, **changes: Any
) -> ConfigFlowResult:
    """The SSH form submitted: the host key confirmation it leads to."""
    result = await submit(hass, await ssh_form(hass), user_input(emulator, **changes))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "linux_ssh_host_key"
    return result


async def reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, port: int, **changes: Any
) -> ConfigFlowResult:
    """The SSH reconfigure form submitted with the emulator's address and ``changes``."""
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_linux_ssh"
    return await submit(hass, result, {CONF_HOST: "127.0.0.1", CONF_PORT: port, **changes})


def suggested(result: ConfigFlowResult) -> dict[str, Any]:
    """The values a form shows filled in (defaults and suggested values)."""
    shown = {}
    for marker in result["data_schema"].schema:
        if (description := marker.description) and "suggested_value" in description:
            shown[str(marker)] = description["suggested_value"]
        elif marker.default is not vol.UNDEFINED:
            shown[str(marker)] = marker.default()
    return shown


# ---------------------------------------------------------------- user flow


async def test_the_kind_step_offers_the_ssh_kind(hass: HomeAssistant) -> None:
    assert ROUTER_KIND_LINUX_SSH in ROUTER_KINDS
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    fields = voluptuous_serialize.convert(
        result["data_schema"], custom_serializer=cv.custom_serializer
    )
    assert ROUTER_KIND_LINUX_SSH in fields[0]["selector"]["select"]["options"]


async def test_the_host_key_is_shown_before_any_login_and_pinned_exactly_on_confirm(
    hass: HomeAssistant,
    emulator: SshEmulator,
    setup_entry: AsyncMock,  # noqa: F811
) -> None:
    form = await confirm_step(hass, emulator)

    assert form["description_placeholders"] == {
        "host": "127.0.0.1",
        "algorithm": "ssh-ed25519",
        "fingerprint": fingerprint(emulator),
        "readme_url": SSH_README_URL,
    }
    assert fingerprint(emulator).startswith("SHA256:")
    assert emulator.logins == []  # nothing is sent to a key not yet confirmed
    result = await submit(hass, form, {})
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "gw"
    assert result["result"].unique_id == ROUTER_ID
    assert result["data"] == {
        CONF_ROUTER_KIND: ROUTER_KIND_LINUX_SSH,
        **user_input(emulator),
        CONF_HOST_KEY: emulator.public_host_key,
    }
    assert emulator.logins == ["password:root"]
    assert setup_entry.call_count == 1


async def test_a_private_key_logs_in_without_a_password(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    emulator.authorized_keys = [client_key]
    private = client_key.export_private_key().decode()
    form = await confirm_step(
        hass, emulator, **{CONF_PASSWORD: "", CONF_SSH_KEY: "\n" + private + "  \n"}
    )

    result = await submit(hass, form, {})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_PASSWORD not in result["data"]
    assert result["data"][CONF_SSH_KEY] == private
    assert emulator.logins == ["key:root"]


async def test_neither_password_nor_key_is_auth_required_before_connecting(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    result = await submit(hass, await ssh_form(hass), user_input(emulator, **{CONF_PASSWORD: " "}))

    assert result["step_id"] == "linux_ssh"
    assert result["errors"] == {"base": "auth_required"}
    assert emulator.connections == []


@pytest.mark.parametrize(
    "path",
    [
        "tmp/dhcp.leases",
        "/tmp/../etc/shadow",
        "/tmp/$(reboot)",
        "/tmp/dhcp leases",
        "/tmp/*.leases",
        "/tmp/leases/",
        "~/dhcp.leases",
        "/tmp/a\nb",
        "/tmp/a\rb",
        "/tmp/a\tb",
        "/tmp/a\x00b",
        "/tmp/dhcp.leases; rm -rf /",
        "/tmp/`reboot`",
        "/tmp/${HOME}",
        "/tmp/'quoted'",
        '/tmp/"quoted"',
        "/tmp/a|b",
        "/tmp/a&b",
        "/tmp/a>b",
        "/tmp/a\\b",
        "/tmp/?.leases",
        "/tmp/[ab].leases",
        "/tmp/é.leases",
        "..",
        "/..",
        "/tmp/..",
        "/tmp/../../etc/shadow",
        "./dhcp.leases",
        "-/dhcp.leases",
        "/",
        "/" + "a" * 4095,
    ],
)
async def test_a_leases_path_must_be_a_plain_absolute_path(
    hass: HomeAssistant, emulator: SshEmulator, path: str
) -> None:
    result = await submit(
        hass, await ssh_form(hass), user_input(emulator, **{CONF_LEASES_PATH: path})
    )

    assert result["errors"] == {CONF_LEASES_PATH: "invalid_leases_path"}
    assert emulator.connections == []


@pytest.mark.parametrize(
    "path", ["/tmp/dhcp.leases", "/a", "/" + "a" * 4094, "/x/.hidden/b.c-d_e+f@g,h:i=j"]
)
async def test_a_plain_absolute_leases_path_is_taken(
    hass: HomeAssistant, emulator: SshEmulator, path: str
) -> None:
    result = await submit(
        hass, await ssh_form(hass), user_input(emulator, **{CONF_LEASES_PATH: path})
    )

    assert result["step_id"] == "linux_ssh_host_key"
    assert not result.get("errors")


async def test_a_leases_path_is_stored_and_an_empty_one_left_out(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    form = await confirm_step(hass, emulator, **{CONF_LEASES_PATH: " /var/lib/misc/dnsmasq.leases"})
    result = await submit(hass, form, {})
    assert result["data"][CONF_LEASES_PATH] == "/var/lib/misc/dnsmasq.leases"

    await hass.config_entries.async_remove(result["result"].entry_id)
    form = await confirm_step(hass, emulator, **{CONF_LEASES_PATH: ""})
    result = await submit(hass, form, {})
    assert CONF_LEASES_PATH not in result["data"]


async def test_nothing_listening_is_cannot_connect(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    port = emulator.port
    emulator.drop()
    await emulator.close()

    result = await submit(hass, await ssh_form(hass), user_input(emulator, **{CONF_PORT: port}))

    assert result["step_id"] == "linux_ssh"
    assert result["errors"] == {"base": "ssh_cannot_connect"}


async def test_a_router_gone_once_its_key_was_shown_is_cannot_connect(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    form = await confirm_step(hass, emulator)
    emulator.drop()
    await emulator.close()

    result = await submit(hass, form, {})

    assert result["step_id"] == "linux_ssh"
    assert result["errors"] == {"base": "ssh_cannot_connect"}


async def test_wrong_password_is_invalid_auth_and_the_fix_needs_no_second_confirmation(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    form = await confirm_step(hass, emulator, **{CONF_PASSWORD: "wrong"})

    result = await submit(hass, form, {})
    assert result["step_id"] == "linux_ssh"
    assert result["errors"] == {"base": "ssh_invalid_auth"}
    shown = suggested(result)
    assert shown[CONF_HOST] == "127.0.0.1"
    assert CONF_PASSWORD not in shown  # a secret is never sent back to the browser

    result = await submit(hass, result, user_input(emulator))
    assert result["type"] is FlowResultType.CREATE_ENTRY  # the same key, confirmed already
    assert result["data"][CONF_HOST_KEY] == emulator.public_host_key


async def test_a_host_key_changed_between_the_steps_is_refused_then_confirmed_anew(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    form = await confirm_step(hass, emulator)
    shown = form["description_placeholders"]["fingerprint"]
    swap_host_key(emulator)

    result = await submit(hass, form, {})

    assert result["step_id"] == "linux_ssh"
    assert result["errors"] == {"base": "host_key_changed"}
    assert emulator.logins == []
    result = await submit(hass, result, user_input(emulator))
    assert result["step_id"] == "linux_ssh_host_key"
    assert result["description_placeholders"]["fingerprint"] == fingerprint(emulator) != shown
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_HOST_KEY] == emulator.public_host_key


async def test_a_user_that_cannot_read_the_table_is_conntrack_unreadable(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    emulator.uid = 1000  # no sudo: neither /proc/net/nf_conntrack nor conntrack -L
    form = await confirm_step(hass, emulator)

    result = await submit(hass, form, {})

    assert result["errors"] == {"base": "conntrack_unreadable"}
    assert result["description_placeholders"]["acl"] == "read /proc/net/nf_conntrack"


async def test_without_nft_the_router_is_added_after_a_notice_that_quarantine_is_off(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    emulator.nft_installed = False
    form = await confirm_step(hass, emulator)

    result = await submit(hass, form, {})

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "linux_ssh_no_quarantine"
    assert "nft is not installed" in result["description_placeholders"]["error"]
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_HOST_KEY] == emulator.public_host_key


async def test_a_shell_that_does_not_answer_like_linux_is_ssh_not_linux(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    form = await confirm_step(hass, emulator)
    emulator.garbage = True

    result = await submit(hass, form, {})

    assert result["errors"] == {"base": "ssh_not_linux"}


async def test_an_unexpected_exception_is_unknown_and_logged(
    hass: HomeAssistant, emulator: SshEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    form = await confirm_step(hass, emulator)
    with patch.object(LinuxSshRouter, "connect", side_effect=ValueError("boom")):
        result = await submit(hass, form, {})

    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking the router at 127.0.0.1" in caplog.text


async def test_the_same_router_twice_aborts_already_configured(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    ssh_entry(hass, emulator)
    form = await confirm_step(hass, emulator)

    result = await submit(hass, form, {})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_no_password_or_private_key_reaches_the_log(
    hass: HomeAssistant, emulator: SshEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    private = client_key.export_private_key().decode()
    form = await confirm_step(hass, emulator, **{CONF_PASSWORD: "wrong-Pw", CONF_SSH_KEY: private})
    result = await submit(hass, form, {})
    assert result["errors"] == {"base": "ssh_invalid_auth"}
    emulator.authorized_keys = [client_key]

    result = await submit(hass, result, user_input(emulator, **{CONF_SSH_KEY: private}))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "asyncssh" in caplog.text  # the SSH library logged at debug level, and not these:
    for secret in ("wrong-Pw", PASSWORD, private.splitlines()[1], "PRIVATE KEY"):
        assert secret not in caplog.text


# ---------------------------------------------------------------- reauth


async def test_reauth_stores_the_new_password_and_keeps_the_pinned_key(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    entry = ssh_entry(hass, emulator, **{CONF_SSH_KEY: client_key.export_private_key().decode()})
    emulator.password = "new-password"
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_linux_ssh"
    assert result["description_placeholders"]["name"] == "gw"
    assert CONF_PASSWORD not in suggested(result)

    result = await submit(hass, result, {CONF_USERNAME: "root"})
    assert result["errors"] == {"base": "auth_required"}
    result = await submit(hass, result, {CONF_USERNAME: "root", CONF_PASSWORD: "wrong"})
    assert result["errors"] == {"base": "ssh_invalid_auth"}
    result = await submit(hass, result, {CONF_USERNAME: "root", CONF_PASSWORD: "new-password"})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == "new-password"
    assert CONF_SSH_KEY not in entry.data  # the new login replaces the old one
    assert entry.data[CONF_HOST_KEY] == emulator.public_host_key


async def test_reauth_with_a_private_key_replaces_the_password(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, emulator, **{CONF_PASSWORD: "old"})
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    emulator.authorized_keys = [client_key]
    private = client_key.export_private_key().decode()
    result = await entry.start_reauth_flow(hass)

    result = await submit(hass, result, {CONF_USERNAME: "root", CONF_SSH_KEY: private})

    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_SSH_KEY] == private
    assert CONF_PASSWORD not in entry.data
    assert emulator.logins == ["key:root"]


async def test_reauth_against_a_changed_host_key_is_refused(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, emulator)
    pinned = entry.data[CONF_HOST_KEY]
    swap_host_key(emulator)
    result = await entry.start_reauth_flow(hass)

    result = await submit(hass, result, {CONF_USERNAME: "root", CONF_PASSWORD: PASSWORD})

    assert result["errors"] == {"base": "host_key_changed"}
    assert entry.data[CONF_HOST_KEY] == pinned
    assert emulator.logins == []


# ---------------------------------------------------------------- reconfigure


async def test_reconfigure_with_the_pinned_key_stores_the_new_settings_without_asking(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, emulator, **{CONF_PORT: 1, CONF_LEASES_PATH: "/tmp/old.leases"})
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_linux_ssh"
    assert suggested(result) == {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: 1,
        CONF_LEASES_PATH: "/tmp/old.leases",
    }

    result = await submit(hass, result, {CONF_HOST: "127.0.0.1", CONF_PORT: emulator.port})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == emulator.port
    assert CONF_LEASES_PATH not in entry.data  # cleared: the usual places
    assert entry.data[CONF_PASSWORD] == PASSWORD


async def test_reconfigure_to_a_changed_key_is_confirmed_before_it_is_pinned(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, emulator)
    pinned = entry.data[CONF_HOST_KEY]
    swap_host_key(emulator)

    result = await reconfigure(hass, entry, emulator.port, **{CONF_LEASES_PATH: "/tmp/dhcp.leases"})

    assert result["step_id"] == "linux_ssh_host_key"
    assert result["description_placeholders"]["fingerprint"] == fingerprint(emulator)
    assert entry.data[CONF_HOST_KEY] == pinned
    assert emulator.logins == []
    result = await submit(hass, result, {})
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_HOST_KEY] == emulator.public_host_key
    assert entry.data[CONF_LEASES_PATH] == "/tmp/dhcp.leases"


async def test_reconfigure_rejects_a_leases_path_that_is_not_plain(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, emulator)

    result = await reconfigure(hass, entry, emulator.port, **{CONF_LEASES_PATH: "leases"})

    assert result["step_id"] == "reconfigure_linux_ssh"
    assert result["errors"] == {CONF_LEASES_PATH: "invalid_leases_path"}


async def test_reconfigure_to_another_router_aborts_unique_id_mismatch(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    entry = ssh_entry(hass, emulator, unique_id="another-router")

    result = await reconfigure(hass, entry, emulator.port)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"


# ---------------------------------------------------------------- forms and strings


async def test_every_ssh_form_serializes_and_is_translated(
    hass: HomeAssistant, emulator: SshEmulator
) -> None:
    strings = json.loads(TRANSLATIONS.read_text())["config"]
    entry = ssh_entry(hass, emulator, unique_id="other")
    emulator.nft_installed = False
    confirm = await confirm_step(hass, emulator)
    forms = [
        await ssh_form(hass),
        confirm,
        await submit(hass, confirm, {}),
        await entry.start_reauth_flow(hass),
        await entry.start_reconfigure_flow(hass),
    ]
    assert [form["step_id"] for form in forms] == [
        "linux_ssh",
        "linux_ssh_host_key",
        "linux_ssh_no_quarantine",
        "reauth_linux_ssh",
        "reconfigure_linux_ssh",
    ]
    for form in forms:
        fields = voluptuous_serialize.convert(
            form["data_schema"], custom_serializer=cv.custom_serializer
        )
        assert all("selector" in field for field in fields), form["step_id"]
        step = strings["step"][form["step_id"]]
        names = {field["name"] for field in fields}
        assert set(step.get("data", {})) == names, form["step_id"]
        assert set(step.get("data_description", {})) == names, form["step_id"]
        for placeholder in form["description_placeholders"] or {}:
            assert "{" + placeholder + "}" in json.dumps(step) + json.dumps(strings["error"])
    for error in (
        "auth_required",
        "invalid_leases_path",
        "ssh_cannot_connect",
        "ssh_invalid_auth",
        "host_key_changed",
        "conntrack_unreadable",
        "ssh_not_linux",
        "unknown",
    ):
        assert strings["error"][error], error
    assert "{acl}" in strings["error"]["conntrack_unreadable"]
    assert "{fingerprint}" in strings["step"]["linux_ssh_host_key"]["description"]
