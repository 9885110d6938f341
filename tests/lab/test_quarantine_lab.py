"""Quarantine through the integration's OpenWrt client, enforced by a real kernel.

The ubus emulator runs inside the lab router's namespace (ubus_router.py): its
committed firewall becomes a real fw4-shaped nftables table (fw4.py), and its
/proc/net/nf_conntrack write a real `conntrack -D`. A device keeps an echoed UDP
stream to an internet host (established, ASSURED) and another to a LAN host; the
hosts count what reaches them.
"""

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import pytest

from custom_components.phonehome.core.conntrack import parse_proc
from custom_components.phonehome.routers.base import LanDevice, QuarantineState, RouterError
from custom_components.phonehome.routers.openwrt import OpenWrtRouter

from .netlab import PROC_CONNTRACK, TRAFFIC_SCRIPT, Helper, HomeLab, Lab, LabError, Namespace

pytestmark = pytest.mark.lab

REPO_ROOT: Final = Path(__file__).parents[2]
SCRIPT: Final = str(TRAFFIC_SCRIPT)
ROUTER_HOST: Final = "router.lab"
WINDOW: Final = 1.5
"""Seconds the hosts' counts are watched."""
IN_FLIGHT: Final = 0.2
"""Seconds for datagrams already on their way when a change returns."""
ASSURED_TIMEOUT: Final = 5.0
"""The kernel marks a UDP flow ASSURED once it has lived 2 s with replies."""


@dataclass(frozen=True)
class Stream:
    """A UDP stream from the device and the host counting what reaches it."""

    host: str
    counter: Helper

    def received(self) -> int:
        """Datagrams the host has received so far."""
        return int(self.counter.ask())


def start_stream(lab: Lab, home: HomeLab, host_ns: Namespace, *addresses: str) -> Stream:
    """Serve (echo, count, accept TCP) on the addresses, then stream from the device to the first."""
    host = addresses[0]
    counter = lab.start(host_ns, [sys.executable, SCRIPT, "serve", *addresses], f"serve {host}")
    if counter.read_line().strip() != "ready":
        raise LabError(f"the server on {host} did not start: {counter.stop()}")
    src = home.net.device_v6 if ":" in host else home.net.device_v4
    lab.start(home.net.device, [sys.executable, SCRIPT, "stream", src, host], f"to {host}")
    return Stream(host, counter)


async def rises(streams: list[Stream], seconds: float = WINDOW) -> list[int]:
    """How many more datagrams each host received over `seconds`."""
    before = [s.received() for s in streams]
    await asyncio.sleep(seconds)
    return [s.received() - count for s, count in zip(streams, before, strict=True)]


async def wait_assured(router: Namespace, src: str, dst: str) -> None:
    """Wait until the router tracks the stream as an established, ASSURED flow."""
    deadline = time.monotonic() + ASSURED_TIMEOUT
    while time.monotonic() < deadline:
        flows = parse_proc(router.read_file(PROC_CONNTRACK)).flows
        if any(f.src == src and f.dst == dst and f.assured for f in flows):
            return
        await asyncio.sleep(0.1)
    raise LabError(f"no ASSURED flow {src} -> {dst} within {ASSURED_TIMEOUT:g} s")


async def connect(home: HomeLab, host: str) -> str:
    """A new TCP connection from the device to `host`: connected, refused, timeout..."""
    src = home.net.device_v6 if ":" in host else home.net.device_v4
    argv = (sys.executable, SCRIPT, "connect", src, host)
    return (await asyncio.to_thread(home.net.device.run, *argv)).stdout.strip()


@contextlib.asynccontextmanager
async def openwrt_router(
    lab: Lab, home: HomeLab, *, cut: bool = True
) -> AsyncIterator[OpenWrtRouter]:
    """The integration's OpenWrtRouter, connected to the emulator in the router namespace."""
    with tempfile.TemporaryDirectory(prefix="phl-ubus-") as directory:
        socket_path = f"{directory}/ubus.sock"
        argv = [sys.executable, "-m", "tests.lab.ubus_router", "--socket", socket_path]
        server = lab.start(
            home.net.router, argv + ([] if cut else ["--keep-flows"]), "ubus", REPO_ROOT
        )
        try:
            if server.read_line().strip() != "ready":
                raise LabError(f"the router's ubus did not start: {server.stop()}")
            connector = aiohttp.UnixConnector(path=socket_path)
            async with aiohttp.ClientSession(connector=connector) as session:
                router = OpenWrtRouter(session, ROUTER_HOST, 80, "root", "secret", timeout=5.0)
                await router.connect()
                try:
                    yield router
                finally:
                    await router.close()
        except RouterError as err:
            err.add_note(f"the router's ubus: {server.stop()}")
            raise
        finally:
            server.stop()


async def state(router: OpenWrtRouter, mac: str) -> QuarantineState | None:
    return (await router.snapshot()).quarantined.get(mac)


def device_of(home: HomeLab) -> LanDevice:
    return LanDevice(mac=home.device_mac, ipv4=(home.net.device_v4,), ipv6=(home.net.device_v6,))


async def streams_of(lab: Lab, home: HomeLab) -> tuple[Stream, Stream]:
    """An ASSURED stream to the first internet host (served on IPv4 and IPv6), one to the LAN host."""
    net = home.net
    internet = start_stream(lab, home, net.internet, net.internet_v4[0], net.internet_v6[0])
    local = start_stream(lab, home, home.lan_host, home.lan_host_v4)
    await wait_assured(home.net.router, home.net.device_v4, internet.host)
    return internet, local


async def test_quarantine_stops_an_established_stream_and_release_restores_it(
    home_lab: tuple[Lab, HomeLab],
) -> None:
    lab, home = home_lab
    internet, local = await streams_of(lab, home)
    servers = (home.net.internet_v4[0], home.net.internet_v6[0])
    assert [await connect(home, server) for server in servers] == ["connected"] * 2
    async with openwrt_router(lab, home) as router:
        record = await router.quarantine(device_of(home))
        await asyncio.sleep(IN_FLIGHT)
        assert record.flows_cut
        to_internet, to_lan = await rises([internet, local])
        assert to_internet == 0
        assert to_lan > 0
        assert [await connect(home, server) for server in servers] == ["refused"] * 2
        assert await connect(home, home.lan_host_v4) == "connected"

        first = await state(router, home.device_mac)
        await asyncio.sleep(0.5)
        second = await state(router, home.device_mac)
        assert first is not None
        assert second is not None
        assert first.enforced
        assert second.enforced
        assert 0 < (first.blocked_packets or 0) < (second.blocked_packets or 0)

        await router.release(record)
        assert await state(router, home.device_mac) is None
        await asyncio.sleep(IN_FLIGHT)
        assert (await rises([internet]))[0] > 0
        assert [await connect(home, server) for server in servers] == ["connected"] * 2


async def test_the_rule_alone_leaves_an_established_stream_flowing(
    home_lab: tuple[Lab, HomeLab],
) -> None:
    """Control: without deleting conntrack entries, fw4 keeps accepting the live flow."""
    lab, home = home_lab
    internet, _ = await streams_of(lab, home)
    async with openwrt_router(lab, home, cut=False) as router:
        await router.quarantine(device_of(home))
        await asyncio.sleep(IN_FLIGHT)
        assert (await rises([internet]))[0] > 0
        assert await connect(home, internet.host) == "refused"
        quarantined = await state(router, home.device_mac)
        assert quarantined is not None
        assert quarantined.enforced
