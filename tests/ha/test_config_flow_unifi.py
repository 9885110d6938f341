"""The UniFi config, reauth, reconfigure and options flows, against the controller emulator."""

import json
from collections.abc import Callable
from typing import Any
from unittest.mock import patch

import pytest
import voluptuous_serialize
from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.phonehome.config_flow import UNIFI_README_URL
from custom_components.phonehome.const import (
    CONF_CONNTRACK_CAP,
    CONF_FULL_BLOCK,
    CONF_GATEWAY,
    CONF_HOST_KEY,
    CONF_ROUTER_KIND,
    CONF_SITE,
    DOMAIN,
    ROUTER_KIND_UNIFI,
)
from custom_components.phonehome.routers.base import RouterPermissionError
from custom_components.phonehome.routers.unifi import UniFiRouter
from custom_components.phonehome.routers.unifi_api import ADMIN_HELP
from tests.emulators.ssh import SshEmulator
from tests.emulators.unifi import UniFiEmulator, User
from tests.ha.test_config_flow import OPTIONS, TRANSLATIONS, setup_entry
from tests.ha.test_ssh import PASSWORD as SSH_PASSWORD, fingerprint, ssh_emulator

__all__ = ["setup_entry", "ssh_emulator"]  # fixtures: entries not really set up; the gateway

UNIQUE_ID = "24f81231-a456-4c32-abcd-f5612345385f_default"
"""The fixture controller's anonymous id and the site."""
TITLE = "UDMP"
PASSWORD = "unifi-pw-3x!"


def unifi_input(emulator: UniFiEmulator, **changes: Any) -> dict[str, Any]:
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: emulator.port,
        CONF_SITE: "default",
        CONF_VERIFY_SSL: False,
        CONF_USERNAME: "hass",
        CONF_PASSWORD: PASSWORD,
    } | changes


def unifi_entry(hass: HomeAssistant, emulator: UniFiEmulator, **changes: Any) -> MockConfigEntry:
    unique_id = changes.pop("unique_id", UNIQUE_ID)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=TITLE,
        data={CONF_ROUTER_KIND: ROUTER_KIND_UNIFI, **unifi_input(emulator, **changes)},
        unique_id=unique_id,
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def controller(unifi_emulator: UniFiEmulator) -> UniFiEmulator:
    """The emulator with the account the flows use."""
    unifi_emulator.users = {"hass": User(PASSWORD)}
    return unifi_emulator


async def unifi_form(hass: HomeAssistant) -> ConfigFlowResult:
    """A user flow past the kind step, showing the UniFi form."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ROUTER_KIND: ROUTER_KIND_UNIFI}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "unifi"
    assert result["errors"] == {}
    assert result["description_placeholders"]["readme_url"] == UNIFI_README_URL
    return result


async def submit(hass: HomeAssistant, result: ConfigFlowResult, data: Any) -> ConfigFlowResult:
    return await hass.config_entries.flow.async_configure(result["flow_id"], data)


async def no_gateway(hass: HomeAssistant, result: ConfigFlowResult) -> ConfigFlowResult:
    """Past the optional gateway step, its host left empty."""
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "unifi_gateway"
    return await submit(hass, result, {CONF_PORT: 22, CONF_USERNAME: "root"})


# ---------------------------------------------------------------- user flow


@pytest.mark.parametrize("unifi_os", [True, False], ids=["unifi_os", "legacy"])
async def test_user_flow_creates_the_entry(
    hass: HomeAssistant, controller: UniFiEmulator, unifi_os: bool
) -> None:
    controller.unifi_os = unifi_os
    result = await submit(hass, await unifi_form(hass), unifi_input(controller))
    result = await no_gateway(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == TITLE
    assert result["data"] == {CONF_ROUTER_KIND: ROUTER_KIND_UNIFI, **unifi_input(controller)}
    assert result["result"].unique_id == UNIQUE_ID


async def test_form_defaults_to_port_443_site_default_and_verification_on(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    schema = (await unifi_form(hass))["data_schema"]
    defaults = {str(key): key.default() for key in schema.schema if callable(key.default)}
    assert defaults == {
        CONF_PORT: 443,
        CONF_SITE: "default",
        CONF_VERIFY_SSL: True,
        CONF_USERNAME: "hass",
    }


Breaker = Callable[[UniFiEmulator], dict[str, Any]]
"""Breaks the emulator (or the input); returns the changes to the form's input."""


def _wrong_password(emulator: UniFiEmulator) -> dict[str, Any]:
    return {CONF_PASSWORD: "wrong"}


def _two_factor(emulator: UniFiEmulator) -> dict[str, Any]:
    emulator.users["hass"].two_factor = True
    return {}


def _verified(emulator: UniFiEmulator) -> dict[str, Any]:
    return {CONF_VERIFY_SSL: True}


def _closed_port(emulator: UniFiEmulator) -> dict[str, Any]:
    return {CONF_PORT: 1}


def _not_unifi(emulator: UniFiEmulator) -> dict[str, Any]:
    emulator.fail["stat/sysinfo"] = "garbage"
    return {}


def _no_site(emulator: UniFiEmulator) -> dict[str, Any]:
    return {CONF_SITE: "garage"}


@pytest.mark.parametrize(
    ("breaker", "field", "error"),
    [
        (_wrong_password, "base", "unifi_invalid_auth"),
        (_two_factor, "base", "two_factor"),
        (_verified, "base", "unifi_tls_error"),
        (_closed_port, "base", "unifi_cannot_connect"),
        (_not_unifi, "base", "not_unifi"),
        (_no_site, CONF_SITE, "unknown_site"),
    ],
)
async def test_error_is_shown_then_the_flow_recovers(
    hass: HomeAssistant, controller: UniFiEmulator, breaker: Breaker, field: str, error: str
) -> None:
    result = await submit(
        hass, await unifi_form(hass), unifi_input(controller, **breaker(controller))
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    controller.fail.clear()
    controller.users["hass"].two_factor = False
    result = await no_gateway(hass, await submit(hass, result, unifi_input(controller)))
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("side_effect", "error"),
    [
        (RouterPermissionError("refused stat/sta", acl="stat/sta"), "no_permission"),
        (RuntimeError("boom"), "unknown"),
    ],
)
async def test_a_failed_access_check_is_shown(
    hass: HomeAssistant,
    controller: UniFiEmulator,
    side_effect: Exception,
    error: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with patch.object(UniFiRouter, "check_access", side_effect=side_effect):
        result = await submit(hass, await unifi_form(hass), unifi_input(controller))
    assert result["errors"] == {"base": error}
    if error == "no_permission":
        assert result["description_placeholders"]["acl"] == "stat/sta"
    else:
        assert "Unexpected error while checking the controller" in caplog.text
    assert PASSWORD not in caplog.text


async def test_a_read_only_account_is_added_after_a_notice(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    controller.users["hass"].role = "readonly"
    result = await submit(hass, await unifi_form(hass), unifi_input(controller))
    result = await no_gateway(hass, result)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "unifi_no_quarantine"
    assert result["description_placeholders"] == {
        "error": ADMIN_HELP,
        "readme_url": UNIFI_README_URL,
    }
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == UNIQUE_ID


async def test_a_controller_without_oon_configs_is_added_after_a_notice(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    controller.oon = False
    result = await submit(hass, await unifi_form(hass), unifi_input(controller))
    result = await no_gateway(hass, result)
    assert result["step_id"] == "unifi_no_quarantine"
    assert "9.4" in result["description_placeholders"]["error"]
    assert "Full block" in result["description_placeholders"]["error"]


async def test_same_site_twice_aborts_already_configured(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    unifi_entry(hass, controller)
    result = await submit(hass, await unifi_form(hass), unifi_input(controller))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# ---------------------------------------------------------------- the gateway over SSH


async def gateway_form(hass: HomeAssistant, controller: UniFiEmulator) -> ConfigFlowResult:
    result = await submit(hass, await unifi_form(hass), unifi_input(controller))
    assert result["step_id"] == "unifi_gateway"
    assert result["description_placeholders"]["readme_url"] == UNIFI_README_URL
    return result


def gateway_input(emulator: SshEmulator, **changes: Any) -> dict[str, Any]:
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: emulator.port,
        CONF_USERNAME: "root",
        CONF_PASSWORD: SSH_PASSWORD,
    } | changes


async def test_the_gateway_login_is_stored_once_its_host_key_is_confirmed(
    hass: HomeAssistant, controller: UniFiEmulator, ssh_emulator: SshEmulator
) -> None:
    result = await submit(hass, await gateway_form(hass, controller), gateway_input(ssh_emulator))
    assert result["step_id"] == "linux_ssh_host_key"
    assert result["description_placeholders"]["fingerprint"] == fingerprint(ssh_emulator)
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_ROUTER_KIND: ROUTER_KIND_UNIFI,
        **unifi_input(controller),
        CONF_GATEWAY: {
            **gateway_input(ssh_emulator),
            CONF_HOST_KEY: ssh_emulator.public_host_key,
        },
    }


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({CONF_PASSWORD: "wrong"}, "ssh_invalid_auth"),
        ({CONF_PORT: 1}, "ssh_cannot_connect"),
        ({CONF_PASSWORD: ""}, "auth_required"),
    ],
)
async def test_a_gateway_error_shows_the_gateway_form_again(
    hass: HomeAssistant,
    controller: UniFiEmulator,
    ssh_emulator: SshEmulator,
    changes: dict[str, Any],
    error: str,
) -> None:
    result = await submit(
        hass, await gateway_form(hass, controller), gateway_input(ssh_emulator, **changes)
    )
    if result["step_id"] == "linux_ssh_host_key":
        result = await submit(hass, result, {})
    assert result["step_id"] == "unifi_gateway"
    assert result["errors"] == {"base": error}
    result = await no_gateway(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_GATEWAY not in result["data"]


# ---------------------------------------------------------------- reauth, reconfigure


async def test_reauth_stores_the_new_login(hass: HomeAssistant, controller: UniFiEmulator) -> None:
    entry = unifi_entry(hass, controller, **{CONF_PASSWORD: "old"})
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_unifi"
    assert result["description_placeholders"]["name"] == TITLE
    result = await submit(hass, result, {CONF_USERNAME: "hass", CONF_PASSWORD: "nope"})
    assert result["errors"] == {"base": "unifi_invalid_auth"}
    result = await submit(hass, result, {CONF_USERNAME: "hass", CONF_PASSWORD: PASSWORD})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == PASSWORD


async def test_reconfigure_stores_the_new_address(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    entry = unifi_entry(hass, controller, **{CONF_PORT: 1})
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_unifi"
    fields = {str(key) for key in result["data_schema"].schema}
    assert fields == {CONF_HOST, CONF_PORT, CONF_VERIFY_SSL}
    address = {CONF_HOST: "127.0.0.1", CONF_VERIFY_SSL: False}
    result = await submit(hass, result, {**address, CONF_PORT: 1})
    assert result["errors"] == {"base": "unifi_cannot_connect"}
    result = await submit(hass, result, {**address, CONF_PORT: controller.port})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == controller.port
    assert entry.data[CONF_PASSWORD] == PASSWORD


async def test_reconfigure_to_another_controller_aborts_unique_id_mismatch(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    entry = unifi_entry(hass, controller, unique_id="other-controller_default")
    result = await entry.start_reconfigure_flow(hass)
    result = await submit(
        hass, result, {CONF_HOST: "127.0.0.1", CONF_PORT: controller.port, CONF_VERIFY_SSL: False}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"


# ---------------------------------------------------------------- options


async def test_options_offer_full_block_and_no_table_cap(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    entry = unifi_entry(hass, controller)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    fields = {str(key) for key in result["data_schema"].schema}
    assert CONF_FULL_BLOCK in fields
    assert CONF_CONNTRACK_CAP not in fields
    user_input = {key: value for key, value in OPTIONS.items() if key != CONF_CONNTRACK_CAP}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**user_input, CONF_FULL_BLOCK: True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_FULL_BLOCK] is True
    assert CONF_CONNTRACK_CAP not in entry.options


async def test_every_unifi_form_serializes_and_is_translated(
    hass: HomeAssistant, controller: UniFiEmulator
) -> None:
    strings = json.loads(TRANSLATIONS.read_text())["config"]["step"]
    forms = [await unifi_form(hass), await gateway_form(hass, controller)]
    entry = unifi_entry(hass, controller)
    forms += [
        await entry.start_reauth_flow(hass),
        await entry.start_reconfigure_flow(hass),
    ]
    for form in forms:
        fields = voluptuous_serialize.convert(
            form["data_schema"], custom_serializer=cv.custom_serializer
        )
        assert all("selector" in field for field in fields), form["step_id"]
        names = {field["name"] for field in fields}
        step = strings[form["step_id"]]
        assert set(step["data"]) == names == set(step["data_description"]), form["step_id"]
    assert strings["unifi_no_quarantine"]["title"]
