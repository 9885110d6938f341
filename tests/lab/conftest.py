"""The lab fixture: build the router, play the traffic, capture the router's conntrack table.

Needs root and `ip`, `nft`, `conntrack`. Without them the lab tests skip, unless
PHONEHOME_REQUIRE_LAB=1 (CI) turns the skip into a failure.
"""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.emulators.luci_conntrack import conntrack_list

from . import sshd
from .house import House, build_house
from .netlab import (
    PROC_CONNTRACK,
    ConntrackDump,
    HomeLab,
    Lab,
    Namespace,
    build_home_lab,
    build_router_lab,
    dump_conntrack,
    missing_requirements,
    play_traffic,
)
from .traffic import Probe, ProbeResult, home_plan


@dataclass(frozen=True)
class LabCapture:
    """The traffic played and what the router's table showed of it."""

    plan: list[Probe]
    results: list[ProbeResult]
    marked_host: str
    """Flows to this host carry the conntrack mark CT_MARK; others 0."""
    dump: ConntrackDump
    luci: list[dict[str, object]]
    """LuCI getConntrackList entries built from `dump.proc`, after a JSON round trip."""


def _unavailable(reason: str) -> None:
    """Skip, or fail where the lab is required (CI)."""
    message = f"lab unavailable: {reason}"
    if os.environ.get("PHONEHOME_REQUIRE_LAB") == "1":
        pytest.fail(f"{message} (PHONEHOME_REQUIRE_LAB=1)", pytrace=False)
    pytest.skip(message)


def _require_lab() -> None:
    """Skip (or fail) unless this machine can build the lab."""
    if problems := missing_requirements():
        _unavailable("; ".join(problems))


def _require_proc_conntrack(router: Namespace) -> None:
    """Skip (or fail) unless the router's kernel shows its table in /proc."""
    if not router.can_read(PROC_CONNTRACK):
        _unavailable(f"the kernel has no {PROC_CONNTRACK} (CONFIG_NF_CONNTRACK_PROCFS)")


@pytest.fixture(scope="session")
def lab_capture() -> LabCapture:
    """Build the lab, play the home plan, read the table while TCP connections are held.

    The lab is removed before any test runs: tests only look at the capture.
    """
    _require_lab()
    with Lab() as lab:
        topology = build_router_lab(lab)
        _require_proc_conntrack(topology.router)
        plan = home_plan(
            topology.device_v4, topology.device_v6, topology.internet_v4, topology.internet_v6
        )
        results = play_traffic(lab, topology, plan)
        dump = dump_conntrack(topology.router)
    return LabCapture(
        plan=plan,
        results=results,
        marked_host=topology.marked_host,
        dump=dump,
        luci=json.loads(json.dumps(conntrack_list(dump.proc))),
    )


@pytest.fixture
def home_lab() -> Iterator[tuple[Lab, HomeLab]]:
    """A fresh bridged home lab for one test; removed afterwards, also when the test fails."""
    _require_lab()
    with Lab() as lab:
        home = build_home_lab(lab)
        _require_proc_conntrack(home.net.router)
        yield lab, home


@pytest.fixture
def house_lab() -> Iterator[tuple[Lab, House]]:
    """The network lab's house (router, LAN devices, Home Assistant host, internet hosts)
    for one test; removed afterwards, also when the test fails."""
    _require_lab()
    with Lab() as lab:
        house = build_house(lab)
        _require_proc_conntrack(house.router)
        yield lab, house


@pytest.fixture
def lab_tools() -> None:
    """Skip (or fail) unless this machine can build the lab."""
    _require_lab()


@pytest.fixture
def sshd_tools(lab_tools: None) -> None:
    """Skip (or fail) unless the lab, and OpenSSH's server in it, can run."""
    if problems := sshd.missing():
        _unavailable("; ".join(problems))
