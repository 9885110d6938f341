"""The config, reauth, reconfigure and options flows, against the ubus emulator (no client patched)."""

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
import voluptuous_serialize
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState, ConfigFlowResult
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SSL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv, device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.phonehome.config_flow import README_URL, _with_port
from custom_components.phonehome.const import (
    CONF_AUTO_QUARANTINE,
    CONF_AUTO_QUARANTINE_MINUTES,
    CONF_CONNTRACK_CAP,
    CONF_FANOUT_HOSTS,
    CONF_FULL_BLOCK,
    CONF_LAN_RESOLVERS,
    CONF_LEARNING_HOURS,
    CONF_PROTECTED_DEVICES,
    CONF_ROUTER_KIND,
    CONF_SCAN_INTERVAL,
    CONF_STALE_DAYS,
    CONF_TRACKED_DEVICES,
    CONF_UNREPLIED_ATTEMPTS,
    CONF_WINDOW,
    DOMAIN,
    FINDING_KINDS,
    ROUTER_KIND_OPENWRT,
)
from custom_components.phonehome.core.addresses import normalize_mac
from tests.emulators.ubus import COUNT_PATH, Failure, UbusEmulator
from tests.routers.conftest import self_signed

ROUTER_MAC = "94:83:c4:00:00:01"
ROUTER_NAME = "b6f391692652"
OTHER_MAC = "02:00:00:00:00:99"
TRANSLATIONS = Path(__file__).parents[2] / "custom_components/phonehome/translations/en.json"


@pytest.fixture(autouse=True)
async def setup_entry(hass: HomeAssistant) -> AsyncIterator[AsyncMock]:
    """Entries the flows create or reload are not really set up; unloaded while patched."""
    with (
        patch("custom_components.phonehome.async_setup_entry", return_value=True) as mock,
        patch("custom_components.phonehome.async_unload_entry", return_value=True),
    ):
        yield mock
        for entry in hass.config_entries.async_entries(DOMAIN):
            if entry.state is ConfigEntryState.LOADED:
                await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def tls_emulator(
    tmp_path: Path, socket_enabled: None, refused_handshakes_ignored: None
) -> AsyncIterator[UbusEmulator]:
    """An HTTPS emulator with a self-signed certificate."""
    emulator = UbusEmulator()
    await emulator.start(self_signed(tmp_path))
    yield emulator
    await emulator.close()


@pytest.fixture
async def closed_port(socket_enabled: None) -> int:
    """A port on 127.0.0.1 that nothing listens on (an emulator that came and went)."""
    emulator = UbusEmulator()
    await emulator.start()
    await emulator.close()
    return emulator.port


def user_input(emulator: UbusEmulator, **changes: Any) -> dict[str, Any]:
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: emulator.port,
        CONF_SSL: False,
        CONF_VERIFY_SSL: True,
        CONF_USERNAME: "hass",
        CONF_PASSWORD: "hasspw",
    } | changes


def make_entry(hass: HomeAssistant, emulator: UbusEmulator, **changes: Any) -> MockConfigEntry:
    unique_id = changes.pop("unique_id", ROUTER_MAC)
    options = changes.pop("options", {})
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=ROUTER_NAME,
        data={CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT, **user_input(emulator, **changes)},
        options=options,
        unique_id=unique_id,
    )
    entry.add_to_hass(hass)
    return entry


async def openwrt_form(hass: HomeAssistant) -> ConfigFlowResult:
    """A user flow past the kind step, showing the OpenWrt form."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "openwrt"
    assert result["errors"] == {}
    return result


# ---------------------------------------------------------------- user flow


async def test_user_flow_creates_the_entry(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, setup_entry: AsyncMock
) -> None:
    form = await openwrt_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(ubus_emulator)
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == ROUTER_NAME
    assert result["data"] == {CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT, **user_input(ubus_emulator)}
    assert result["result"].unique_id == ROUTER_MAC
    assert setup_entry.call_count == 1
    assert ubus_emulator.calls["luci.getConntrackList"] == 0  # checked, never read
    assert ubus_emulator.sessions == {}  # logged out


async def test_user_flow_never_reads_the_table(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    form = await openwrt_form(hass)
    await hass.config_entries.flow.async_configure(form["flow_id"], user_input(ubus_emulator))
    assert ubus_emulator.calls["luci.getConntrackList"] == 0
    assert ubus_emulator.calls["session.access"] > 0


def test_port_defaults_to_80_and_443_with_https() -> None:
    assert _with_port({CONF_SSL: False})[CONF_PORT] == 80
    assert _with_port({CONF_SSL: True})[CONF_PORT] == 443
    assert _with_port({CONF_SSL: True, CONF_PORT: 8443.0})[CONF_PORT] == 8443


Breaker = Callable[[UbusEmulator], None]


def _drop_right(right: str) -> Breaker:
    def breaker(emulator: UbusEmulator) -> None:
        emulator.users["hass"].ubus.discard(right)  # type: ignore[union-attr]

    return breaker


def _no_count_file(emulator: UbusEmulator) -> None:
    emulator.users["hass"].files = set()


def _wrong_shape(emulator: UbusEmulator) -> None:
    emulator.failure = Failure.WRONG_SHAPE


def _wrong_password(emulator: UbusEmulator) -> None:
    emulator.users["hass"].password = "changed"


@pytest.mark.parametrize(
    ("breaker", "error", "acl"),
    [
        pytest.param(_wrong_password, "invalid_auth", "", id="invalid_auth"),
        pytest.param(
            _drop_right("luci.getConntrackList"),
            "missing_acl_conntrack",
            "luci getConntrackList",
            id="missing_acl_conntrack",
        ),
        pytest.param(
            _no_count_file,
            "missing_acl_conntrack",
            f"file read {COUNT_PATH}",
            id="missing_acl_conntrack_count_file",
        ),
        pytest.param(
            _drop_right("luci-rpc.getHostHints"),
            "missing_acl_host_hints",
            "luci-rpc getHostHints",
            id="missing_acl_host_hints",
        ),
        pytest.param(
            _drop_right("luci-rpc.getDHCPLeases"),
            "missing_acl_host_hints",
            "luci-rpc getDHCPLeases",
            id="missing_acl_dhcp_leases",
        ),
        pytest.param(_drop_right("system.board"), "missing_acl", "system board", id="missing_acl"),
        pytest.param(_wrong_shape, "not_openwrt", "", id="not_openwrt"),
    ],
)
async def test_error_is_shown_then_the_flow_recovers(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, breaker: Breaker, error: str, acl: str
) -> None:
    healthy = UbusEmulator()
    breaker(ubus_emulator)
    form = await openwrt_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(ubus_emulator)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert result["description_placeholders"] == {"readme_url": README_URL, "acl": acl}
    assert ubus_emulator.calls["luci.getConntrackList"] == 0

    ubus_emulator.users, ubus_emulator.failure = healthy.users, None
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(ubus_emulator)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_self_signed_certificate_is_tls_error_until_verification_is_off(
    hass: HomeAssistant, tls_emulator: UbusEmulator
) -> None:
    form = await openwrt_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(tls_emulator, ssl=True)
    )
    assert result["errors"] == {"base": "tls_error"}

    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(tls_emulator, ssl=True, verify_ssl=False)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_VERIFY_SSL] is False


async def test_closed_port_is_cannot_connect_until_the_right_port(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, closed_port: int
) -> None:
    form = await openwrt_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(ubus_emulator, port=closed_port)
    )
    assert result["errors"] == {"base": "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(ubus_emulator)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_unexpected_exception_is_unknown_and_logged(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    form = await openwrt_form(hass)
    with patch(
        "custom_components.phonehome.routers.openwrt.OpenWrtRouter.connect",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            form["flow_id"], user_input(ubus_emulator)
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking the router" in caplog.text

    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(ubus_emulator)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_same_router_twice_aborts_already_configured(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    make_entry(hass, ubus_emulator)
    form = await openwrt_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], user_input(ubus_emulator)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


# ---------------------------------------------------------------- reauth


async def test_reauth_stores_the_new_password(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator, password="old")
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "hass", CONF_PASSWORD: "hasspw"}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == "hasspw"
    assert entry.data[CONF_PORT] == ubus_emulator.port


async def test_reauth_with_wrong_password_shows_invalid_auth(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator, password="old")
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "hass", CONF_PASSWORD: "wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data[CONF_PASSWORD] == "old"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "hass", CONF_PASSWORD: "hasspw"}
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reauth_successful"


async def test_reauth_against_another_router_aborts_unique_id_mismatch(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator, password="old", unique_id=OTHER_MAC)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "hass", CONF_PASSWORD: "hasspw"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"
    assert entry.data[CONF_PASSWORD] == "old"


# ---------------------------------------------------------------- reconfigure


async def test_reconfigure_stores_the_new_address(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, closed_port: int
) -> None:
    entry = make_entry(hass, ubus_emulator, port=closed_port)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOST: "127.0.0.1", CONF_PORT: ubus_emulator.port, CONF_SSL: False},
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == ubus_emulator.port
    assert entry.data[CONF_PASSWORD] == "hasspw"  # the login stays


async def test_reconfigure_to_an_unreachable_port_shows_cannot_connect(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, closed_port: int
) -> None:
    entry = make_entry(hass, ubus_emulator)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: closed_port, CONF_SSL: False}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data[CONF_PORT] == ubus_emulator.port


async def test_reconfigure_to_another_router_aborts_unique_id_mismatch(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator, host="192.0.2.1", unique_id=OTHER_MAC)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOST: "127.0.0.1", CONF_PORT: ubus_emulator.port, CONF_SSL: False},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"
    assert entry.data[CONF_HOST] == "192.0.2.1"


# ---------------------------------------------------------------- options

OPTIONS = {
    CONF_SCAN_INTERVAL: 60,
    CONF_WINDOW: 30,
    CONF_STALE_DAYS: 14,
    CONF_CONNTRACK_CAP: 2000,
    CONF_FANOUT_HOSTS: 5,
    CONF_UNREPLIED_ATTEMPTS: 40,
    CONF_LEARNING_HOURS: 48,
    CONF_AUTO_QUARANTINE_MINUTES: 120,
}


async def test_options_flow_stores_the_options(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        OPTIONS
        | {
            CONF_TRACKED_DEVICES: ["C0-FF-EE-00-00-01"],
            CONF_LAN_RESOLVERS: ["192.168.1.1", "fd00:0::1", "192.168.1.1"],
            CONF_PROTECTED_DEVICES: ["C0FFEE000002", "c0:ff:ee:00:00:02"],
            CONF_AUTO_QUARANTINE: ["p2p_fanout", "signature"],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == OPTIONS | {
        CONF_TRACKED_DEVICES: ["c0:ff:ee:00:00:01"],
        CONF_LAN_RESOLVERS: ["192.168.1.1", "fd00::1"],
        CONF_PROTECTED_DEVICES: ["c0:ff:ee:00:00:02"],
        CONF_AUTO_QUARANTINE: ["signature", "p2p_fanout"],
    }


async def test_options_flow_rejects_a_resolver_that_is_not_an_ip(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], OPTIONS | {CONF_LAN_RESOLVERS: ["192.168.1.1", "pihole"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_LAN_RESOLVERS: "invalid_ip"}
    assert entry.options == {}


async def test_options_flow_rejects_an_invalid_mac(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], OPTIONS | {CONF_TRACKED_DEVICES: ["c0:ff:ee:00:00:01", "camera"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TRACKED_DEVICES: "invalid_mac"}
    assert entry.options == {}


async def test_options_flow_rejects_an_invalid_protected_mac(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], OPTIONS | {CONF_PROTECTED_DEVICES: ["router"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PROTECTED_DEVICES: "invalid_protected_mac"}
    assert entry.options == {}


async def test_options_flow_offers_the_entrys_devices_by_name(
    hass: HomeAssistant, ubus_emulator: UbusEmulator, device_registry: dr.DeviceRegistry
) -> None:
    entry = make_entry(hass, ubus_emulator)
    device_registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        connections={(dr.CONNECTION_NETWORK_MAC, "C0:FF:EE:00:00:01")},
        name="Garage camera",
    )
    device_registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, "router")},
        connections={(dr.CONNECTION_UPNP, "uuid:router")},
        name="Router",
    )
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["data_schema"] is not None
    selector = result["data_schema"].schema[CONF_TRACKED_DEVICES]
    assert selector.config["options"] == [
        {"value": "c0:ff:ee:00:00:01", "label": "Garage camera (c0:ff:ee:00:00:01)"}
    ]


async def test_options_form_shows_the_stored_options(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    stored = OPTIONS | {
        CONF_TRACKED_DEVICES: [],
        CONF_LAN_RESOLVERS: ["192.168.1.1"],
        CONF_PROTECTED_DEVICES: ["c0:ff:ee:00:00:02"],
        CONF_AUTO_QUARANTINE: ["dns_bypass"],
    }
    entry = make_entry(hass, ubus_emulator, options=stored)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["data_schema"] is not None
    defaults = {key.schema: key.default() for key in result["data_schema"].schema}
    assert defaults == stored


def test_normalize_mac_accepts_the_usual_spellings() -> None:
    assert normalize_mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert normalize_mac("aabbccddeeff") == "aa:bb:cc:dd:ee:ff"
    assert normalize_mac("aa:bb-cc:dd:ee:ff") is None
    assert normalize_mac("aa:bb:cc:dd:ee") is None


async def test_every_form_serializes_for_the_frontend(
    hass: HomeAssistant, ubus_emulator: UbusEmulator
) -> None:
    entry = make_entry(hass, ubus_emulator)
    forms = [
        await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER}),
        await openwrt_form(hass),
        await entry.start_reauth_flow(hass),
        await entry.start_reconfigure_flow(hass),
        await hass.config_entries.options.async_init(entry.entry_id),
    ]
    for form in forms:
        fields = voluptuous_serialize.convert(
            form["data_schema"], custom_serializer=cv.custom_serializer
        )
        assert all("selector" in field for field in fields), form["step_id"]


def test_every_field_error_and_abort_is_translated() -> None:
    strings = json.loads(TRANSLATIONS.read_text())
    config, options = strings["config"], strings["options"]
    connection = [CONF_HOST, CONF_PORT, CONF_SSL, CONF_VERIFY_SSL]
    credentials = [CONF_USERNAME, CONF_PASSWORD]
    steps = {
        "user": [CONF_ROUTER_KIND],
        "openwrt": [*connection, *credentials],
        "reauth_confirm": credentials,
        "reconfigure": connection,
    }
    for step, fields in steps.items():
        assert set(config["step"][step]["data"]) == set(fields), step
        assert set(config["step"][step]["data_description"]) == set(fields), step
        assert config["step"][step]["title"]
    assert set(config["error"]) == {
        "cannot_connect",
        "tls_error",
        "invalid_auth",
        "missing_acl_conntrack",
        "missing_acl_host_hints",
        "missing_acl",
        "not_openwrt",
        "unknown",
        "auth_required",
        "invalid_leases_path",
        "ssh_cannot_connect",
        "ssh_invalid_auth",
        "host_key_changed",
        "conntrack_unreadable",
        "ssh_not_linux",
        "unifi_cannot_connect",
        "unifi_tls_error",
        "unifi_invalid_auth",
        "two_factor",
        "no_permission",
        "not_unifi",
        "unknown_site",
    }
    assert "{acl}" in config["error"]["missing_acl"]
    assert set(config["abort"]) == {
        "already_configured",
        "reauth_successful",
        "reconfigure_successful",
        "unique_id_mismatch",
    }
    fields = {
        *OPTIONS,
        CONF_TRACKED_DEVICES,
        CONF_LAN_RESOLVERS,
        CONF_PROTECTED_DEVICES,
        CONF_AUTO_QUARANTINE,
        CONF_FULL_BLOCK,
    }
    assert set(options["step"]["init"]["data"]) == fields
    assert set(options["step"]["init"]["data_description"]) == fields
    assert set(options["error"]) == {"invalid_mac", "invalid_ip", "invalid_protected_mac"}
    assert set(strings["selector"]["finding_kind"]["options"]) == set(FINDING_KINDS)
