"""Faults of every router kind, through the emulators: nothing escapes, nothing is lost.

For each fault: no traceback reaches Home Assistant's log, the entities go
unavailable while the router fails and come back, the quarantine set up before
is enforced on the router afterwards, and the learned baselines are the same.
The demo kind does no I/O: it has no router faults (tests/ha/fault_kinds.py).
"""

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.update_coordinator import UpdateFailed
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.phonehome.const import DOMAIN
from custom_components.phonehome.coordinator import PhoneHomeCoordinator
from tests.emulators.faults import Fault, Faults
from tests.emulators.ubus import UbusEmulator
from tests.ha.conftest import setup
from tests.ha.fault_kinds import (
    DELAY,
    KINDS,
    TIMEOUT,
    RouterKind,
    baselines,
    quarantine_switch_on,
    shorten_timeouts,
    ssh_kind,
    ubus_kind,
    unifi_kind,
)
from tests.ha.test_ssh import ssh_emulator

__all__ = ["ssh_emulator"]  # the fixture, for the SSH kinds

POLL = timedelta(seconds=30)
UNREACHABLE = "router_unreachable"
BAD_RESPONSE = "router_bad_response"
SHOWN: dict[Fault, str] = {
    Fault.DELAY: UNREACHABLE,
    Fault.CUT: UNREACHABLE,
    Fault.HUGE: BAD_RESPONSE,
    Fault.WRONG_SHAPE: BAD_RESPONSE,
}
"""The error each fault shows (the coordinator's translated UpdateFailed)."""
WATCHED = ("custom_components.phonehome", "homeassistant")
"""Loggers that must never carry a traceback (ours, the coordinator's, config entries')."""


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, socket_enabled: None) -> RouterKind:
    """One router kind, its emulators running."""
    name = request.param
    if name.startswith("openwrt"):
        return ubus_kind(request.getfixturevalue("ubus_emulator"), plugin=name == "openwrt_plugin")
    if name == "linux_ssh":
        return ssh_kind(request.getfixturevalue("ssh_emulator"))
    gateway = request.getfixturevalue("ssh_emulator") if name == "unifi_gateway" else None
    return unifi_kind(request.getfixturevalue("unifi_emulator"), gateway)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """After the test: no record of ours or Home Assistant's carries a traceback."""
    caplog.set_level(logging.DEBUG, "custom_components.phonehome")
    yield
    for record in (*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records):
        if record.name.startswith(WATCHED):
            assert record.exc_info is None, record.getMessage()
            assert "Traceback" not in record.getMessage()


async def poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta = POLL
) -> None:
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def poll_held(hass: HomeAssistant, freezer: FrozenDateTimeFactory, faults: Faults) -> None:
    """A poll whose request the router holds: once it does, the clock passes the timeout.

    The clock is frozen (the event loop's too): a client's timeout fires only when
    the test moves time on, after the request is on its way.
    """
    held = faults.held
    freezer.tick(POLL)
    async_fire_time_changed(hass)
    for _ in range(100_000):
        if faults.held > held:
            break
        await asyncio.sleep(0)
    assert faults.held > held, "the router never got the poll's request"
    freezer.tick(timedelta(seconds=TIMEOUT * 2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def unavailable(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[set[str], set[str]]:
    """The entry's entities with a state: (unavailable ones, the others)."""
    down: set[str] = set()
    up: set[str] = set()
    for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id):
        if (state := hass.states.get(entity.entity_id)) is not None:
            (down if state.state == STATE_UNAVAILABLE else up).add(entity.entity_id)
    return down, up


def shown_error(coordinator: PhoneHomeCoordinator) -> str | None:
    """The translation key of the last poll's error: a router error, never a bare one."""
    error = coordinator.last_exception
    assert isinstance(error, UpdateFailed), repr(error)
    return error.translation_key


@dataclass
class Loaded:
    """A kind's entry set up, one device quarantined; what it showed and learned then."""

    hass: HomeAssistant
    kind: RouterKind
    freezer: FrozenDateTimeFactory
    entry: MockConfigEntry
    coordinator: PhoneHomeCoordinator
    down_before: set[str]
    baselines_before: dict[str, object]

    async def poll(self, delta: timedelta = POLL) -> None:
        await poll(self.hass, self.freezer, delta)

    def unavailable(self) -> tuple[set[str], set[str]]:
        return unavailable(self.hass, self.entry)

    async def back_to_normal(self) -> None:
        """Entities as available as before the fault, the quarantine held, baselines the same."""
        assert self.coordinator.last_update_success
        assert self.unavailable()[0] == self.down_before
        assert self.kind.enforced(self.kind.quarantined)
        assert self.kind.quarantined in self.coordinator.quarantines.active
        assert baselines(self.coordinator) == self.baselines_before


@pytest.fixture
async def loaded(
    hass: HomeAssistant, kind: RouterKind, freezer: FrozenDateTimeFactory, logged: None
) -> Loaded:
    """The kind's entry set up, one device quarantined, polled once more; no traceback."""
    entry = kind.entry(hass)
    await setup(hass, entry)
    coordinator: PhoneHomeCoordinator = entry.runtime_data.coordinator
    shorten_timeouts(coordinator)
    await quarantine_switch_on(hass, kind.quarantined)
    await poll(hass, freezer)
    assert kind.enforced(kind.quarantined)
    assert coordinator.last_update_success
    return Loaded(
        hass,
        kind,
        freezer,
        entry,
        coordinator,
        unavailable(hass, entry)[0],
        baselines(coordinator),
    )


async def test_unreachable_for_an_hour_then_back_after_a_reboot(
    loaded: Loaded,
) -> None:
    hass, kind, coordinator = loaded.hass, loaded.kind, loaded.coordinator
    for stop in (kind.stop, *kind.extra_stop):
        await stop()
    for _ in range(12):  # an hour, one poll each five minutes
        await loaded.poll(timedelta(minutes=5))
        assert not loaded.unavailable()[1]
        assert shown_error(coordinator) == UNREACHABLE
    with pytest.raises(HomeAssistantError) as refused:  # nothing to take it: nothing recorded
        await hass.services.async_call(DOMAIN, "quarantine", {"mac": kind.other}, blocking=True)
    assert refused.value.translation_key == "quarantine_router_unreachable"
    assert kind.other not in coordinator.quarantines.active
    kind.reboot()
    for start in (kind.start, *kind.extra_start):
        await start()
    for _ in range(3):  # reconnect; re-apply what the reboot lost; fw4 loaded at last
        await loaded.poll()
    await loaded.back_to_normal()


@pytest.mark.parametrize("fault", list(Fault))
async def test_a_bad_answer_makes_entities_unavailable_until_a_good_one(
    loaded: Loaded, fault: Fault
) -> None:
    hass, kind, coordinator = loaded.hass, loaded.kind, loaded.coordinator
    kind.faults.fault, kind.faults.delay = fault, DELAY
    await (poll_held(hass, loaded.freezer, kind.faults) if fault is Fault.DELAY else loaded.poll())
    assert not coordinator.last_update_success
    assert not loaded.unavailable()[1]
    assert shown_error(coordinator) == SHOWN[fault]
    if fault is Fault.HUGE:
        assert 0 < kind.faults.huge_sent < kind.faults.huge_size  # refused, never read whole
    kind.faults.clear()
    await loaded.poll()
    await loaded.back_to_normal()


async def test_a_session_lost_in_the_middle_of_a_poll_is_renewed(
    loaded: Loaded,
) -> None:
    kind, coordinator = loaded.kind, loaded.coordinator
    polled = coordinator.data.taken_at
    kind.drop_session_mid_poll()
    await loaded.poll()
    assert not kind.pending()
    assert coordinator.data.taken_at > polled  # this poll's data: renewed, not failed
    await loaded.back_to_normal()


async def test_a_table_emptied_by_a_reboot_then_refilled_loses_no_baseline(
    loaded: Loaded,
) -> None:
    kind, coordinator = loaded.kind, loaded.coordinator
    kind.empty_table()
    await loaded.poll()
    assert coordinator.data.flows == 0
    await loaded.back_to_normal()
    kind.refill_table()  # as it was before the quarantine cut the device's flows
    await loaded.poll()
    assert coordinator.data.flows > 0
    await loaded.back_to_normal()


async def test_a_reboot_between_quarantine_and_read_back_records_only_what_holds(
    loaded: Loaded,
) -> None:
    hass, kind, coordinator = loaded.hass, loaded.kind, loaded.coordinator
    kind.faults.on(kind.write, lambda: kind.faults.on(kind.read_back, kind.reboot))
    if kind.change_survives_reboot:  # read back on a fresh session: in force
        await quarantine_switch_on(hass, kind.other)
    else:  # not in force when read back: refused, and what was written is undone
        with pytest.raises(HomeAssistantError) as refused:
            await quarantine_switch_on(hass, kind.other)
        assert refused.value.translation_key == "quarantine_not_verified"
    assert not kind.pending()  # the reboot happened in the read-back
    assert (kind.other in coordinator.quarantines.active) is kind.change_survives_reboot
    assert kind.enforced(kind.other) is kind.change_survives_reboot
    for _ in range(3):  # the stored quarantine, lost with the reboot, is applied again
        await loaded.poll()
    await loaded.back_to_normal()
    assert (kind.other in coordinator.quarantines.active) == kind.enforced(kind.other)


@pytest.mark.parametrize("kind", ["openwrt_luci"], indirect=True)
async def test_a_quarantine_cut_off_before_its_read_back_is_kept_once_seen(
    loaded: Loaded,
) -> None:
    """rpcd dies after the commit: the service fails, but the block the router then holds is
    the user's and is recorded (not left on the router behind an "off" switch)."""
    hass, kind, coordinator = loaded.hass, loaded.kind, loaded.coordinator
    emulator = kind.stop.__self__
    assert isinstance(emulator, UbusEmulator)
    kind.faults.on(
        kind.write,
        lambda: kind.faults.on(kind.read_back, lambda: setattr(emulator, "rpcd_alive", False)),
    )
    with pytest.raises(HomeAssistantError):
        await quarantine_switch_on(hass, kind.other)
    assert kind.other not in coordinator.quarantines.active
    emulator.restart_rpcd()
    for _ in range(3):
        await loaded.poll()
    assert kind.enforced(kind.other)
    assert kind.other in coordinator.quarantines.active
    assert coordinator.quarantines.export()[kind.other]["pending"] is None
