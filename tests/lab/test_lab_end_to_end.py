"""Home Assistant against the lab router, through OpenWrt ubus and through SSH.

Home Assistant (pytest-homeassistant-custom-component's `hass`) runs on the test's
thread, and that thread enters the lab's Home Assistant namespace while the integration
is set up, polls and quarantines (house.entered): every socket it opens lives there, and
reaches the router over the LAN bridge like a Home Assistant box on the LAN. The
integration is configured as a user would: OpenWrt ubus on the router's LAN address
(the emulator over the router's real /proc/net/nf_conntrack, fw4 and conntrack), or
SSH to the real sshd in the router namespace (root, a generated key, the pinned host key),
or UniFi: the controller emulator (tests/lab/unifi_router.py) on the router's LAN address
for the inventory and the quarantine (its TURN_OFF_INTERNET config becomes a real nft
rule), and the same sshd as the gateway's SSH login for the conntrack table.

The Foscam scenario and the well-behaved devices play (faster than in scripts/lab), with
or without 5,000 extra connections from the NAS: over ubus that is LuCI's
getConntrackList (below the 3,000 cap, no plugin) or the rpcd plugin (above it). The
internet hosts count what reaches them; the Home Assistant host counts the camera's
local stream.
"""

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.phonehome.const import (
    CONF_GATEWAY,
    CONF_HOST_KEY,
    CONF_LEASES_PATH,
    CONF_ROUTER_KIND,
    CONF_SCAN_INTERVAL,
    CONF_SITE,
    CONF_SSH_KEY,
    DEFAULT_CONNTRACK_CAP,
    DOMAIN,
    ROUTER_KIND_LINUX_SSH,
    ROUTER_KIND_OPENWRT,
    ROUTER_KIND_UNIFI,
)

from . import sshd
from .hosts import FOSCAM, RTP
from .house import (
    DEVICES,
    HOSTS,
    REPO_ROOT,
    ROUTER_LAN,
    WELL_BEHAVED,
    House,
    background,
    entered,
    internet_addresses,
    play_argv,
    scenario,
    serve_argv,
    ubus_argv,
    unifi_argv,
    write_router_data,
)
from .netlab import Helper, Lab, LabError

pytestmark = pytest.mark.lab

PACE: Final = 1 / 6
"""The Foscam camera retries every 0.5 s here (3 s in scripts/lab)."""
PLAY_SECONDS: Final = 60.0
"""The longest the devices play; the lab stops them at the end of the test."""
LIFETIME: Final = 90.0
"""Seconds after which a forgotten helper exits on its own."""
ROUNDS_BEFORE_POLL: Final = 7
"""Retries played before Home Assistant polls: 4 hosts x 7 > 20 unreplied attempts."""
WINDOW: Final = 1.5
"""Seconds the hosts' counts are watched."""
IN_FLIGHT: Final = 0.3
SCAN_INTERVAL: Final = 3600
"""No timed poll during a test: every poll happens inside the namespace, on purpose."""
CAMERA: Final = "foscam"
CAMERA_IP: Final = next(device.ip for device in DEVICES if device.role == CAMERA)
HASS_IP: Final = next(device.ip for device in DEVICES if device.role == "hass")
ALL_FINDINGS: Final = {"signature", "p2p_fanout", "unreplied_attempts"}


@dataclass(frozen=True)
class Counters:
    """What the internet hosts and the Home Assistant host received, by "src dst port"."""

    internet: Helper
    local: Helper

    def read(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(json.loads(self.internet.ask())), Counter(json.loads(self.local.ask()))


def start(lab: Lab, house: House, role: str, argv: list[str], name: str) -> Helper:
    """A lab helper in a role's namespace, running from the repository; waits for "ready"."""
    helper = lab.start(house.namespaces[role], argv, name, REPO_ROOT)
    if helper.read_line().strip() != "ready":
        raise LabError(f"{name} did not start: {helper.stop()}")
    return helper


def play(lab: Lab, house: House, plays: dict[str, Any]) -> None:
    for role, beacons in plays.items():
        start(lab, house, role, play_argv(beacons, LIFETIME), f"play {role}")


def play_background(lab: Lab, house: House) -> None:
    """The NAS's 5,000 connections, played to the end."""
    ((role, beacons),) = background().items()
    helper = start(lab, house, role, play_argv(beacons, LIFETIME), "background")
    if helper.read_line(30.0).strip() != "done":
        raise LabError(f"the background burst did not finish: {helper.stop()}")


def ubus_data() -> dict[str, Any]:
    """The entry data a user would enter for the ubus emulator on the router's LAN address."""
    return {
        CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT,
        "host": ROUTER_LAN,
        "port": 80,
        "ssl": False,
        "verify_ssl": True,
        "username": "root",
        "password": "secret",
    }


def ssh_data(server: sshd.SshServer, leases: Path) -> dict[str, Any]:
    """The entry data for sshd on the router's LAN address: its client key, pinned host key."""
    return {
        CONF_ROUTER_KIND: ROUTER_KIND_LINUX_SSH,
        "host": ROUTER_LAN,
        "port": sshd.PORT,
        "username": "root",
        CONF_SSH_KEY: server.client_key,
        CONF_HOST_KEY: server.host_key,
        CONF_LEASES_PATH: str(leases),
    }


def ubus_entry(lab: Lab, house: House, directory: Path, *, plugin: bool) -> dict[str, Any]:
    """The ubus emulator on the router's LAN address; the entry data a user would enter."""
    hints, _ = write_router_data(directory)
    start(lab, house, "router", ubus_argv(hints, plugin=plugin, lifetime=LIFETIME), "ubus")
    return ubus_data()


def ssh_entry(lab: Lab, house: House, directory: Path) -> dict[str, Any]:
    """sshd on the router's LAN address; entry data with the generated key and pinned host key."""
    _, leases = write_router_data(directory)
    server = sshd.prepare(directory / "ssh", ROUTER_LAN)
    lab.start(house.router, server.argv(), "sshd", ends_on_eof=False)
    sshd.wait_listening(house.router)
    return ssh_data(server, leases)


def unifi_entry(lab: Lab, house: House, directory: Path) -> dict[str, Any]:
    """The UniFi controller emulator (HTTPS) and sshd on the router's LAN address; the
    entry data a user would enter: the console's admin login, the gateway's SSH login."""
    start(lab, house, "router", unifi_argv(directory, LIFETIME), "unifi")
    gateway = ssh_entry(lab, house, directory)
    return {
        CONF_ROUTER_KIND: ROUTER_KIND_UNIFI,
        "host": ROUTER_LAN,
        "port": 443,
        "username": "admin",
        "password": "secret",
        CONF_SITE: "default",
        "verify_ssl": False,
        CONF_GATEWAY: {
            key: gateway[key] for key in ("host", "port", "username", CONF_SSH_KEY, CONF_HOST_KEY)
        },
    }


def entity(hass: HomeAssistant, house: House, role: str) -> dict[str, Any]:
    """The state and findings of a device's `phoning_home` binary sensor."""
    mac = house.devices[role].mac
    entity_id = er.async_get(hass).async_get_entity_id(
        "binary_sensor", DOMAIN, f"{mac}_phoning_home"
    )
    assert entity_id is not None, f"no phoning_home entity for {role} ({mac})"
    state = hass.states.get(entity_id)
    assert state is not None
    return {"state": state.state, "findings": state.attributes.get("findings", [])}


def destinations(finding: dict[str, Any]) -> set[tuple[str, int, str]]:
    return {(d["ip"], d["port"], d["protocol"]) for d in finding["destinations"]}


def _from_camera(counts: Counter[str], port: int) -> int:
    """Datagrams from the camera to `port`, summed over the hosts that counted them."""
    return sum(
        count
        for key, count in counts.items()
        if key.startswith(f"{CAMERA_IP} ") and key.endswith(f" {port}")
    )


async def rises(counters: Counters, seconds: float = WINDOW) -> tuple[int, int]:
    """Datagrams from the camera to its internet hosts, and to Home Assistant, over `seconds`."""
    internet, local = counters.read()
    await asyncio.sleep(seconds)
    internet_after, local_after = counters.read()
    return (
        _from_camera(internet_after, FOSCAM) - _from_camera(internet, FOSCAM),
        _from_camera(local_after, RTP) - _from_camera(local, RTP),
    )


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/phonehome."""


@dataclass(frozen=True)
class Case:
    """How Home Assistant reaches the router, and whether the NAS keeps it busy."""

    kind: str
    busy: bool
    source: str
    """The table source the integration should pick: "luci", "plugin" or "proc"."""


CASES: Final = [
    pytest.param(Case("openwrt", False, "luci"), id="ubus-getConntrackList"),
    pytest.param(Case("openwrt", True, "plugin"), id="ubus-plugin-5000-connections"),
    pytest.param(Case("ssh", False, "proc"), id="ssh"),
    pytest.param(Case("ssh", True, "proc"), id="ssh-5000-connections"),
    pytest.param(Case("unifi", False, "proc"), id="unifi-gateway-ssh"),
]


async def play_story(lab: Lab, house: House, *, busy: bool) -> None:
    """The NAS's burst (when busy), then the camera and the well-behaved devices, until the
    camera has retried ROUNDS_BEFORE_POLL times."""
    if busy:
        play_background(lab, house)
    plays = {
        **scenario("foscam", seconds=PLAY_SECONDS, pace=PACE),
        **scenario("well_behaved", seconds=PLAY_SECONDS, pace=PACE),
    }
    played_at = time.monotonic()
    play(lab, house, plays)
    retries = ROUNDS_BEFORE_POLL * plays[CAMERA][0].every
    await asyncio.sleep(retries - (time.monotonic() - played_at))


def check_detection(hass: HomeAssistant, house: House, entry: MockConfigEntry, case: Case) -> None:
    """The camera is flagged for the Foscam pattern; the well-behaved devices are not."""
    sessions = house.router.run("ss", "-Htn", "state", "established", "dst", HASS_IP)
    assert f"{ROUTER_LAN}:" in sessions.stdout, "Home Assistant's socket is not on the LAN"
    state = entry.runtime_data.coordinator.data
    assert state.table_source == case.source
    assert state.table_read
    assert (state.conntrack_count or 0) > (DEFAULT_CONNTRACK_CAP if case.busy else 0)

    flagged = entity(hass, house, CAMERA)
    assert flagged["state"] == STATE_ON
    by_kind = {finding["kind"]: finding for finding in flagged["findings"]}
    expected = set(ALL_FINDINGS)
    if case.source == "luci":  # getConntrackList drops [UNREPLIED]: that rule stays silent
        expected.remove("unreplied_attempts")
        assert "unreplied_attempts" not in by_kind
    assert expected <= by_kind.keys()
    four_hosts = {(host, FOSCAM, "udp") for host in HOSTS["foscam"]}
    for kind in expected:
        assert destinations(by_kind[kind]) == four_hosts, kind
    assert by_kind["signature"]["signature"] == "foscam_p2p"
    for role in WELL_BEHAVED:
        assert entity(hass, house, role)["state"] == STATE_OFF, role


async def check_quarantine(hass: HomeAssistant, counters: Counters, camera: str) -> None:
    """Quarantine stops the camera at the internet hosts, not on the LAN; release restores it."""
    assert all(count > 0 for count in await rises(counters))
    for service, to_internet in (("quarantine", False), ("release", True)):
        await hass.services.async_call(DOMAIN, service, {"mac": camera}, blocking=True)
        await asyncio.sleep(IN_FLIGHT)
        internet, local = await rises(counters)
        assert (internet > 0, local > 0) == (to_internet, True), service


@pytest.mark.usefixtures("sshd_tools")
@pytest.mark.parametrize("case", CASES)
async def test_home_assistant_flags_and_quarantines_the_camera(
    hass: HomeAssistant, house_lab: tuple[Lab, House], tmp_path: Path, case: Case
) -> None:
    lab, house = house_lab
    counters = Counters(
        start(lab, house, "internet", serve_argv(internet_addresses(), LIFETIME), "internet"),
        start(lab, house, "hass", serve_argv([HASS_IP], LIFETIME), "hass"),
    )
    if case.kind == "openwrt":
        data = ubus_entry(lab, house, tmp_path, plugin=case.busy)
    elif case.kind == "unifi":
        data = unifi_entry(lab, house, tmp_path)
    else:
        data = ssh_entry(lab, house, tmp_path)
    await play_story(lab, house, busy=case.busy)

    entry = MockConfigEntry(
        domain=DOMAIN, title="Lab router", data=data, options={CONF_SCAN_INTERVAL: SCAN_INTERVAL}
    )
    entry.add_to_hass(hass)
    with entered(house.namespaces["hass"]):
        try:
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            check_detection(hass, house, entry, case)
            await check_quarantine(hass, counters, house.devices[CAMERA].mac)
        finally:
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
