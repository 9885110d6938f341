"""The ubus emulator as the lab router's `/ubus`, served inside the router namespace.

  python -m tests.lab.ubus_router --socket PATH [--keep-flows]

Serves `UbusEmulator` over a unix socket, wired to this namespace's kernel: each
request sees the real /proc/net/nf_conntrack, a committed firewall config becomes
the `inet fw4` table (fw4.py), an address written to /proc/net/nf_conntrack deletes
its conntrack entries (`--keep-flows`: ignored, the control case), and `nft --terse
--json list ruleset` is the real one. Prints "ready" once listening; exits when stdin
closes, or after MAX_LIFETIME seconds.
"""

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from tests.emulators.ubus import UbusEmulator

from . import fw4
from .netlab import PROC_CONNTRACK, run

MAX_LIFETIME: Final = 120.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def nft_ruleset() -> str:
    """What `file exec /usr/sbin/nft --terse --json list ruleset` prints."""
    return run(["nft", "--terse", "--json", "list", "ruleset"]).stdout


def keep_flows(address: str) -> None:
    """A kernel that ignores the write: established flows survive (the control case)."""


def lab_emulator(cut_flows: bool) -> UbusEmulator:
    """An emulator whose firewall, conntrack table and nft are this namespace's."""
    emulator = UbusEmulator()
    emulator.firewall_applier = fw4.apply
    emulator.conntrack_writer = fw4.delete_flows if cut_flows else keep_flows
    emulator.nft_ruleset = nft_ruleset

    @web.middleware
    async def read_table(request: web.Request, handler: Handler) -> web.StreamResponse:
        emulator.proc_text = await asyncio.to_thread(Path(PROC_CONNTRACK).read_text)
        return await handler(request)

    emulator.app.middlewares.append(read_table)
    return emulator


async def serve(socket_path: str, cut_flows: bool) -> None:
    """Apply the initial firewall, serve until stdin closes (or MAX_LIFETIME), clean up."""
    emulator = lab_emulator(cut_flows)
    fw4.apply(emulator.uci["firewall"])
    stdin_closed = asyncio.Event()

    def read_stdin() -> None:
        if not sys.stdin.readline():
            stdin_closed.set()

    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin, read_stdin)
    runner = web.AppRunner(emulator.app)
    await runner.setup()
    try:
        await web.UnixSite(runner, socket_path).start()
        print("ready", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stdin_closed.wait(), MAX_LIFETIME)
    finally:
        loop.remove_reader(sys.stdin)
        await runner.cleanup()
        await emulator.close()


def main() -> None:
    """Entry point inside the router namespace."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--keep-flows", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # request errors go to stderr
    asyncio.run(serve(args.socket, cut_flows=not args.keep_flows))


if __name__ == "__main__":
    main()
