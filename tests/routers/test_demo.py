"""The demo network: deterministic, realistic enough for every finding, quarantine that works."""

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.phonehome.core.analyzer import (
    Analyzer,
    AnalyzerSettings,
    owners_from,
)
from custom_components.phonehome.core.geo import load_country_source
from custom_components.phonehome.core.model import Flow
from custom_components.phonehome.routers.base import LanDevice, quarantine_name
from custom_components.phonehome.routers.demo import HOME, ROUTER_IP, DemoRouter

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLL = timedelta(seconds=30)
BY_NAME = {demo.device.name: demo.device for demo in HOME}
CAMERA = BY_NAME["Front door camera"]
LAPTOP = BY_NAME["Laptop"]
MONITOR = BY_NAME["Baby monitor"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_same_seed_and_time_give_the_same_table(clock: Clock) -> None:
    first, second, other = DemoRouter(7, clock), DemoRouter(7, clock), DemoRouter(8, clock)
    clock.now = T0 + timedelta(minutes=5)

    table = (await first.snapshot()).flows

    assert table == (await second.snapshot()).flows
    assert table != (await other.snapshot()).flows


async def test_the_table_is_what_a_kernel_prints(clock: Clock) -> None:
    router = DemoRouter(1, clock)
    clock.now = T0 + timedelta(minutes=5)

    snapshot = await router.snapshot()

    assert snapshot.parse_stats is not None
    assert not snapshot.parse_stats.skipped
    assert snapshot.conntrack_count == len(snapshot.flows)
    assert snapshot.capabilities.byte_counters
    assert snapshot.capabilities.quarantine
    assert {flow.src for flow in snapshot.flows} <= {
        address for demo in HOME for address in (*demo.device.ipv4, *demo.device.ipv6)
    }
    assert any(flow.family == 6 for flow in snapshot.flows)


async def test_the_foscam_camera_retries_from_fresh_ports_unanswered(clock: Clock) -> None:
    router = DemoRouter(1, clock)
    clock.now = T0 + timedelta(minutes=5)

    camera = [f for f in (await router.snapshot()).flows if f.src == CAMERA.ipv4[0]]

    assert {f.dport for f in camera} == {10001}
    assert len({f.dst for f in camera}) == 4
    assert all(f.replied is False for f in camera)
    # a round every ~4 s, each entry living 30 s: about 7 entries per host
    assert 20 <= len(camera) <= 36
    for host in {f.dst for f in camera}:
        ports = [f.sport for f in camera if f.dst == host]
        assert len(ports) >= 5
        assert len(set(ports)) == len(ports)


async def test_every_phone_home_story_is_found(clock: Clock) -> None:
    router = DemoRouter(1, clock)
    policies = {demo.device.mac: "monitor" for demo in HOME}
    analyzer = Analyzer(
        AnalyzerSettings(policies=policies), country_of=load_country_source().lookup
    )
    for _ in range(10):
        clock.now += POLL
        snapshot = await router.snapshot()
        result = analyzer.update(
            snapshot.flows, owners_from(snapshot.devices.values()), snapshot.taken_at
        )

    kinds = {
        snapshot.devices[mac].name: {finding.kind for finding in report.findings}
        for mac, report in result.devices.items()
    }
    assert kinds == {
        "Front door camera": {"signature", "p2p_fanout", "unreplied_attempts"},
        "Baby monitor": {"signature", "p2p_fanout"},
        "Backyard DVR": {"signature", "shared_p2p_server"},
        "Smart plug": {"signature", "shared_p2p_server"},
        "Garage NVR": {"signature", "dns_bypass"},
        "Living room TV": set(),
        "Laptop": set(),
        "Phone": set(),
    }
    nvr = result.devices[BY_NAME["Garage NVR"].mac].findings
    bypass = next(finding for finding in nvr if finding.kind == "dns_bypass")
    assert {(d.ip, d.country) for d in bypass.destinations} == {
        ("114.114.114.114", "CN"),
        ("8.8.8.8", "US"),
    }


async def test_quarantine_stops_internet_at_once_and_keeps_the_lan(clock: Clock) -> None:
    router = DemoRouter(1, clock)
    clock.now = T0 + timedelta(minutes=5)

    record = await router.quarantine(LAPTOP)
    snapshot = await router.snapshot()

    assert record.name == quarantine_name(LAPTOP.mac)
    assert record.addresses == LAPTOP.ipv4 + LAPTOP.ipv6
    assert record.flows_cut
    laptop = [f for f in snapshot.flows if f.src in record.addresses]
    assert {f.dst for f in laptop} == {ROUTER_IP}  # its DNS to the router still flows
    assert snapshot.quarantined[LAPTOP.mac].enforced
    assert set(snapshot.quarantined) == {LAPTOP.mac}


async def test_blocked_attempts_rise_while_quarantined(clock: Clock) -> None:
    router = DemoRouter(1, clock)
    await router.quarantine(CAMERA)
    clock.now += timedelta(seconds=1)
    again = await router.quarantine(CAMERA)  # idempotent: the block keeps its start
    counts = []
    for _ in range(3):
        clock.now += POLL
        counts.append((await router.snapshot()).quarantined[CAMERA.mac].blocked_packets)

    assert again.mac == CAMERA.mac
    assert counts[0] is not None
    assert 0 < counts[0] < counts[1] < counts[2]
    # four hosts, a round about every 4 s: roughly one packet a second
    assert counts[2] - counts[1] == pytest.approx(30, abs=8)


def packets(flows: list[Flow], device: LanDevice) -> int:
    return sum(f.total_packets or 0 for f in flows if f.src in device.ipv4)


async def test_release_brings_the_flows_back_from_scratch(clock: Clock) -> None:
    router, untouched = DemoRouter(1, clock), DemoRouter(1, clock)
    clock.now = T0 + timedelta(minutes=5)
    record = await router.quarantine(MONITOR)
    clock.now += timedelta(minutes=5)

    await router.release(record)
    await router.release(record)  # releasing twice is fine
    assert packets((await router.snapshot()).flows, MONITOR) == 0
    clock.now += timedelta(minutes=1)
    snapshot = await router.snapshot()

    assert snapshot.quarantined == {}
    # the same P2P sessions as before, counted again from the release
    assert (
        0 < packets(snapshot.flows, MONITOR) < packets((await untouched.snapshot()).flows, MONITOR)
    )


async def test_identity_and_access() -> None:
    router = DemoRouter()
    info = await router.connect()
    await router.check_access()
    await router.close()

    assert info.unique_id == "02:50:00:00:00:01"
    assert info.name == "Demo network"
    assert router.kind == "demo"
