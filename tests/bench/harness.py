"""A real Home Assistant instance with the integration set up against the ubus emulator.

Used by ``tests.bench.pipeline`` (and the soak's script entry): the emulator runs
in a child process (``python -m tests.bench.harness ENTRIES DEVICES SEED``),
so its JSON encoding and the rpcd plugin it runs never share Home Assistant's
event loop; Home Assistant is started the way pytest-homeassistant-custom-component
starts it for a test (``async_test_home_assistant``), in a temporary config dir.
"""

# Our package first, as tests/conftest.py explains.
import custom_components.phonehome  # noqa: F401  # isort: skip

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from unittest.mock import patch

from aiohttp.resolver import ThreadedResolver
from homeassistant import loader
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.phonehome.const import CONF_ROUTER_KIND, DOMAIN, ROUTER_KIND_OPENWRT
from tests.bench import synthetic

REPO: Final = Path(__file__).resolve().parents[2]
PROBE_PERIOD: Final = 0.001
"""The loop-lag probe sleeps this long, then records how late it woke."""


def hints_and_leases(devices: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``getHostHints`` and ``getDHCPLeases`` naming every device of the synthetic table."""
    by_mac: dict[str, dict[str, Any]] = {}
    for address, mac in synthetic.lan_owners(devices, seed).items():
        hint = by_mac.setdefault(mac, {"ipaddrs": [], "ip6addrs": [], "name": f"dev-{mac[-5:]}"})
        hint["ip6addrs" if ":" in address else "ipaddrs"].append(address)
    leases = {
        "dhcp_leases": [
            {"macaddr": mac, "ipaddr": hint["ipaddrs"][0], "hostname": hint["name"]}
            for mac, hint in by_mac.items()
        ],
        "dhcp6_leases": [],
    }
    return by_mac, leases


async def serve(entries: int, devices: int, seed: int) -> None:
    """Run the emulator (rpcd plugin installed) serving the synthetic table; print its port."""
    from tests.emulators.ubus import UbusEmulator

    emulator = UbusEmulator(plugin_installed=True)
    emulator.host_hints, emulator.dhcp_leases = hints_and_leases(devices, seed)
    emulator.proc_text = synthetic.proc_text(entries, devices, seed)
    synthetic.table.cache_clear()
    await emulator.start()
    print(emulator.port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await emulator.close()


@contextlib.contextmanager
def emulator_process(entries: int, devices: int, seed: int) -> Any:
    """The emulator in a child process; yields its port."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.harness", str(entries), str(devices), str(seed)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"emulator did not start: {line!r}")
        yield int(line)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@dataclass
class GcPauses:
    """The longest garbage collection (any generation, any thread) while installed."""

    longest: float = 0.0
    _started: float = 0.0

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._started)

    def __enter__(self) -> "GcPauses":
        self.longest = 0.0
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)


@dataclass
class LagProbe:
    """A task that sleeps 1 ms in a loop and records the worst lateness (seconds)."""

    worst: float = 0.0
    wakes: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(PROBE_PERIOD)
            late = loop.time() - before - PROBE_PERIOD
            self.wakes += 1
            self.worst = max(self.worst, late)

    def start(self) -> None:
        """Start probing (resets the worst)."""
        self.worst, self.wakes = 0.0, 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> float:
        """Stop probing; the worst lateness seen.

        Waits a little first: a wake-up that a long stall delayed is recorded only
        when the probe runs again, which may be after the poll returned.
        """
        await asyncio.sleep(10 * PROBE_PERIOD)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.worst


def entry_for(port: int, options: dict[str, Any] | None = None) -> MockConfigEntry:
    """The config entry tests/ha/conftest.py makes, for the emulator on ``port``."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="OpenWrt",
        data={
            CONF_ROUTER_KIND: ROUTER_KIND_OPENWRT,
            "host": "127.0.0.1",
            "port": port,
            "ssl": False,
            "verify_ssl": True,
            "username": "root",
            "password": "secret",
        },
        options=options or {},
        unique_id="94:83:c4:00:00:01",
    )


@contextlib.asynccontextmanager
async def home_assistant() -> AsyncIterator[HomeAssistant]:
    """A test Home Assistant in a temporary config dir, custom integrations enabled."""
    with (
        tempfile.TemporaryDirectory(prefix="phonehome-bench-") as config_dir,
        # As the plugin's mock_zeroconf_resolver: no zeroconf in a test instance.
        patch(
            "homeassistant.helpers.aiohttp_client._async_make_resolver",
            return_value=ThreadedResolver(),
        ),
    ):
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)  # enable_custom_integrations
            yield hass


@dataclass
class Timed:
    """Seconds of each call of a wrapped function."""

    seconds: list[float] = field(default_factory=list)

    def wrap[**P, R](self, function: Callable[P, R]) -> Callable[P, R]:
        """``function``, timed."""

        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - started)

        return timed


if __name__ == "__main__":
    asyncio.run(serve(*(int(arg) for arg in sys.argv[1:4])))
