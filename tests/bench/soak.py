"""A 24-hour soak with simulated time: ``python -m tests.bench.soak`` (``scripts/bench soak``).

The integration is set up in a real Home Assistant instance against the ubus
emulator (500 devices listed, no table). Then 8,640 polls 10 s apart (simulated
time: each poll's snapshot is taken 10 s after the last; nothing waits for the
clock) fold a churning table into the coordinator's own tracker and analyzer:

- every ``full_every``-th poll (and the first and last) is a full poll through
  Home Assistant: ``coordinator.async_refresh()`` with the router's ``snapshot``
  answering the churned table, so analysis, events, quarantine upkeep and every
  entity's state write run as in production; then the Store is written at
  once (``coordinator.async_save_now``) in place of the delayed write the poll
  asked for, which would otherwise land in wall time, out of step with the soak;
- the others drive what a poll does beyond the router read and the entity
  writes directly: the coordinator's executor job (``coordinator._analyse``, in
  the executor) and, every ``store_every``-th poll and at every hour, the
  Store's serialisation of ``coordinator._data_to_save()`` (Home Assistant's JSON
  encoder, as ``Store`` writes it; the integration writes about once a poll, as
  ``SAVE_DELAY`` equals the 10 s poll, but only the file's size is checked here).

The table: about ``flows_per_device`` flows per device at any time; each flow
lives 1 to 60 polls; one new flow in ``new_share`` goes to a destination never
seen before (a fresh address, often in a fresh /24, port drawn from a realistic
mix), the others to the device's usual hosts and a shared CDN pool.

Checked: the integration's retained memory (the tracker's and analyzer's object
graph, walked with ``gc.get_referents``) after the last poll within 10 % of that
after the first simulated hour, and the Store file under 5 MB at every hour.
"""

# Our package first, as tests/conftest.py explains.
import custom_components.phonehome  # noqa: F401  # isort: skip

import argparse
import asyncio
import gc
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from typing import Any, Final

import orjson
from homeassistant.core import HomeAssistant
from homeassistant.helpers.json import json_bytes

from custom_components.phonehome import coordinator as coordinator_module
from custom_components.phonehome.core.addresses import AddressScope
from custom_components.phonehome.core.model import Flow
from custom_components.phonehome.routers.base import LanDevice, Snapshot
from custom_components.phonehome.store import STORAGE_MINOR_VERSION, STORAGE_VERSION

POLLS: Final = 8640
"""24 hours at 10 s."""
INTERVAL: Final = timedelta(seconds=10)
HOUR: Final = 360
"""Polls in one simulated hour."""
DEVICES: Final = 500
MEMORY_GROWTH: Final = 0.10
STORE_LIMIT: Final = 5 * 1000 * 1000
MB: Final = 1 << 20
START: Final = datetime(2026, 1, 5, tzinfo=UTC)
_PORTS: Final = ((6, 443), (6, 443), (6, 443), (17, 443), (6, 80), (6, 8883), (17, 123), (6, 0))


def device_mac(index: int) -> str:
    """The MAC of device ``index``."""
    return f"02:00:00:00:{index // 256:02x}:{index % 256:02x}"


def device_ip(index: int) -> str:
    """The LAN IPv4 of device ``index`` (192.168.1.10 up, into 192.168.2/3)."""
    return str(IPv4Address("192.168.1.10") + index)


def hints_and_leases(devices: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``getHostHints`` and ``getDHCPLeases`` of the soak's devices."""
    hints = {
        device_mac(i): {"ipaddrs": [device_ip(i)], "ip6addrs": [], "name": f"soak-{i}"}
        for i in range(devices)
    }
    leases = {
        "dhcp_leases": [
            {"macaddr": mac, "ipaddr": hint["ipaddrs"][0], "hostname": hint["name"]}
            for mac, hint in hints.items()
        ],
        "dhcp6_leases": [],
    }
    return hints, leases


@dataclass
class Churn:
    """The churning table: flows keyed by (device, destination, port), each with an expiry."""

    devices: int = DEVICES
    flows_per_device: int = 12
    new_share: float = 0.05
    seed: int = 1
    rng: random.Random = field(init=False)
    active: dict[tuple[int, str, int, int], tuple[int, Flow]] = field(default_factory=dict)
    fresh: int = 0
    """Destinations never seen before, handed out so far."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.cdn = [self._address() for _ in range(400)]
        self.usual = [[self._address() for _ in range(8)] for _ in range(self.devices)]

    def _address(self) -> str:
        """A fresh public IPv4 address (a new /24 most times)."""
        self.fresh += 1
        n = self.fresh
        return f"{23 + n % 150}.{(n // 150) % 250 + 1}.{(n // 37500) % 250}.{n % 200 + 20}"

    def _flow(self, device: int, poll: int) -> tuple[tuple[int, str, int, int], tuple[int, Flow]]:
        rng = self.rng
        roll = rng.random()
        if roll < self.new_share:
            dst = self._address()
        elif roll < 0.6:
            dst = rng.choice(self.usual[device])
        else:
            dst = rng.choice(self.cdn)
        protocol, port = rng.choice(_PORTS)
        port = port or rng.randint(1024, 65535)
        replied = rng.random() > 0.03
        sent = rng.randint(100, 200_000)
        flow = Flow(
            family=4,
            protocol=protocol,
            src=device_ip(device),
            dst=dst,
            sport=rng.randint(32768, 60999),
            dport=port,
            src_scope=AddressScope.LAN,
            dst_scope=AddressScope.WAN,
            replied=replied,
            assured=replied,
            state="ESTABLISHED" if protocol == 6 else None,
            timeout=rng.randint(10, 7440),
            total_packets=sent // 500 + 2,
            total_bytes=sent,
            reply_packets=sent // 1000 + 1 if replied else 0,
            reply_bytes=sent // 2 if replied else 0,
            offloaded=False,
            mark=0,
            zone=0,
            secctx=None,
        )
        return (device, dst, protocol, port), (poll + rng.randint(1, 60), flow)

    def step(self, poll: int) -> list[Flow]:
        """The table at ``poll``: expired flows gone, the table topped up with new ones."""
        self.active = {key: value for key, value in self.active.items() if value[0] > poll}
        want = self.devices * self.flows_per_device
        while len(self.active) < want:
            key, value = self._flow(self.rng.randrange(self.devices), poll)
            self.active[key] = value
        return [flow for _, flow in self.active.values()]


def deep_size(*roots: object) -> int:
    """Bytes of the objects reachable from ``roots`` (types, modules and functions aside)."""
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    skip = (type, type(sys), type(deep_size))
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, skip):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        stack.extend(gc.get_referents(item))
    return total


def store_bytes(coordinator: Any, key: str) -> int:
    """Bytes of the Store file the coordinator's data makes (as ``Store._write_data``)."""
    data = {
        "version": STORAGE_VERSION,
        "minor_version": STORAGE_MINOR_VERSION,
        "key": key,
        "data": coordinator._data_to_save(),
    }
    return len(json_bytes(data))


@dataclass
class Checkpoint:
    """The state after one simulated hour."""

    hour: int
    memory_mb: float
    store_mb: float
    destinations: int
    """Destinations the tracker remembers, all devices."""
    baseline: int
    """Baseline keys the analyzer remembers, all devices."""
    baseline_dropped: int
    """Baseline keys its total cap dropped so far, least recently learned first."""
    fresh: int
    """Never-seen destinations the table has handed out so far."""
    wall_s: float


@dataclass
class SoakResult:
    """What the soak measured."""

    polls: int
    full_polls: int
    devices: int
    flows: int
    checkpoints: list[Checkpoint]
    memory_growth: float
    """Memory after the last poll / after the first hour - 1."""
    store_max_mb: float
    full_poll_ms: float
    """Mean wall time of a full poll through Home Assistant."""
    direct_poll_ms: float
    """Mean wall time of a direct poll (executor job and serialisation)."""
    wall_s: float
    missed: list[str]


async def run(  # noqa: PLR0913
    hass: HomeAssistant,
    entry: Any,
    *,
    polls: int = POLLS,
    full_every: int = 60,
    devices: int = DEVICES,
    flows_per_device: int = 12,
    store_every: int = 30,
    progress: bool = False,
) -> SoakResult:
    """Soak the set-up entry's coordinator for ``polls`` polls."""
    coordinator = entry.runtime_data.coordinator
    router = coordinator.router
    first: Snapshot = await router.snapshot()
    lan = {device_mac(i): LanDevice(device_mac(i), (device_ip(i),), ()) for i in range(devices)}
    first = replace(first, devices=lan)
    churn = Churn(devices=devices, flows_per_device=flows_per_device)
    current: dict[str, Snapshot] = {}

    async def snapshot() -> Snapshot:
        return current["snapshot"]

    router.snapshot = snapshot
    key = coordinator.store.key
    checkpoints: list[Checkpoint] = []
    full_times: list[float] = []
    direct_times: list[float] = []
    store_max = 0
    started = time.perf_counter()
    for poll in range(polls):
        flows = churn.step(poll)
        now = START + poll * INTERVAL
        begun = time.perf_counter()
        if poll % full_every == 0 or poll == polls - 1:
            current["snapshot"] = replace(
                first, taken_at=now, flows=flows, conntrack_count=len(flows)
            )
            await coordinator.async_refresh()
            await hass.async_block_till_done()
            if not coordinator.last_update_success:
                raise AssertionError(f"poll {poll} failed: {coordinator.last_exception}")
            # The poll asked for a delayed Store write, due 10 s of wall time later:
            # write now instead, so the file follows the simulated clock.
            await coordinator.async_save_now()
            full_times.append(time.perf_counter() - begun)
        else:
            async with coordinator._lock:
                *_, coordinator._analyzer_state = await hass.async_add_executor_job(
                    coordinator_module._analyse,
                    coordinator.tracker,
                    coordinator.analyzer,
                    flows,
                    lan,
                    now,
                    [],
                )
            if poll % store_every == 0:
                store_max = max(store_max, store_bytes(coordinator, key))
            direct_times.append(time.perf_counter() - begun)
        if (poll + 1) % HOUR == 0 or poll == polls - 1:
            gc.collect()
            size = store_bytes(coordinator, key)
            store_max = max(store_max, size)
            checkpoint = Checkpoint(
                hour=(poll + 1) // HOUR,
                memory_mb=round(deep_size(coordinator.tracker, coordinator.analyzer) / MB, 2),
                store_mb=round(size / MB, 3),
                destinations=coordinator.tracker.destinations,
                baseline=coordinator.analyzer.baseline_entries,
                baseline_dropped=coordinator.analyzer.baseline_dropped,
                fresh=churn.fresh,
                wall_s=round(time.perf_counter() - started, 1),
            )
            checkpoints.append(checkpoint)
            if progress:
                print(checkpoint, file=sys.stderr, flush=True)
    first_hour = checkpoints[0].memory_mb
    growth = checkpoints[-1].memory_mb / first_hour - 1
    missed = []
    if polls >= 2 * HOUR and growth > MEMORY_GROWTH:
        missed.append(
            f"memory after the last poll {checkpoints[-1].memory_mb:.1f} MB is "
            f"{growth:+.0%} of the first hour's {first_hour:.1f} MB (limit +10 %)"
        )
    if store_max >= STORE_LIMIT:
        missed.append(f"Store file reached {store_max / MB:.2f} MB (limit 5 MB)")
    return SoakResult(
        polls=polls,
        full_polls=len(full_times),
        devices=devices,
        flows=devices * flows_per_device,
        checkpoints=checkpoints,
        memory_growth=round(growth, 4),
        store_max_mb=round(store_max / MB, 3),
        full_poll_ms=round(1000 * sum(full_times) / len(full_times), 1),
        direct_poll_ms=round(1000 * sum(direct_times) / max(1, len(direct_times)), 1),
        wall_s=round(time.perf_counter() - started, 1),
        missed=missed,
    )


async def _standalone(args: argparse.Namespace) -> SoakResult:
    from tests.bench.harness import entry_for, home_assistant
    from tests.emulators.ubus import UbusEmulator

    emulator = UbusEmulator()
    emulator.host_hints, emulator.dhcp_leases = hints_and_leases(args.devices)
    await emulator.start()
    try:
        async with home_assistant() as hass:
            entry = entry_for(emulator.port, {"scan_interval": 3600})
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            result = await run(
                hass,
                entry,
                polls=args.polls,
                full_every=args.full_every,
                devices=args.devices,
                flows_per_device=args.flows_per_device,
                progress=True,
            )
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            return result
    finally:
        await emulator.close()


def _iter_table(result: SoakResult) -> Iterator[str]:
    yield (
        f"{'hour':>5}{'memory MB':>11}{'store MB':>10}{'destinations':>14}{'baseline':>10}"
        f"{'dropped':>10}{'new hosts':>11}{'wall s':>8}"
    )
    for c in result.checkpoints:
        yield (
            f"{c.hour:>5}{c.memory_mb:>11.2f}{c.store_mb:>10.3f}{c.destinations:>14,}"
            f"{c.baseline:>10,}{c.baseline_dropped:>10,}{c.fresh:>11,}{c.wall_s:>8.0f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 1 when a target is missed."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench soak", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--polls", type=int, default=POLLS)
    parser.add_argument("--full-every", type=int, default=60, help="a full poll every N polls")
    parser.add_argument("--devices", type=int, default=DEVICES)
    parser.add_argument("--flows-per-device", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(_standalone(args))
    if args.json:
        sys.stdout.write(orjson.dumps(asdict(result), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(
            f"Phone Home Guard soak: {result.polls:,} polls at 10 s (simulated), "
            f"{result.devices} devices, ~{result.flows:,} flows; {result.full_polls} full polls "
            f"through Home Assistant ({result.full_poll_ms} ms each), the others direct "
            f"({result.direct_poll_ms} ms each); {result.wall_s:.0f} s"
        )
        print("\n".join(_iter_table(result)))
        print(
            f"memory growth after hour 1: {result.memory_growth:+.1%} (limit +10 %); "
            f"largest Store file {result.store_max_mb:.2f} MB (limit 5 MB)"
        )
        print("TARGETS MISSED: " + "; ".join(result.missed) if result.missed else "Targets met.")
    return 1 if result.missed else 0


if __name__ == "__main__":
    sys.exit(main())
