"""The ubus emulator as the lab router's `/ubus`, served inside the router namespace.

  python -m tests.lab.ubus_router --socket PATH [--keep-flows]
  python -m tests.lab.ubus_router --listen ADDR:PORT [--hosts FILE] [--plugin] [--lifetime S]
                                  [--state FILE]

Serves `UbusEmulator` over a unix socket (or HTTP on ADDR:PORT), wired to this namespace's kernel: each
request sees the real /proc/net/nf_conntrack, a committed firewall config becomes
the `inet fw4` table (fw4.py), an address written to /proc/net/nf_conntrack deletes
its conntrack entries (`--keep-flows`: ignored, the control case), and `nft --terse
--json list ruleset` is the real one. `--hosts`: a JSON file {"hints": getHostHints,
"leases": getDHCPLeases}; `--plugin`: the phonehome rpcd plugin is installed; `--state`:
the committed UCI configs persist in FILE (JSON), as /etc/config does across a reboot:
loaded at start when FILE exists (then fw4 applies them, as at boot), written on each
commit before fw4 reloads. Without it they live in memory only. Prints
"ready" once listening; exits when stdin closes, or after `--lifetime` seconds
(MAX_LIFETIME); `--lifetime 0` (scripts/lab): stdin is not watched, it runs until
SIGTERM or MAX_DETACHED seconds.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from tests.emulators.ubus import UbusEmulator

from . import fw4
from .netlab import PROC_CONNTRACK, run

MAX_LIFETIME: Final = 120.0
MAX_DETACHED: Final = 12 * 3600.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def nft_ruleset() -> str:
    """What `file exec /usr/sbin/nft --terse --json list ruleset` prints."""
    return run(["nft", "--terse", "--json", "list", "ruleset"]).stdout


def keep_flows(address: str) -> None:
    """A kernel that ignores the write: established flows survive (the control case)."""


def load_state(emulator: UbusEmulator, path: Path) -> None:
    """Take the committed configs an earlier run saved in `path`, if it saved any."""
    if path.exists():
        emulator.uci.update(json.loads(path.read_text()))


def save_state(emulator: UbusEmulator, path: Path) -> None:
    """Write the committed configs to `path` whole or not at all (a temporary file, renamed)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(emulator.uci))
    os.replace(temporary, path)


def lab_emulator(cut_flows: bool, state: Path | None = None) -> UbusEmulator:
    """An emulator whose firewall, conntrack table and nft are this namespace's; its
    committed configs persist in `state` when given."""
    emulator = UbusEmulator()
    if state is None:
        emulator.firewall_applier = fw4.apply
    else:
        load_state(emulator, state)

        def commit(sections: dict[str, dict[str, Any]]) -> None:
            save_state(emulator, state)
            fw4.apply(sections)

        emulator.firewall_applier = commit
    emulator.conntrack_writer = fw4.delete_flows if cut_flows else keep_flows
    emulator.nft_ruleset = nft_ruleset

    @web.middleware
    async def read_table(request: web.Request, handler: Handler) -> web.StreamResponse:
        emulator.proc_text = await asyncio.to_thread(Path(PROC_CONNTRACK).read_text)
        return await handler(request)

    emulator.app.middlewares.append(read_table)
    return emulator


async def serve(  # noqa: PLR0913
    socket_path: str | None,
    cut_flows: bool,
    *,
    listen: str | None = None,
    hosts: dict[str, Any] | None = None,
    plugin: bool = False,
    lifetime: float = MAX_LIFETIME,
    state: Path | None = None,
) -> None:
    """Apply the committed firewall, serve until stdin closes (or `lifetime`), clean up."""
    emulator = lab_emulator(cut_flows, state)
    emulator.plugin_installed = plugin
    if hosts is not None:
        emulator.host_hints, emulator.dhcp_leases = hosts["hints"], hosts["leases"]
    fw4.apply(emulator.uci["firewall"])
    stop = asyncio.Event()

    def read_stdin() -> None:
        if not sys.stdin.readline():
            stop.set()

    loop = asyncio.get_running_loop()
    watch_stdin = lifetime > 0
    if watch_stdin:
        loop.add_reader(sys.stdin, read_stdin)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runner = web.AppRunner(emulator.app)
    await runner.setup()
    try:
        if listen is not None:
            host, port = listen.rsplit(":", 1)
            await web.TCPSite(runner, host, int(port)).start()
        else:
            assert socket_path is not None
            await web.UnixSite(runner, socket_path).start()
        print("ready", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), lifetime if watch_stdin else MAX_DETACHED)
    finally:
        if watch_stdin:
            loop.remove_reader(sys.stdin)
        await runner.cleanup()
        await emulator.close()


def main() -> None:
    """Entry point inside the router namespace."""
    parser = argparse.ArgumentParser(description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket")
    where.add_argument("--listen", help="ADDR:PORT to serve HTTP on")
    parser.add_argument("--keep-flows", action="store_true")
    parser.add_argument("--hosts", help="JSON file: host hints and DHCP leases")
    parser.add_argument("--plugin", action="store_true", help="the rpcd plugin is installed")
    parser.add_argument("--lifetime", type=float, default=MAX_LIFETIME)
    parser.add_argument("--state", type=Path, help="JSON file: committed UCI across restarts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # request errors go to stderr
    asyncio.run(
        serve(
            args.socket,
            cut_flows=not args.keep_flows,
            listen=args.listen,
            hosts=json.loads(Path(args.hosts).read_text()) if args.hosts else None,
            plugin=args.plugin,
            lifetime=args.lifetime,
            state=args.state,
        )
    )


if __name__ == "__main__":
    main()
