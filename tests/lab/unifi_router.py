"""The UniFi controller emulator as the lab router's UniFi OS console, inside the router namespace.

  python -m tests.lab.unifi_router --listen ADDR:PORT --directory DIR [--lifetime S]

Serves `UniFiEmulator` (UniFi OS flavour, user "admin" / "secret") over HTTPS with a
self-signed certificate written to DIR, as consoles ship. Its `stat/sta` clients are
the house's devices (their real MACs, addresses and hostnames), so the controller's
inventory matches the flows of the gateway's real conntrack table. Its object-oriented
network configs are wired to this namespace's kernel, as a UniFi gateway applies them:
after every change, each enabled config with `secure.internet.mode = TURN_OFF_INTERNET`
cuts its target MACs' internet in table `inet phonehome_unifi` (a forward chain ahead of
fw4's, so established flows stop too); deleting the config removes the rule. LAN
traffic is bridged, never forwarded, and keeps flowing.

Prints "ready" once listening; exits when stdin closes or after `--lifetime` seconds
(at most MAX_LIFETIME), removing its table.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from custom_components.phonehome.routers.unifi_parse import TURN_OFF_INTERNET, targets
from tests.emulators.unifi import UniFiEmulator, fixture
from tests.routers.conftest import self_signed

from .house import DEVICES, Device
from .netlab import LAN_BRIDGE, run

MAX_LIFETIME: Final = 120.0
TABLE: Final = "inet phonehome_unifi"
WAN: Final = "wan0"
PRIORITY: Final = "filter - 10"
"""Ahead of fw4's forward chain (priority filter), which accepts established flows first."""


def client(device: Device) -> dict[str, Any]:
    """A wired stat/sta client for a house device, in the fixture's shape."""
    return {
        **fixture("aiounifi/wired_client.json"),
        "_id": f"lab{device.mac.replace(':', '')}",
        "mac": device.mac,
        "ip": device.ip,
        "hostname": device.hostname,
        "name": device.hostname,
        "oui": "",
        "is_wired": True,
        "blocked": False,
    }


def cut_macs(configs: list[dict[str, Any]]) -> set[str]:
    """The MACs whose internet the enabled TURN_OFF_INTERNET configs cut."""
    cut: set[str] = set()
    for config in configs:
        internet = (config.get("secure") or {}).get("internet") or {}
        if config.get("enabled") and internet.get("mode") == TURN_OFF_INTERNET:
            cut |= targets(config)
    return cut


def ruleset(macs: set[str]) -> str:
    """Table `inet phonehome_unifi`, replaced in one `nft -f` transaction."""
    addresses = {device.mac: device.ip for device in DEVICES}
    rules = "".join(
        f"    iifname {LAN_BRIDGE} ether saddr {mac} oifname {WAN} drop\n"
        + (f"    iifname {WAN} ip daddr {addresses[mac]} drop\n" if mac in addresses else "")
        for mac in sorted(macs)
    )
    return (
        f"table {TABLE} {{}}\ndelete table {TABLE}\n"
        f"table {TABLE} {{\n  chain forward {{\n"
        f"    type filter hook forward priority {PRIORITY}; policy accept;\n"
        f"{rules}  }}\n}}\n"
    )


class LabController(UniFiEmulator):
    """The emulator whose OON configs are enforced by this namespace's nftables."""

    def __init__(self) -> None:
        super().__init__(clients=[client(device) for device in DEVICES], configs=[])
        self.applied: set[str] | None = None

    def apply(self) -> None:
        macs = cut_macs(self.configs)
        if macs != self.applied:
            run(["nft", "-f", "-"], stdin=ruleset(macs))
            self.applied = macs

    def _oon(self, method: str, path: str, body: Any) -> web.StreamResponse:
        response = super()._oon(method, path, body)
        if method != "GET":
            self.apply()
        return response

    async def serve_on(self, host: str, port: int, context: ssl.SSLContext) -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        return runner


async def serve(listen: str, directory: Path, lifetime: float) -> None:
    """Serve until stdin closes (or `lifetime`); remove the table at the end."""
    controller = LabController()
    controller.apply()
    host, port = listen.rsplit(":", 1)
    stop = asyncio.Event()

    def read_stdin() -> None:
        if not sys.stdin.readline():
            stop.set()

    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin, read_stdin)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runner = await controller.serve_on(host, int(port), self_signed(directory))
    try:
        print("ready", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(lifetime, MAX_LIFETIME))
    finally:
        loop.remove_reader(sys.stdin)
        await runner.cleanup()
        await controller.close()
        run(["nft", "delete", "table", *TABLE.split()], check=False)


def main() -> None:
    """Entry point inside the router namespace."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="ADDR:PORT to serve HTTPS on")
    parser.add_argument("--directory", required=True, help="where the certificate is written")
    parser.add_argument("--lifetime", type=float, default=MAX_LIFETIME)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # request errors go to stderr
    asyncio.run(serve(args.listen, Path(args.directory), args.lifetime))


if __name__ == "__main__":
    main()
