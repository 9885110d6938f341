"""No password, private key or session token of any router kind leaks out of its config entry.

For each router kind, one run goes through everything that touches the login: the
config flow (a wrong password first), setup, polls (one with a session that expired),
router errors, a quarantine and its release, a reauth flow (a wrong password first),
diagnostics and unload. Every password, private key, key passphrase and token the
router hands out is distinctive; none of them (nor its URL-encoded or base64 form,
nor a line of a private key) may appear in:

- the log, at DEBUG for every logger (Home Assistant, this integration, aiohttp, asyncssh);
- the text of any exception raised anywhere while it runs (``sys.monitoring``: also the
  ones caught and turned into form errors), with Home Assistant's translation placeholders;
- what the flows show (errors, placeholders, the form's defaults), events on the bus
  (entity states and attributes), repair issues, persistent notifications, the devices;
- diagnostics, the integration's Store, the entry's title and options.

The secrets live only in the config entry's data, where Home Assistant keeps every
integration's credentials (``.storage/core.config_entries``).
"""

import base64
import ipaddress
import json
import logging
import sys
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, quote_plus

import asyncssh
import pytest
import voluptuous_serialize
from aiohttp import web
from aiohttp.typedefs import Handler
from homeassistant.components import persistent_notification
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.const import (
    ATTR_ENTITY_ID,
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SSL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
    MATCH_ALL,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.phonehome.const import (
    CONF_ROUTER_KIND,
    CONF_SITE,
    CONF_SSH_KEY,
    DOMAIN,
    ROUTER_KIND_LINUX_SSH,
    ROUTER_KIND_OPENWRT,
    ROUTER_KIND_UNIFI,
)
from custom_components.phonehome.coordinator import PhoneHomeCoordinator
from custom_components.phonehome.routers import linux_poll
from custom_components.phonehome.store import SAVE_DELAY
from tests.emulators.ssh import SshEmulator
from tests.emulators.ubus import Failure, UbusEmulator, User as UbusUser
from tests.emulators.unifi import UniFiEmulator, User as UniFiUser
from tests.routers.test_openwrt import HINTS, LEASES, THREE_DEVICES

PASSWORD: Final = "Pw-7f3a9c-SECRET"
WRONG_PASSWORD: Final = "Pw-wrong-2e4d-SECRET"
NEW_PASSWORD: Final = "Pw-new-c81b-SECRET"
"""The password after reauth."""
GATEWAY_PASSWORD: Final = "Pw-gw-55a0-SECRET"
PASSPHRASE: Final = "Phrase-0b9e-SECRET"
"""Protects a private key the integration cannot use (it takes keys without passphrase)."""
TOKEN: Final = "tok-91b2-SECRET-"
"""Start of every ubus session id, UniFi TOKEN cookie and CSRF token the emulators hand out."""
MARK: Final = "SECRET"
"""In every secret above: a cut-off piece of one is found too."""
PASSWORDS: Final = (PASSWORD, WRONG_PASSWORD, NEW_PASSWORD, GATEWAY_PASSWORD, PASSPHRASE)
USERNAME: Final = "hass"

CONTROL_FLOW: Final = (StopIteration, StopAsyncIteration, GeneratorExit)
"""Raised to end generators: they carry a return value (here: emulators), no message."""
TEST_CODE: Final = (str(Path(__file__).parents[1]), str(Path(pytest.__file__).parent))
"""Exceptions raised here (the emulators, pytest's fixtures) never reach the integration."""
ROUTERS = Path(__file__).parents[1] / "routers" / "fixtures" / "linux_ssh"
CORE = Path(__file__).parents[1] / "core" / "fixtures"


# ---------------------------------------------------------------- what is watched


def encodings(secret: str) -> set[str]:
    """The secret as it could show up: plain, URL-encoded, base64 (alone and as basic auth)."""
    forms = {secret, quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}
    for raw in (secret, f"{USERNAME}:{secret}", f"root:{secret}"):
        forms.add(base64.b64encode(raw.encode()).decode().rstrip("="))
    return forms


def key_pieces(private_key: str) -> set[str]:
    """Every line of a private key's body (the header and footer say nothing secret)."""
    return {line for line in private_key.splitlines() if line and "-----" not in line}


class Watch:
    """Everything a secret could leak into while a scenario runs; ``leaks`` says where."""

    def __init__(self, hass: HomeAssistant, caplog: pytest.LogCaptureFixture) -> None:
        self.hass = hass
        self.caplog = caplog
        self.secrets: set[str] = {MARK}
        for secret in (*PASSWORDS, TOKEN):
            self.secrets |= encodings(secret)
        self.raised: list[str] = []
        self.shown: list[str] = []
        self.events: list[str] = []
        self.entries: list[ConfigEntry] = []
        self._tool: int | None = None

    def add_key(self, private_key: str) -> None:
        self.secrets |= key_pieces(private_key)

    # ------------------------------------------------------------ recording

    def start(self) -> None:
        """Log at DEBUG everywhere; record every exception raised and every event fired."""
        self.caplog.set_level(logging.DEBUG)
        for name in ("custom_components.phonehome", "aiohttp", "asyncssh", "homeassistant"):
            self.caplog.set_level(logging.DEBUG, logger=name)
        self.hass.bus.async_listen(MATCH_ALL, self._event)
        monitoring = sys.monitoring
        for tool in range(6):  # a free tool id (coverage may hold one)
            try:
                monitoring.use_tool_id(tool, "phonehome-secrets")
            except ValueError:
                continue
            self._tool = tool
            break
        assert self._tool is not None
        monitoring.register_callback(self._tool, monitoring.events.RAISE, self._raised)
        monitoring.set_events(self._tool, monitoring.events.RAISE)

    def stop(self) -> None:
        if self._tool is not None:
            sys.monitoring.set_events(self._tool, 0)
            sys.monitoring.register_callback(self._tool, sys.monitoring.events.RAISE, None)
            sys.monitoring.free_tool_id(self._tool)
            self._tool = None

    def _raised(self, code: types.CodeType, offset: int, exception: BaseException) -> None:
        """An exception raised anywhere but in the tests' own code; generators' ends aside."""
        if isinstance(exception, CONTROL_FLOW) or code.co_filename.startswith(TEST_CODE):
            return
        try:
            text = f"{type(exception).__name__}: {exception} {exception.args!r}"
            if isinstance(exception, HomeAssistantError):
                text += f" {exception.translation_placeholders!r}"
        except Exception as err:
            text = f"{type(exception).__name__} (unprintable: {err!r})"
        self.raised.append(text)

    def _event(self, event: Event) -> None:
        self.events.append(f"{event.event_type} {event.data!r}")

    def flow(self, result: ConfigFlowResult) -> ConfigFlowResult:
        """What the browser sees of a flow step: errors, placeholders, the form's defaults."""
        shown = {
            key: value
            for key, value in result.items()
            if key not in {"data_schema", "data", "result", "options"}
        }
        if (schema := result.get("data_schema")) is not None:
            shown["data_schema"] = voluptuous_serialize.convert(
                schema, custom_serializer=cv.custom_serializer
            )
            shown["suggested"] = [
                (str(marker), marker.description, marker.default) for marker in schema.schema
            ]
        self.shown.append(repr(shown))
        return result

    # ------------------------------------------------------------ checking

    def places(self, hass_storage: dict[str, Any]) -> dict[str, str]:
        """Every place that must hold no secret, by name."""
        storage = {
            key: value for key, value in hass_storage.items() if key != "core.config_entries"
        }
        return {
            "log": self.caplog.text,
            "exceptions": "\n".join(self.raised),
            "flows": "\n".join(self.shown),
            "events": "\n".join(self.events),
            "storage": json.dumps(storage, default=str),
            "entries": "\n".join(
                f"{entry.title} {entry.options!r} {entry.reason} "
                f"{entry.error_reason_translation_placeholders!r}"
                for entry in self.entries
            ),
            "issues": repr(list(ir.async_get(self.hass).issues.values())),
            "notifications": repr(
                persistent_notification._async_get_or_create_notifications(self.hass)
            ),
            "devices": repr(list(dr.async_get(self.hass).devices.values())),
            "entities": repr(list(er.async_get(self.hass).entities.values())),
            "states": repr(self.hass.states.async_all()),
        }

    def leaks(self, hass_storage: dict[str, Any], *extra: tuple[str, str]) -> list[str]:
        """``place: secret in <context>`` for each secret found; empty when nothing leaked."""
        places = self.places(hass_storage) | dict(extra)
        return sorted(
            f"{place}: {secret} in {text[max(0, at - 120) : at + 80]!r}"
            for place, text in places.items()
            for secret in self.secrets
            if (at := text.find(secret)) >= 0
        )


@pytest.fixture
def watch(hass: HomeAssistant, caplog: pytest.LogCaptureFixture) -> Iterator[Watch]:
    watcher = Watch(hass, caplog)
    watcher.start()
    yield watcher
    watcher.stop()


# ---------------------------------------------------------------- shared steps


async def configure(
    hass: HomeAssistant, watch: Watch, flow_id: str, data: dict[str, Any]
) -> ConfigFlowResult:
    return watch.flow(await hass.config_entries.flow.async_configure(flow_id, data))


async def kind_form(hass: HomeAssistant, watch: Watch, kind: str) -> ConfigFlowResult:
    """A user flow past its first step: the form of ``kind``."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await configure(hass, watch, result["flow_id"], {CONF_ROUTER_KIND: kind})


def created(hass: HomeAssistant, watch: Watch, result: ConfigFlowResult) -> ConfigEntry:
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry: ConfigEntry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    watch.entries.append(entry)
    return entry


def coordinator_of(entry: ConfigEntry) -> PhoneHomeCoordinator:
    coordinator: PhoneHomeCoordinator = entry.runtime_data.coordinator
    return coordinator


async def polls(entry: ConfigEntry, count: int = 3) -> None:
    """Several polls, each a success."""
    coordinator = coordinator_of(entry)
    for _ in range(count):
        await coordinator.async_refresh()
        assert coordinator.last_update_success, coordinator.last_exception


async def failed_poll(entry: ConfigEntry) -> None:
    """A poll that fails (the router misbehaves): logged, entities unavailable."""
    coordinator = coordinator_of(entry)
    await coordinator.async_refresh()
    assert not coordinator.last_update_success


def quarantine_switch(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The quarantine switch of one of the entry's LAN devices."""
    for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id):
        if entity.domain == SWITCH_DOMAIN and entity.unique_id.endswith("_quarantine"):
            return entity.entity_id
    raise AssertionError("no quarantine switch")


async def quarantine_and_release(hass: HomeAssistant, entry: ConfigEntry) -> None:
    switch = quarantine_switch(hass, entry)
    for service, state in ((SERVICE_TURN_ON, STATE_ON), (SERVICE_TURN_OFF, STATE_OFF)):
        await hass.services.async_call(
            SWITCH_DOMAIN, service, {ATTR_ENTITY_ID: switch}, blocking=True
        )
        current = hass.states.get(switch)
        assert current is not None
        assert current.state == state


async def reauth(
    hass: HomeAssistant,
    watch: Watch,
    entry: ConfigEntry,
    wrong: dict[str, Any],
    right: dict[str, Any],
) -> None:
    """The poll was refused: reauth with a wrong login (an error), then the right one."""
    await coordinator_of(entry).async_refresh()
    flows = list(entry.async_get_active_flows(hass, {"reauth"}))
    assert len(flows) == 1
    flow_id = flows[0]["flow_id"]
    result = await configure(hass, watch, flow_id, wrong)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"]
    result = await configure(hass, watch, flow_id, right)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def finish(
    hass: HomeAssistant,
    watch: Watch,
    entry: ConfigEntry,
    hass_storage: dict[str, Any],
    diagnostics: dict[str, Any],
) -> None:
    """The delayed Store write, unload; then nothing, diagnostics included, may hold a secret."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY + 1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert f"{DOMAIN}.{entry.entry_id}" in hass_storage  # the Store was written, and checked
    assert "Error fetching" in watch.caplog.text  # router errors were logged, and checked
    assert watch.raised
    assert watch.leaks(hass_storage, ("diagnostics", json.dumps(diagnostics))) == []


# ---------------------------------------------------------------- OpenWrt


@pytest.fixture
async def openwrt(socket_enabled: None) -> AsyncIterator[tuple[UbusEmulator, dict[str, bool]]]:
    """/ubus with a distinctive session id, and a switch that cuts the login reply mid-body."""
    emulator = UbusEmulator(users={USERNAME: UbusUser(PASSWORD)}, session_prefix=TOKEN)
    emulator.proc_text = THREE_DEVICES
    emulator.host_hints = HINTS
    emulator.dhcp_leases = LEASES
    switches = {"cut_login": False}

    @web.middleware
    async def cut_login(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if switches["cut_login"] and b'"login"' in await request.read():
            assert isinstance(response, web.Response)
            assert response.text is not None
            return web.Response(text=response.text[:200], content_type="application/json")
        return response

    emulator.app.middlewares.append(cut_login)
    await emulator.start()
    yield emulator, switches
    await emulator.close()


async def openwrt_run(
    hass: HomeAssistant, watch: Watch, emulator: UbusEmulator, switches: dict[str, bool]
) -> ConfigEntry:
    """Flow, setup, polls, errors, quarantine and reauth of an OpenWrt router."""
    form = await kind_form(hass, watch, ROUTER_KIND_OPENWRT)
    login = {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: emulator.port,
        CONF_SSL: False,
        CONF_VERIFY_SSL: True,
        CONF_USERNAME: USERNAME,
    }
    result = await configure(hass, watch, form["flow_id"], login | {CONF_PASSWORD: WRONG_PASSWORD})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, watch, form["flow_id"], login | {CONF_PASSWORD: PASSWORD})
    entry = created(hass, watch, result)
    await polls(entry)
    emulator.expire_sessions()  # a fresh login within a poll
    await polls(entry, 1)
    for failure in (Failure.HTTP_500, Failure.NOT_JSON, Failure.TRUNCATED, Failure.WRONG_SHAPE):
        emulator.failure = failure
        await failed_poll(entry)
        emulator.failure = None
        await polls(entry, 1)  # recovered: the next error is logged again
    emulator.expire_sessions()
    switches["cut_login"] = True  # the login reply, session id and all, cut mid-body
    await failed_poll(entry)
    switches["cut_login"] = False
    await polls(entry, 1)
    await quarantine_and_release(hass, entry)
    emulator.users[USERNAME] = UbusUser(NEW_PASSWORD)
    emulator.expire_sessions()
    wrong = {CONF_USERNAME: USERNAME, CONF_PASSWORD: WRONG_PASSWORD}
    await reauth(hass, watch, entry, wrong, wrong | {CONF_PASSWORD: NEW_PASSWORD})
    await polls(entry, 1)
    assert any(sid.startswith(TOKEN) for sid in emulator.sessions)  # the client held the token
    return entry


# ---------------------------------------------------------------- UniFi


def ssh_router(emulator: SshEmulator) -> SshEmulator:
    """A Linux router's table, leases and neighbours on the SSH emulator."""
    emulator.files = {
        linux_poll.CONNTRACK_PATH: (CORE / "proc_lab.txt").read_text(),
        linux_poll.COUNT_PATH: "7\n",
        "/tmp/dhcp.leases": (ROUTERS / "dhcp.leases").read_text(),
    }
    emulator.neigh = (ROUTERS / "ip_neigh.txt").read_text()
    return emulator


@pytest.fixture
async def ssh(socket_enabled: None) -> AsyncIterator[SshEmulator]:
    """An SSH router (or a UniFi gateway) with a distinctive password."""
    emulator = ssh_router(SshEmulator())
    emulator.password = GATEWAY_PASSWORD
    await emulator.start()
    yield emulator
    emulator.drop()
    await emulator.close()


@pytest.fixture
def private_key(ssh: SshEmulator, watch: Watch) -> str:
    """A client key the SSH emulator accepts; its text is a secret."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    ssh.authorized_keys = [key]
    text: str = key.export_private_key().decode()
    watch.add_key(text)
    return text


@pytest.fixture
def locked_key(watch: Watch) -> str:
    """A private key protected by a passphrase, which the integration cannot use."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    text: str = key.export_private_key(passphrase=PASSPHRASE).decode()
    watch.add_key(text)
    return text


@pytest.fixture
def controller(unifi_emulator: UniFiEmulator) -> UniFiEmulator:
    unifi_emulator.users = {USERNAME: UniFiUser(PASSWORD)}
    unifi_emulator.token_prefix = TOKEN
    return unifi_emulator


async def unifi_run(  # noqa: PLR0913
    hass: HomeAssistant,
    watch: Watch,
    controller: UniFiEmulator,
    gateway: SshEmulator,
    *,
    private_key: str,
    locked_key: str,
) -> ConfigEntry:
    """Flow (with the gateway's SSH login), setup, polls, errors, quarantine, reauth."""
    form = await kind_form(hass, watch, ROUTER_KIND_UNIFI)
    login = {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: controller.port,
        CONF_SITE: "default",
        CONF_VERIFY_SSL: False,
        CONF_USERNAME: USERNAME,
    }
    flow_id = form["flow_id"]
    result = await configure(hass, watch, flow_id, login | {CONF_PASSWORD: WRONG_PASSWORD})
    assert result["errors"] == {"base": "unifi_invalid_auth"}
    result = await configure(hass, watch, flow_id, login | {CONF_PASSWORD: PASSWORD})
    assert result["step_id"] == "unifi_gateway"
    ssh_login = {CONF_HOST: "127.0.0.1", CONF_PORT: gateway.port, CONF_USERNAME: "root"}
    result = await configure(hass, watch, flow_id, ssh_login | {CONF_SSH_KEY: locked_key})
    assert result["step_id"] == "linux_ssh_host_key"
    result = await configure(hass, watch, flow_id, {})
    assert result["errors"] == {"base": "ssh_invalid_auth"}
    result = await configure(hass, watch, flow_id, ssh_login | {CONF_PASSWORD: WRONG_PASSWORD})
    assert result["errors"] == {"base": "ssh_invalid_auth"}
    result = await configure(
        hass,
        watch,
        flow_id,
        ssh_login | {CONF_PASSWORD: GATEWAY_PASSWORD, CONF_SSH_KEY: private_key},
    )
    entry = created(hass, watch, result)
    await polls(entry)
    controller.expire_sessions()  # a fresh login (cookie and CSRF token) within a poll
    await polls(entry, 1)
    for key, mode in (("stat/sta", "error"), ("stat/sta", "garbage"), ("stat/sta", "shape")):
        controller.fail[key] = mode
        await failed_poll(entry)
        controller.fail.clear()
        await polls(entry, 1)
    controller.expire_sessions()
    controller.fail["login"] = "garbage"
    await failed_poll(entry)
    controller.fail.clear()
    await polls(entry, 1)
    gateway.garbage = True
    await failed_poll(entry)
    gateway.garbage = False
    gateway.drop()  # the gateway rebooted: the next poll logs in again
    await polls(entry, 1)
    await quarantine_and_release(hass, entry)
    controller.users[USERNAME] = UniFiUser(NEW_PASSWORD)
    controller.expire_sessions()
    wrong = {CONF_USERNAME: USERNAME, CONF_PASSWORD: WRONG_PASSWORD}
    await reauth(hass, watch, entry, wrong, wrong | {CONF_PASSWORD: NEW_PASSWORD})
    await polls(entry, 1)
    assert all(token.startswith(TOKEN) for token in controller.sessions)  # cookies handed out
    assert all(session.csrf.startswith(TOKEN) for session in controller.sessions.values())
    return entry


# ---------------------------------------------------------------- Linux over SSH


async def ssh_run(
    hass: HomeAssistant, watch: Watch, router: SshEmulator, *, private_key: str, locked_key: str
) -> ConfigEntry:
    """Flow (host key confirmed), setup, polls, errors, quarantine and reauth over SSH."""
    form = await kind_form(hass, watch, ROUTER_KIND_LINUX_SSH)
    flow_id = form["flow_id"]
    address = {CONF_HOST: "127.0.0.1", CONF_PORT: router.port, CONF_USERNAME: "root"}
    result = await configure(hass, watch, flow_id, address | {CONF_PASSWORD: WRONG_PASSWORD})
    assert result["step_id"] == "linux_ssh_host_key"
    result = await configure(hass, watch, flow_id, {})
    assert result["errors"] == {"base": "ssh_invalid_auth"}
    result = await configure(hass, watch, flow_id, address | {CONF_SSH_KEY: locked_key})
    assert result["errors"] == {"base": "ssh_invalid_auth"}
    result = await configure(hass, watch, flow_id, address | {CONF_SSH_KEY: private_key})
    entry = created(hass, watch, result)
    await polls(entry)
    router.drop()  # the router rebooted: the next poll logs in again
    await polls(entry, 1)
    router.garbage = True
    await failed_poll(entry)
    router.garbage = False
    await polls(entry, 1)
    await quarantine_and_release(hass, entry)
    router.authorized_keys = []
    router.password = NEW_PASSWORD
    router.drop()
    wrong = {CONF_USERNAME: "root", CONF_PASSWORD: WRONG_PASSWORD}
    await reauth(hass, watch, entry, wrong, wrong | {CONF_PASSWORD: NEW_PASSWORD})
    await polls(entry, 1)
    assert router.logins[-1] == "password:root"
    assert "key:root" in router.logins
    return entry


# ---------------------------------------------------------------- every kind


@pytest.fixture(params=[ROUTER_KIND_OPENWRT, ROUTER_KIND_UNIFI, ROUTER_KIND_LINUX_SSH])
def scenario(
    request: pytest.FixtureRequest, hass: HomeAssistant, watch: Watch
) -> Callable[[], Awaitable[ConfigEntry]]:
    """One router kind's run, its emulators started: it returns the entry, still loaded."""
    if request.param == ROUTER_KIND_OPENWRT:
        return partial(openwrt_run, hass, watch, *request.getfixturevalue("openwrt"))
    ssh = request.getfixturevalue("ssh")
    keys = {name: request.getfixturevalue(name) for name in ("private_key", "locked_key")}
    if request.param == ROUTER_KIND_UNIFI:
        return partial(unifi_run, hass, watch, request.getfixturevalue("controller"), ssh, **keys)
    return partial(ssh_run, hass, watch, ssh, **keys)


async def test_secrets_stay_in_the_entry(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
    watch: Watch,
    scenario: Callable[[], Awaitable[ConfigEntry]],
) -> None:
    entry = await scenario()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    await finish(hass, watch, entry, hass_storage, diagnostics)


# ---------------------------------------------------------------- the watch itself


async def test_a_leak_is_found_in_any_form(
    hass: HomeAssistant, hass_storage: dict[str, Any], watch: Watch
) -> None:
    """The check finds a secret logged plainly, URL-encoded, base64 or cut off, and raised."""
    logger = logging.getLogger("custom_components.phonehome.routers.ubus")
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    watch.add_key(key)
    assert watch.leaks(hass_storage) == []
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    for text in (PASSWORD, quote(NEW_PASSWORD), basic, f"{TOKEN}0001"[:20], key.splitlines()[2]):
        watch.caplog.clear()
        logger.debug("login with %s", text)
        assert watch.leaks(hass_storage), text
    watch.caplog.clear()
    with pytest.raises(ValueError, match="tok"):
        ipaddress.ip_address(TOKEN)  # raised in the standard library, quoting the token
    assert {leak.split(":")[0] for leak in watch.leaks(hass_storage)} == {"exceptions"}
