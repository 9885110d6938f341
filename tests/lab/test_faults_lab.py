"""Faults with a real kernel: the lab router reboots, or drops off the network, under Home Assistant.

Home Assistant runs in the lab's Home Assistant namespace as in test_lab_end_to_end.py
(house.entered), against the lab router over OpenWrt ubus or SSH, and quarantines the
camera. The camera keeps beaconing to its internet hosts and streaming to Home Assistant
on the LAN; the hosts count what reaches them. Then the router fails:

- an OpenWrt reboot: ubus stops, the kernel forgets its ruleset and conntrack table, and
  the router starts again from its committed UCI config (ubus_router.py --state), which
  fw4 loads at boot: the router itself still blocks the camera;
- a Linux router's reboot over SSH: sshd and its sessions die, the kernel forgets its
  ruleset (the integration's `inet phonehome` table is not persisted) and conntrack
  table, the router's own firewall comes back; the integration must block the camera again;
- the link between Home Assistant and the router goes down for several polls.

Each time the polls fail meanwhile, the entities go unavailable and no traceback is
logged; afterwards the entities come back, the quarantine holds (the camera's internet
traffic stays blocked while its LAN stream flows) and the analyzer's baselines are those
from before. Polls are driven with `coordinator.async_refresh()` (no timed poll).
"""

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.phonehome.const import (
    CONF_SCAN_INTERVAL,
    DOMAIN,
)
from custom_components.phonehome.coordinator import PhoneHomeCoordinator
from custom_components.phonehome.core.activity import DeviceActivity
from custom_components.phonehome.quarantine import lost_issue_id
from custom_components.phonehome.routers.ubus import DEFAULT_TIMEOUT as UBUS_TIMEOUT

from . import sshd
from .house import (
    ROUTER_LAN,
    House,
    entered,
    internet_addresses,
    play_argv,
    router_firewall,
    scenario,
    serve_argv,
    ubus_argv,
    write_router_data,
)
from .netlab import Helper, Lab, LabError, Namespace, namespace_pids
from .test_lab_end_to_end import (
    CAMERA,
    HASS_IP,
    IN_FLIGHT,
    PACE,
    Counters,
    rises,
    ssh_data,
    start,
    ubus_data,
)

pytestmark = pytest.mark.lab

LIFETIME: Final = 60.0
"""Seconds after which a forgotten helper exits on its own."""
PLAY_SECONDS: Final = 40.0
TV: Final = "tv"
"""A well-behaved device: its flows refill the table after a reboot."""
SCAN_INTERVAL: Final = 3600
"""No timed poll: the test polls, inside the namespace."""
DOWN_POLLS: Final = 3
"""Polls that fail while the router is unreachable."""
FIRST_ROUNDS: Final = 1.0
"""Seconds the devices play before Home Assistant's first poll."""
SSHD_PROCESSES: Final = frozenset({"sshd", "sshd-session"})
"""Process names of OpenSSH's listener and of its per-connection processes."""
KILL_TIMEOUT: Final = 5.0


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/phonehome."""


Baselines = dict[str, tuple[str, frozenset[tuple[Any, ...]]]]
"""By MAC: the learning start and the baseline keys."""


@dataclass(frozen=True)
class Watched:
    """Home Assistant with the integration set up against the lab router."""

    hass: HomeAssistant
    entry: MockConfigEntry
    house: House
    counters: Counters

    @property
    def coordinator(self) -> PhoneHomeCoordinator:
        coordinator: PhoneHomeCoordinator = self.entry.runtime_data.coordinator
        return coordinator

    @property
    def camera(self) -> str:
        return self.house.devices[CAMERA].mac

    def entity_ids(self) -> list[str]:
        registry = er.async_get(self.hass)
        return [
            e.entity_id for e in er.async_entries_for_config_entry(registry, self.entry.entry_id)
        ]

    def available(self) -> set[str]:
        """The entry's entities that show a state (not unavailable)."""
        return {
            entity_id
            for entity_id in self.entity_ids()
            if (state := self.hass.states.get(entity_id)) is not None
            and state.state != STATE_UNAVAILABLE
        }

    def entity_id(self, platform: str, key: str) -> str:
        """The camera's entity of a platform and key."""
        entity_id = er.async_get(self.hass).async_get_entity_id(
            platform, DOMAIN, f"{self.camera}_{key}"
        )
        assert entity_id is not None, f"no {platform} {key} for the camera"
        return entity_id

    def activity(self, role: str) -> DeviceActivity:
        return self.coordinator.data.activity[self.house.devices[role].mac]

    def baselines(self) -> Baselines:
        """Each device's learning start and baseline keys (their order is recency: ignored)."""
        devices = self.coordinator.analyzer_state["devices"]
        return {
            mac: (device["first_seen"], frozenset(map(tuple, device["baseline"])))
            for mac, device in devices.items()
        }

    async def poll(self) -> bool:
        """One poll; whether it succeeded."""
        await self.coordinator.async_refresh()
        return self.coordinator.last_update_success

    def lost_issue(self) -> ir.IssueEntry | None:
        return ir.async_get(self.hass).async_get_issue(DOMAIN, lost_issue_id(self.camera))

    def held(self) -> None:
        """Loaded, no reauth or other flow started, the camera's quarantine kept and shown."""
        assert self.entry.state is ConfigEntryState.LOADED
        assert not self.hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        assert self.camera in self.coordinator.quarantines.active
        switch = self.hass.states.get(self.entity_id("switch", "quarantine"))
        assert switch is not None
        assert switch.state == STATE_ON

    def enforced(self) -> bool:
        """The latest poll read the camera's quarantine as enforced by the router."""
        seen = self.coordinator.data.quarantined.get(self.camera)
        return seen is not None and seen.enforced


async def blocked(watched: Watched) -> None:
    """The camera's internet traffic is stopped, its LAN stream to Home Assistant flows."""
    await asyncio.sleep(IN_FLIGHT)
    to_internet, to_lan = await rises(watched.counters)
    assert (to_internet, to_lan > 0) == (0, True)


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing Home Assistant shows by default (WARNING and up) carries a traceback.

    (The tests' event loop runs in asyncio's debug mode, which logs a write to a socket
    the router closed with its traceback at DEBUG; a normal loop does not log it.)
    """
    shown = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert not [record.getMessage() for record in shown if record.exc_info or record.exc_text]
    assert not [record.getMessage() for record in shown if "Traceback" in record.getMessage()]


def play_devices(
    lab: Lab, house: House, roles: tuple[str, ...] = (CAMERA, TV)
) -> dict[str, Helper]:
    """The camera (Foscam retries, local stream) and the TV play; their players by role."""
    plays = {
        **scenario("foscam", seconds=PLAY_SECONDS, pace=PACE),
        **scenario("well_behaved", seconds=PLAY_SECONDS, pace=PACE),
    }
    return {
        role: start(lab, house, role, play_argv(plays[role], LIFETIME), f"play {role}")
        for role in roles
    }


def counters_of(lab: Lab, house: House) -> Counters:
    return Counters(
        start(lab, house, "internet", serve_argv(internet_addresses(), LIFETIME), "internet"),
        start(lab, house, "hass", serve_argv([HASS_IP], LIFETIME), "hass"),
    )


def start_ubus(lab: Lab, house: House, directory: Path, *, plugin: bool) -> Helper:
    """The ubus emulator; its committed UCI persists in `directory` across restarts."""
    hints = directory / "hosts.json"
    argv = ubus_argv(hints, plugin=plugin, lifetime=LIFETIME, state=directory / "uci.json")
    return start(lab, house, "router", argv, "ubus")


def start_sshd(lab: Lab, house: House, server: sshd.SshServer) -> Helper:
    listener = lab.start(house.router, server.argv(), "sshd", ends_on_eof=False)
    sshd.wait_listening(house.router)
    return listener


def _process(pid: int) -> tuple[str, str] | None:
    """A process's name and state letter; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    name, _, rest = stat.partition(" (")[2].rpartition(") ")
    return name, rest.split(" ", 1)[0]


def kill_sshd(router: Namespace, listener: Helper) -> None:
    """sshd and every session it forked die at once, as when the router goes down."""
    sessions = [
        pid
        for pid in namespace_pids(router.name)
        if pid != listener.pid and (found := _process(pid)) and found[0] in SSHD_PROCESSES
    ]
    for pid in sessions:
        os.kill(pid, signal.SIGKILL)
    listener.stop()
    deadline = time.monotonic() + KILL_TIMEOUT
    while any((found := _process(pid)) and found[1] != "Z" for pid in sessions):
        if time.monotonic() > deadline:
            raise LabError(f"sshd sessions {sessions} still run {KILL_TIMEOUT:g} s after SIGKILL")
        time.sleep(0.02)


def reset_kernel(router: Namespace) -> None:
    """The router's kernel starts empty: no nftables ruleset, no conntrack entry."""
    router.run("nft", "flush", "ruleset")
    router.run("conntrack", "-F")
    count = router.run("conntrack", "-C").stdout.strip()
    assert count == "0", f"conntrack table after the flush: {count}"


async def set_up(
    hass: HomeAssistant, house: House, counters: Counters, data: dict[str, Any]
) -> Watched:
    """Set the entry up; the caller has entered the Home Assistant namespace."""
    entry = MockConfigEntry(
        domain=DOMAIN, title="Lab router", data=data, options={CONF_SCAN_INTERVAL: SCAN_INTERVAL}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return Watched(hass, entry, house, counters)


async def unload(watched: Watched) -> None:
    await watched.hass.config_entries.async_unload(watched.entry.entry_id)
    await watched.hass.async_block_till_done()


async def quarantined_and_learned(watched: Watched, how: str) -> tuple[Baselines, set[str]]:
    """Quarantine the camera (`how`: its switch, or the service); once blocked, poll again.

    Returns the baselines (some learned) and the entities shown, before any fault.
    """
    if how == "switch":
        entity_id = watched.entity_id("switch", "quarantine")
        await watched.hass.services.async_call(
            "switch", "turn_on", {"entity_id": entity_id}, blocking=True
        )
    else:
        await watched.hass.services.async_call(
            DOMAIN, "quarantine", {"mac": watched.camera}, blocking=True
        )
    await blocked(watched)
    assert await watched.poll()
    watched.held()
    assert watched.enforced()
    assert watched.activity(TV).internet_connections > 0
    baselines = watched.baselines()
    assert any(keys for _, keys in baselines.values()), "nothing learned before the fault"
    return baselines, watched.available()


async def down_for_polls(watched: Watched, polls: int = 1) -> None:
    """Every poll fails: every entity of the entry is unavailable."""
    for _ in range(polls):
        assert not await watched.poll()
        assert watched.available() == set()


async def back(watched: Watched, caplog: pytest.LogCaptureFixture, baselines: Baselines) -> None:
    """The poll after the fault: quarantine held, table refilled, nothing lost.

    (The entities shown before are all back once a poll reads the block enforced: the
    camera's blocked-attempts sensor needs the router's counter.)
    """
    await asyncio.sleep(FIRST_ROUNDS)  # the TV's flows refill the table
    assert await watched.poll()
    watched.held()
    assert watched.activity(TV).internet_connections > 0
    await blocked(watched)
    assert watched.baselines() == baselines
    no_traceback(caplog)


def all_shown_again(watched: Watched, shown: set[str]) -> None:
    """The block read back enforced: every entity shown before is back, no notice left."""
    assert watched.enforced()
    assert watched.available() >= shown
    assert watched.lost_issue() is None


async def test_openwrt_reboot_keeps_the_committed_quarantine(
    hass: HomeAssistant,
    house_lab: tuple[Lab, House],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ubus stops, the kernel forgets ruleset and table; the router boots from its committed
    UCI (fw4 loads the quarantine rule) and a new rpcd session is needed."""
    lab, house = house_lab
    counters = counters_of(lab, house)
    write_router_data(tmp_path)
    ubus = start_ubus(lab, house, tmp_path, plugin=True)
    players = play_devices(lab, house)
    await asyncio.sleep(FIRST_ROUNDS)
    with entered(house.namespaces["hass"]):
        watched = await set_up(hass, house, counters, ubus_data())
        try:
            assert watched.coordinator.data.table_source == "plugin"
            baselines, shown = await quarantined_and_learned(watched, "switch")

            players[TV].stop()
            ubus.stop()
            await down_for_polls(watched)
            reset_kernel(house.router)
            start_ubus(lab, house, tmp_path, plugin=True)
            await blocked(watched)  # before any poll: the router's own boot blocks the camera
            play_devices(lab, house, roles=(TV,))

            await back(watched, caplog, baselines)
            all_shown_again(watched, shown)
        finally:
            await unload(watched)


@pytest.mark.usefixtures("sshd_tools")
async def test_ssh_reboot_that_loses_the_table_gets_the_quarantine_again(
    hass: HomeAssistant,
    house_lab: tuple[Lab, House],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """sshd and its sessions die and the kernel forgets `inet phonehome` and the table; the
    router's own firewall comes back. The next poll blocks the camera again."""
    lab, house = house_lab
    counters = counters_of(lab, house)
    _, leases = write_router_data(tmp_path)
    server = sshd.prepare(tmp_path / "ssh", ROUTER_LAN)
    listener = start_sshd(lab, house, server)
    players = play_devices(lab, house)
    await asyncio.sleep(FIRST_ROUNDS)
    with entered(house.namespaces["hass"]):
        watched = await set_up(hass, house, counters, ssh_data(server, leases))
        try:
            baselines, shown = await quarantined_and_learned(watched, "service")

            players[TV].stop()
            kill_sshd(house.router, listener)
            await down_for_polls(watched)
            reset_kernel(house.router)
            house.router.load_nftables(router_firewall())  # what the router keeps: its own
            start_sshd(lab, house, server)
            assert (await rises(counters))[0] > 0, "the reboot did not lift the block"
            play_devices(lab, house, roles=(TV,))

            await back(watched, caplog, baselines)
            assert not watched.enforced()  # what the poll read, before it blocked again
            issue = watched.lost_issue()
            assert issue is not None
            assert issue.translation_key == "quarantine_lost"
            assert await watched.poll()  # the router holds the block: the notice goes
            all_shown_again(watched, shown)
        finally:
            await unload(watched)


async def test_router_unreachable_for_several_polls_then_back(
    hass: HomeAssistant,
    house_lab: tuple[Lab, House],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Home Assistant's link to the router goes down for several polls, then comes back;
    the table is read with LuCI's getConntrackList. The first poll waits out the client's
    timeout on its open connection, the others fail at once (no route)."""
    lab, house = house_lab
    counters = counters_of(lab, house)
    write_router_data(tmp_path)
    start_ubus(lab, house, tmp_path, plugin=False)
    play_devices(lab, house)
    await asyncio.sleep(FIRST_ROUNDS)
    hass_ns = house.namespaces["hass"]
    with entered(hass_ns):
        watched = await set_up(hass, house, counters, ubus_data())
        try:
            assert watched.coordinator.data.table_source == "luci"
            baselines, shown = await quarantined_and_learned(watched, "service")

            hass_ns.ip("link", "set", "eth0", "down")
            started = time.monotonic()
            await down_for_polls(watched, DOWN_POLLS)
            assert time.monotonic() - started < DOWN_POLLS * UBUS_TIMEOUT
            hass_ns.ip("link", "set", "eth0", "up")
            hass_ns.ip("route", "replace", "default", "via", ROUTER_LAN)

            await back(watched, caplog, baselines)
            all_shown_again(watched, shown)
        finally:
            await unload(watched)
