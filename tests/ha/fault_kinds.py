"""Every router kind behind one face for the fault tests: its emulators, its entry, its state.

A ``RouterKind`` sets a config entry up against its emulator(s) with one device
quarantined, and offers what the fault tests do to it: inject a shared fault
(tests/emulators/faults.py), stop and start the router on the same port, reboot
it, empty and refill its connection table, drop the session in the middle of a
poll, and read the emulator's own firewall to tell whether a quarantine holds.

Kinds: OpenWrt through LuCI's getConntrackList and through the phonehome rpcd
plugin, a Linux router over SSH, a UniFi controller, and a UniFi controller
whose gateway gives the table over SSH. The demo kind runs in process (no I/O):
it has no faults to inject.
"""

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.const import (
    ATTR_ENTITY_ID,
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
    SERVICE_TURN_ON,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.phonehome.const import (
    CONF_GATEWAY,
    CONF_HOST_KEY,
    CONF_ROUTER_KIND,
    DOMAIN,
    ROUTER_KIND_OPENWRT,
)
from custom_components.phonehome.coordinator import PhoneHomeCoordinator
from custom_components.phonehome.routers import linux_poll, nft_quarantine
from custom_components.phonehome.routers.base import quarantine_name
from custom_components.phonehome.routers.linux_ssh import LinuxSshRouter
from custom_components.phonehome.routers.openwrt import OpenWrtRouter
from custom_components.phonehome.routers.openwrt_firewall import rule_holds
from custom_components.phonehome.routers.unifi import UniFiRouter
from custom_components.phonehome.routers.unifi_parse import enforces, ours
from tests.emulators.faults import Faults
from tests.emulators.ssh import SshEmulator
from tests.emulators.ubus import FIREWALL_CONFIG, UbusEmulator
from tests.emulators.unifi import UniFiEmulator, User
from tests.ha.test_config_flow_unifi import PASSWORD as UNIFI_PASSWORD, unifi_entry
from tests.ha.test_ssh import PASSWORD as SSH_PASSWORD, ssh_entry
from tests.routers.test_openwrt import HINTS, LEASES, THREE_DEVICES

TIMEOUT: Final = 0.5
"""Seconds every client of a fault test waits for one answer (the defaults are 10 to 60)."""
DELAY: Final = 3600.0
"""Seconds a delayed answer takes: past ``TIMEOUT``, and past any timer a test's clock
jump fires (the emulators cut it short when they close)."""

KINDS: Final = ("openwrt_luci", "openwrt_plugin", "linux_ssh", "unifi", "unifi_gateway")


@dataclass
class RouterKind:
    """One router kind in a fault test; ``build`` makes one from the test's emulators."""

    name: str
    entry: Callable[[HomeAssistant], MockConfigEntry]
    quarantined: str
    """The MAC quarantined at setup (the router must still block it after every fault)."""
    other: str
    """A second MAC the router knows, not quarantined."""
    faults: Faults
    """Where the shared faults go: the emulator that answers the poll's first request."""
    stop: Callable[[], Any]
    start: Callable[[], Any]
    reboot: Callable[[], None]
    enforced: Callable[[str], bool]
    empty_table: Callable[[], None]
    refill_table: Callable[[], None]
    drop_session_mid_poll: Callable[[], None]
    write: str
    """The name of the request that changes the router in a quarantine."""
    read_back: str
    """The name of the request that reads the change back."""
    change_survives_reboot: bool
    """A change the router took is in force again right after a reboot: the UniFi
    controller stores its configs; fw4 loads the firewall later in the boot (past the
    read-back), and nft's table lives in the kernel only."""
    gateway: Faults | None = None
    """The SSH gateway's faults, for a UniFi controller with one."""
    extra_stop: list[Callable[[], Any]] = field(default_factory=list)
    extra_start: list[Callable[[], Any]] = field(default_factory=list)

    def pending(self) -> bool:
        """An action queued on an emulator has not run yet."""
        return self.faults.pending or (self.gateway is not None and self.gateway.pending)


def shorten_timeouts(coordinator: PhoneHomeCoordinator) -> None:
    """Every client of the entry waits ``TIMEOUT`` seconds for an answer."""
    routers: list[Any] = [coordinator.router]
    if isinstance(coordinator.router, UniFiRouter):
        coordinator.router.api._timeout = TIMEOUT
        routers.append(coordinator.router.gateway)
    for router in routers:
        if isinstance(router, OpenWrtRouter):
            router.ubus._timeout = TIMEOUT
            router._conntrack_timeout = router._plugin_timeout = TIMEOUT
            router.firewall.verify_interval = 0.0  # the emulator's fw4 reloads by reads
            router.firewall.verify_timeout = 0.0
        elif isinstance(router, LinuxSshRouter):
            router.session.timeout = router.session.command_timeout = TIMEOUT


def ubus_kind(emulator: UbusEmulator, *, plugin: bool) -> RouterKind:
    """OpenWrt with three devices and their flows, read through LuCI or the plugin."""
    emulator.plugin_installed = plugin
    emulator.proc_text = THREE_DEVICES
    emulator.host_hints = copy.deepcopy(HINTS)
    emulator.dhcp_leases = copy.deepcopy(LEASES)

    def entry(hass: HomeAssistant) -> MockConfigEntry:
        created = MockConfigEntry(
            domain=DOMAIN,
            title="OpenWrt",
            data={
                CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT,
                CONF_HOST: "127.0.0.1",
                CONF_PORT: emulator.port,
                "ssl": False,
                "verify_ssl": True,
                CONF_USERNAME: "hass",
                CONF_PASSWORD: "hasspw",
            },
            unique_id="94:83:c4:00:00:01",
        )
        created.add_to_hass(hass)
        return created

    def enforced(mac: str) -> bool:
        name = quarantine_name(mac)
        committed = emulator.uci[FIREWALL_CONFIG].get(name)
        loaded = emulator.fw.loaded.get(name)
        return all(s is not None and rule_holds(s, mac) for s in (committed, loaded))

    def refill() -> None:
        emulator.proc_text = THREE_DEVICES

    return RouterKind(
        name="openwrt_plugin" if plugin else "openwrt_luci",
        entry=entry,
        quarantined="c0:ff:ee:00:00:01",
        other="c0:ff:ee:00:00:02",
        faults=emulator.faults,
        stop=emulator.stop,
        start=lambda: emulator.start(port=emulator.port),
        reboot=emulator.reboot,
        enforced=enforced,
        empty_table=lambda: setattr(emulator, "proc_text", ""),
        refill_table=refill,
        drop_session_mid_poll=lambda: emulator.faults.on(
            "phonehome.conntrack" if plugin else "luci.getConntrackList",
            emulator.expire_sessions,
        ),
        write="uci.commit",
        read_back="uci.get",
        change_survives_reboot=False,
    )


def nft_holds(emulator: SshEmulator, mac: str) -> bool:
    """The SSH router's kernel holds the device's element in a working inet phonehome table."""
    if not emulator.nft.exists:
        return False
    return nft_quarantine.parse_table(json.dumps(emulator.nft.listing())).holds(mac)


def ssh_table(emulator: SshEmulator) -> tuple[Callable[[], None], Callable[[], None]]:
    """Empty and refill the SSH router's conntrack table (and its count)."""
    table = emulator.files[linux_poll.CONNTRACK_PATH]
    count = emulator.files[linux_poll.COUNT_PATH]

    def empty() -> None:
        emulator.files[linux_poll.CONNTRACK_PATH] = ""
        emulator.files[linux_poll.COUNT_PATH] = "0\n"

    def refill() -> None:
        emulator.files[linux_poll.CONNTRACK_PATH] = table
        emulator.files[linux_poll.COUNT_PATH] = count

    return empty, refill


def ssh_kind(emulator: SshEmulator) -> RouterKind:
    """A Linux router over SSH: nft quarantine, /proc/net/nf_conntrack, dnsmasq leases."""
    empty, refill = ssh_table(emulator)
    return RouterKind(
        name="linux_ssh",
        entry=lambda hass: ssh_entry(hass, emulator),
        quarantined="02:77:00:00:00:02",
        other="3c:22:fb:12:34:56",
        faults=emulator.faults,
        stop=emulator.stop,
        start=lambda: emulator.start(emulator.port),
        reboot=emulator.reboot,
        enforced=lambda mac: nft_holds(emulator, mac),
        empty_table=empty,
        refill_table=refill,
        drop_session_mid_poll=lambda: emulator.faults.on("poll", emulator.drop),
        write="nft -f -",
        read_back="nft -j list",
        change_survives_reboot=False,
    )


UNIFI_CAMERA: Final = "ac:cc:de:12:34:56"


def unifi_kind(controller: UniFiEmulator, gateway: SshEmulator | None) -> RouterKind:
    """A UniFi OS console (traffic flows), or one whose gateway gives the table over SSH."""
    controller.users = {"hass": User(UNIFI_PASSWORD)}
    flow = copy.deepcopy(controller.flows[0])
    flow["source"].update(ip="192.168.0.2", mac=UNIFI_CAMERA)
    controller.flows.append(flow)
    flows = copy.deepcopy(controller.flows)
    changes: dict[str, Any] = {}
    if gateway is not None:
        changes[CONF_GATEWAY] = {
            CONF_HOST: "127.0.0.1",
            CONF_PORT: gateway.port,
            CONF_USERNAME: "root",
            CONF_PASSWORD: SSH_PASSWORD,
            CONF_HOST_KEY: gateway.public_host_key,
        }

    def enforced(mac: str) -> bool:
        name = quarantine_name(mac)
        return any(
            enforces(config, mac) and config.get("name") == name
            for config in ours(controller.configs).get(mac, [])
        )

    def empty() -> None:
        controller.flows = []

    def refill() -> None:
        controller.flows = copy.deepcopy(flows)

    def reboot() -> None:
        controller.reboot()
        if gateway is not None:
            gateway.reboot()

    kind = RouterKind(
        name="unifi" if gateway is None else "unifi_gateway",
        entry=lambda hass: unifi_entry(hass, controller, **changes),
        quarantined=UNIFI_CAMERA,
        other="00:00:00:00:00:01",
        faults=controller.faults,
        stop=controller.stop,
        start=controller.start,
        reboot=reboot,
        enforced=enforced,
        empty_table=empty,
        refill_table=refill,
        drop_session_mid_poll=lambda: controller.faults.on("traffic-flows", controller.reboot),
        write="POST /proxy/network/v2/api/site/default/object-oriented-network-config",
        read_back="GET /proxy/network/v2/api/site/default/object-oriented-network-configs",
        change_survives_reboot=True,
    )
    if gateway is not None:
        kind.empty_table, kind.refill_table = ssh_table(gateway)
        kind.drop_session_mid_poll = lambda: gateway.faults.on("poll", gateway.drop)
        kind.gateway = gateway.faults
        kind.extra_stop.append(gateway.stop)
        kind.extra_start.append(lambda: gateway.start(gateway.port))
    return kind


async def quarantine_switch_on(hass: HomeAssistant, mac: str) -> None:
    """Turn the device's quarantine switch on (the service call waits for the read-back)."""
    entity_id = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{mac}_quarantine")
    assert entity_id is not None
    await hass.services.async_call(
        Platform.SWITCH, SERVICE_TURN_ON, {ATTR_ENTITY_ID: entity_id}, blocking=True
    )


def baselines(coordinator: PhoneHomeCoordinator) -> dict[str, Any]:
    """Every device's learned baseline and learning start, as the Store keeps them."""
    return {
        mac: (device["first_seen"], device["baseline"])
        for mac, device in coordinator.analyzer.export_state()["devices"].items()
    }
