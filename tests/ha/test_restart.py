"""Restart safety: a change cut short by a stop or a kill, a lost or unreadable Store, removal.

Each quarantine and release is written ahead: the next start finds the intent in
the Store and carries it out on the router. A "stop" cancels the change and
unloads the entry; a "kill" keeps only what was on disk at that moment and starts
a second Home Assistant on it.
"""

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant import loader
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_test_home_assistant,
)

from custom_components.phonehome.const import DOMAIN, EVENT_FINDING
from custom_components.phonehome.store import PhoneHomeStore
from tests.emulators.ssh import SshEmulator
from tests.emulators.ubus import UbusEmulator
from tests.ha.conftest import setup
from tests.ha.test_detection import CAMERA, POLICY, poll
from tests.ha.test_quarantine import (
    SECTION,
    SWITCH,
    T0,
    TV_SECTION,
    TV_SWITCH,
    lan,
    rules,
    state,
    store_data,
    stored_quarantines,
    switch,
)
from tests.ha.test_ssh import ssh_emulator, ssh_entry

__all__ = ["lan", "ssh_emulator"]

pytestmark = pytest.mark.freeze_time(T0)

RESUME = "resume_failed_c0ffee000001"
ADOPTED = "quarantine_adopted_c0ffee000001"
SSH_CAMERA = "02:77:00:00:00:02"
"""foscam-cam in the SSH router's leases."""
STAMP = "20260101T120000Z"
"""T0 as the name of a Store file moved aside."""


def camera(pending: str | None) -> dict[str, Any]:
    """The camera's stored quarantine, since T0, with a change written ahead (or settled)."""
    return {
        "name": SECTION,
        "addresses": ["192.168.1.20"],
        "flows_cut": False,
        "station_blocked": False,
        "start": T0.isoformat(),
        "end": None,
        "pending": pending,
    }


def issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


@asynccontextmanager
async def next_start(
    entry: MockConfigEntry,
) -> AsyncIterator[tuple[HomeAssistant, MockConfigEntry]]:
    """Another Home Assistant, as after a restart, holding the same config entry."""
    async with async_test_home_assistant() as hass:
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)  # custom integrations enabled
        again = MockConfigEntry(
            domain=DOMAIN,
            title=entry.title,
            data=dict(entry.data),
            options=dict(entry.options),
            unique_id=entry.unique_id,
            entry_id=entry.entry_id,
        )
        again.add_to_hass(hass)
        yield hass, again
        await hass.config_entries.async_unload(again.entry_id)
        await hass.async_stop(force=True)


class Interrupted:
    """Holds a router call forever at one point, as if Home Assistant died there."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()

    async def hold(self) -> None:
        self.reached.set()
        await asyncio.Event().wait()

    def before(self, call: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        """The call never reaches the router."""

        async def held(argument: Any) -> Any:
            await self.hold()
            return await call(argument)  # pragma: no cover - never resumed

        return held

    def after(self, call: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        """The router takes the change; its answer never comes back."""

        async def held(argument: Any) -> Any:
            result = await call(argument)
            await self.hold()
            return result  # pragma: no cover - never resumed

        return held


async def interrupt(
    hass: HomeAssistant, entry: MockConfigEntry, method: str, point: str, call: Awaitable[None]
) -> asyncio.Task[None]:
    """Start ``call`` and return once it stands still at ``point`` of the router's ``method``."""
    router = entry.runtime_data.router
    interrupted = Interrupted()
    wrap = interrupted.before if point == "before" else interrupted.after
    setattr(router, method, wrap(getattr(router, method)))
    task = hass.async_create_task(call)
    await interrupted.reached.wait()
    return task


@dataclass
class Router:
    """One emulated router kind, its entry, one LAN device, and what its firewall blocks."""

    entry: MockConfigEntry
    mac: str
    switch: str
    blocked: Callable[[], set[str]]
    """The MACs the router's firewall blocks now."""


@pytest.fixture(params=["openwrt", "ssh"])
def router(request: pytest.FixtureRequest, hass: HomeAssistant) -> Router:
    """OpenWrt's firewall rules over ubus, or a Linux router's nftables set over SSH."""
    if request.param == "openwrt":
        emulator: UbusEmulator = request.getfixturevalue("lan")
        return Router(
            request.getfixturevalue("config_entry"),
            CAMERA,
            SWITCH,
            lambda: {emulator.uci["firewall"][name]["src_mac"].lower() for name in rules(emulator)},
        )
    ssh: SshEmulator = request.getfixturevalue("ssh_emulator")
    return Router(
        ssh_entry(hass, ssh),
        SSH_CAMERA,
        "switch.foscam_cam_quarantine",
        lambda: set(ssh.nft.elements),
    )


@dataclass
class Held:
    """A quarantine (or a release) of the router's device, held at one point of the router call."""

    task: asyncio.Task[None]
    point: str
    """``before`` the router has it, or ``after`` (its answer never comes back)."""
    intent: set[str]
    """The MACs the user wants blocked."""


@pytest.fixture(
    params=[
        (method, point) for method in ("quarantine", "release") for point in ("before", "after")
    ],
    ids="-".join,
)
async def held(request: pytest.FixtureRequest, hass: HomeAssistant, router: Router) -> Held:
    """The entry set up (the device quarantined first, for a release); the change held."""
    method, point = request.param
    await setup(hass, router.entry)
    quarantined = method == "release"
    if quarantined:
        await switch(hass, SERVICE_TURN_ON, router.switch)
    service = SERVICE_TURN_OFF if quarantined else SERVICE_TURN_ON
    task = await interrupt(hass, router.entry, method, point, switch(hass, service, router.switch))
    intent = set() if quarantined else {router.mac}
    assert router.blocked() == (intent if point == "after" else {router.mac} - intent)
    return Held(task, point, intent)


async def test_a_kill_in_the_middle_ends_with_the_users_intent(
    hass: HomeAssistant, router: Router, hass_storage: dict[str, Any], held: Held
) -> None:
    entry, mac, intent = router.entry, router.mac, held.intent
    disk = copy.deepcopy(hass_storage)  # all a kill leaves
    held.task.cancel()
    await hass.config_entries.async_unload(entry.entry_id)  # ends its timers
    hass_storage.clear()
    hass_storage.update(disk)

    async with next_start(entry) as (restarted, again):
        events = async_capture_events(restarted, EVENT_FINDING)
        await setup(restarted, again)
        assert again.state is ConfigEntryState.LOADED
        assert router.blocked() == intent
        assert state(restarted, router.switch) == (STATE_ON if intent else STATE_OFF)
        saved = store_data(hass_storage, again)["quarantines"]
        assert saved == ({mac: saved[mac] | {"pending": None}} if intent else {})
        kind = "quarantined" if intent else "released"
        assert [(e.data["kind"], e.data["reason"]) for e in events] == [(kind, "resumed")]
        assert issue(restarted, f"resume_failed_{mac.replace(':', '')}") is None


async def test_a_stop_in_the_middle_ends_with_the_users_intent(
    hass: HomeAssistant, router: Router, freezer: FrozenDateTimeFactory, held: Held
) -> None:
    held.task.cancel()  # Home Assistant stopping cancels what still runs
    with pytest.raises(asyncio.CancelledError):
        await held.task
    assert await hass.config_entries.async_unload(router.entry.entry_id)
    await poll(hass, freezer)  # a delayed write, if any, happens

    await setup(hass, router.entry)
    assert router.blocked() == held.intent
    assert state(hass, router.switch) == (STATE_ON if held.intent else STATE_OFF)


async def left_quarantined(hass: HomeAssistant, entry: MockConfigEntry, *switches: str) -> None:
    """Set up; these switches (the camera's by default) turned on; unloaded."""
    await setup(hass, entry)
    for entity_id in switches or (SWITCH,):
        await switch(hass, SERVICE_TURN_ON, entity_id)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def release_left_pending(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    """The camera's rule on the router, its release written ahead; the router refuses it."""
    await left_quarantined(hass, entry)
    stored_quarantines(hass_storage, entry, **{CAMERA: camera("release")})
    lan.statuses["uci.delete"] = 6
    await setup(hass, entry)


async def test_a_refused_resumed_quarantine_has_an_issue_until_it_holds(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored_quarantines(hass_storage, config_entry, **{CAMERA: camera("quarantine")})
    lan.statuses["uci.add"] = 6
    await setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    found = issue(hass, RESUME)
    assert found is not None
    assert found.translation_key == "quarantine_resume_failed"
    assert found.severity is ir.IssueSeverity.ERROR
    assert "uci" in found.translation_placeholders["error"]  # type: ignore[index]
    assert state(hass, SWITCH) == STATE_ON  # the intent
    assert store_data(hass_storage, config_entry)["quarantines"][CAMERA]["pending"] == "quarantine"

    await poll(hass, freezer)  # still refused: logged once
    assert caplog.text.count("Cannot finish the change of c0:ff:ee:00:00:01") == 1

    del lan.statuses["uci.add"]
    await poll(hass, freezer)
    assert rules(lan) == {SECTION}
    assert issue(hass, RESUME) is None
    assert store_data(hass_storage, config_entry)["quarantines"][CAMERA]["pending"] is None
    assert "The router took the change of c0:ff:ee:00:00:01" in caplog.text


async def test_a_resumed_release_the_router_refuses_raises_an_issue_until_done(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    await release_left_pending(hass, config_entry, lan, hass_storage)
    found = issue(hass, RESUME)
    assert found is not None
    assert found.translation_key == "release_resume_failed"
    assert state(hass, SWITCH) == STATE_OFF  # the intent
    assert rules(lan) == {SECTION}
    assert issue(hass, ADOPTED) is None  # a release under way is not a lost record

    del lan.statuses["uci.delete"]
    await poll(hass, freezer)
    assert rules(lan) == set()
    assert issue(hass, RESUME) is None
    assert store_data(hass_storage, config_entry)["quarantines"] == {}


async def test_quarantining_again_replaces_a_release_left_pending(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    await release_left_pending(hass, config_entry, lan, hass_storage)

    lan.statuses["uci.get"] = 5  # the first try fails: the pending release stays
    with pytest.raises(HomeAssistantError):
        await switch(hass, SERVICE_TURN_ON)
    assert store_data(hass_storage, config_entry)["quarantines"][CAMERA]["pending"] == "release"
    with pytest.raises(HomeAssistantError):  # so does releasing by hand
        await switch(hass, SERVICE_TURN_OFF)
    assert store_data(hass_storage, config_entry)["quarantines"][CAMERA]["pending"] == "release"

    del lan.statuses["uci.get"]
    await switch(hass, SERVICE_TURN_ON)
    assert state(hass, SWITCH) == STATE_ON
    assert store_data(hass_storage, config_entry)["quarantines"][CAMERA]["pending"] is None
    assert issue(hass, RESUME) is None
    assert rules(lan) == {SECTION}


async def test_a_block_the_store_lost_is_kept_and_adopted(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    await left_quarantined(hass, config_entry, SWITCH, TV_SWITCH)
    del hass_storage[f"phonehome.{config_entry.entry_id}"]  # the Store is lost
    lan.uci["firewall"][TV_SECTION]["enabled"] = "0"  # and the TV's rule blocks nothing

    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    assert rules(lan) == {SECTION, TV_SECTION}
    assert state(hass, SWITCH) == STATE_ON
    assert state(hass, TV_SWITCH) == STATE_OFF
    found = issue(hass, ADOPTED)
    assert found is not None
    assert found.is_persistent
    assert found.translation_placeholders == {
        "device": f"Garage camera ({CAMERA})",
        "name": SECTION,
    }
    assert [(e.data["kind"], e.data["reason"]) for e in events] == [("quarantined", "adopted")]
    saved = store_data(hass_storage, config_entry)["quarantines"]
    assert saved.keys() == {CAMERA}
    assert saved[CAMERA]["end"] is None

    lan.uci["firewall"][TV_SECTION]["enabled"] = "1"  # later polls adopt nothing
    await poll(hass, freezer)
    assert state(hass, TV_SWITCH) == STATE_OFF

    await switch(hass, SERVICE_TURN_OFF)
    assert issue(hass, ADOPTED) is None
    assert rules(lan) == {TV_SECTION}


async def test_a_quarantine_again_clears_the_adopted_notice(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    await left_quarantined(hass, config_entry)
    del hass_storage[f"phonehome.{config_entry.entry_id}"]
    await setup(hass, config_entry)
    assert issue(hass, ADOPTED) is not None
    await switch(hass, SERVICE_TURN_ON)
    assert issue(hass, ADOPTED) is None


async def test_a_store_1_2_quarantine_is_settled(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    """The version before write-ahead stored only confirmed quarantines, without ``pending``."""
    item = camera(None)
    del item["pending"]
    stored_quarantines(hass_storage, config_entry, **{CAMERA: item})
    hass_storage[f"phonehome.{config_entry.entry_id}"]["minor_version"] = 2
    events = async_capture_events(hass, EVENT_FINDING)
    await setup(hass, config_entry)
    assert state(hass, SWITCH) == STATE_ON
    assert rules(lan) == {SECTION}  # re-asserted, as a lost one
    assert events == []  # nothing resumed
    saved = hass_storage[f"phonehome.{config_entry.entry_id}"]
    assert saved["minor_version"] == 3


async def test_an_unknown_pending_change_is_unreadable(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored_quarantines(hass_storage, config_entry, **{CAMERA: camera("reboot")})
    await setup(hass, config_entry)
    assert "Ignoring unreadable stored quarantine of c0:ff:ee:00:00:01" in caplog.text
    assert state(hass, SWITCH) == STATE_OFF
    assert rules(lan) == set()


async def test_a_reload_keeps_what_waited_to_be_written(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, config_entry)
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: POLICY, ATTR_OPTION: "local_only"},
        blocking=True,
    )  # stored after the Store's delay
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, POLICY) == "local_only"
    await poll(hass, freezer)  # the old entry's delayed write, had it waited, lands now
    assert store_data(hass_storage, config_entry)["policies"] == {CAMERA: "local_only"}


# ---------------------------------------------------------------- unreadable Store

GOOD = (
    '{"version": 1, "minor_version": 3, "key": "phonehome.x", "data": '
    '{"analyzer": null, "policies": {"c0:ff:ee:00:00:01": "monitor"}, "allow": [], '
    '"quarantines": {}}}'
)


@pytest.fixture
def storage_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Home Assistant's configuration in a temporary directory: its .storage is real."""
    hass.config.config_dir = str(tmp_path)
    (tmp_path / ".storage").mkdir()
    return tmp_path / ".storage"


def store_file(storage_dir: Path, entry: MockConfigEntry) -> Path:
    """The entry's Store file."""
    return storage_dir / f"phonehome.{entry.entry_id}"


def aside(store_file: Path) -> Path:
    """Where an unreadable Store file is moved."""
    return store_file.with_name(f"{store_file.name}.corrupt-{STAMP}")


def unreadable_notice(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """The placeholders of the entry's repair issue about its unreadable Store (raised)."""
    found = issue(hass, f"store_unreadable_{entry.entry_id}")
    assert found is not None
    assert found.is_persistent
    assert found.translation_placeholders is not None
    return found.translation_placeholders


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"version": 1, "minor_version": 3, "data": {"analyzer": nul', "not valid JSON"),
        (GOOD[: len(GOOD) // 2].encode(), "not valid JSON"),  # cut mid-write
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": {}}', "no storage version"),
        (b'{"version": 1, "minor_version": "3", "data": {}}', "no storage version"),
        (b'{"version": 1, "data": []}', "no data object"),
        (b'{"version": 1, "data": {"quarantines": []}}', "quarantines has the wrong type"),
        (b'{"version": 1, "data": {"analyzer": 3}}', "analyzer has the wrong type"),
    ],
    ids=[
        "invalid",
        "truncated",
        "empty",
        "not_utf8",
        "list",
        "no_version",
        "odd_minor",
        "data_list",
        "quarantines_list",
        "analyzer_number",
    ],
)
async def test_an_unreadable_store_is_moved_aside_and_router_blocks_kept(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    storage_dir: Path,
    content: bytes,
    reason: str,
) -> None:
    await left_quarantined(hass, config_entry)
    del hass_storage[f"phonehome.{config_entry.entry_id}"]
    path = store_file(storage_dir, config_entry)
    path.write_bytes(content)

    await setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    assert aside(path).read_bytes() == content
    assert not path.exists()
    notice = unreadable_notice(hass, config_entry)
    assert notice["path"] == str(aside(path))
    assert notice["error"].startswith(reason)
    assert notice["name"] == "OpenWrt"
    assert state(hass, SWITCH) == STATE_ON  # the router's block, kept
    assert rules(lan) == {SECTION}
    assert issue(hass, ADOPTED) is not None
    assert CAMERA in store_data(hass_storage, config_entry)["quarantines"]


async def test_a_readable_store_file_is_left_in_place(
    hass: HomeAssistant, config_entry: MockConfigEntry, lan: UbusEmulator, storage_dir: Path
) -> None:
    path = store_file(storage_dir, config_entry)
    path.write_text(GOOD)
    await setup(hass, config_entry)
    assert path.read_text() == GOOD
    assert issue(hass, f"store_unreadable_{config_entry.entry_id}") is None


async def test_a_store_path_that_cannot_be_read_is_moved_aside(
    hass: HomeAssistant, config_entry: MockConfigEntry, lan: UbusEmulator, storage_dir: Path
) -> None:
    path = store_file(storage_dir, config_entry)
    path.mkdir()  # read() fails
    await setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    assert aside(path).is_dir()
    assert unreadable_notice(hass, config_entry)["error"].startswith("cannot be read")


async def test_a_store_that_fails_to_load_is_moved_aside(
    hass: HomeAssistant, config_entry: MockConfigEntry, lan: UbusEmulator, storage_dir: Path
) -> None:
    path = store_file(storage_dir, config_entry)
    path.write_text(GOOD)
    with patch.object(PhoneHomeStore, "async_load", side_effect=HomeAssistantError("I/O error")):
        await setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    assert aside(path).exists()
    assert unreadable_notice(hass, config_entry)["error"] == "I/O error"


async def test_a_store_file_that_cannot_be_moved_is_named_where_it_is(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    storage_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = store_file(storage_dir, config_entry)
    path.write_text("{")
    with patch("custom_components.phonehome.store.os.replace", side_effect=OSError("read-only")):
        await setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    assert unreadable_notice(hass, config_entry)["path"] == str(path)
    assert "it is overwritten at the next save" in caplog.text


# ---------------------------------------------------------------- removal


async def test_removing_the_entry_releases_its_quarantines(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    await setup(hass, config_entry)
    await switch(hass, SERVICE_TURN_ON)
    await switch(hass, SERVICE_TURN_ON, TV_SWITCH)
    await hass.config_entries.async_remove(config_entry.entry_id)
    assert rules(lan) == set()
    assert f"phonehome.{config_entry.entry_id}" not in hass_storage
    assert not ir.async_get(hass).issues


async def test_removing_an_entry_without_quarantines_leaves_the_router_alone(
    hass: HomeAssistant, config_entry: MockConfigEntry, lan: UbusEmulator
) -> None:
    await setup(hass, config_entry)
    lan.rpcd_alive = False  # the router is gone for good
    requests = lan.requests
    await hass.config_entries.async_remove(config_entry.entry_id)
    assert lan.requests == requests + 1  # the unload's logout only
    assert not ir.async_get(hass).issues


@pytest.mark.parametrize(
    ("break_router", "error"),
    [
        (lambda e: setattr(e, "rpcd_alive", False), "rpcd"),
        (lambda e: e.statuses.update({"uci.delete": 6}), "uci"),
    ],
    ids=["unreachable", "refused"],
)
async def test_a_device_removal_cannot_release_gets_a_repair_issue(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
    break_router: Callable[[UbusEmulator], None],
    error: str,
) -> None:
    await setup(hass, config_entry)
    await switch(hass, SERVICE_TURN_ON)
    break_router(lan)
    await hass.config_entries.async_remove(config_entry.entry_id)
    assert rules(lan) == {SECTION}
    found = issue(hass, f"quarantines_left_{config_entry.entry_id}")
    assert found is not None
    assert found.is_persistent
    placeholders = found.translation_placeholders
    assert placeholders is not None
    assert placeholders["devices"] == CAMERA
    assert placeholders["rules"] == SECTION
    assert error in placeholders["error"]
    assert f"phonehome.{config_entry.entry_id}" not in hass_storage


async def test_a_removal_the_router_is_too_slow_for_gets_a_repair_issue(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    lan: UbusEmulator,
    hass_storage: dict[str, Any],
) -> None:
    await setup(hass, config_entry)
    await switch(hass, SERVICE_TURN_ON)
    stored_quarantines(
        hass_storage, config_entry, **{CAMERA: camera(None) | {"start": "yesterday"}}
    )
    with patch("custom_components.phonehome.REMOVAL_TIMEOUT", 0):
        await hass.config_entries.async_remove(config_entry.entry_id)
    found = issue(hass, f"quarantines_left_{config_entry.entry_id}")
    assert found is not None
    assert found.translation_placeholders is not None
    assert found.translation_placeholders["error"] == "the router took longer than 0 s"
    assert found.translation_placeholders["rules"] == SECTION
