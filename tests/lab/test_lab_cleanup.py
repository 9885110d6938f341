"""The lab leaves nothing behind: no namespace, link, nft table or process, even on failure.

What is compared lives in the root namespace (its links and nft tables) or is this run's
own (namespaces with this process's prefix, the pids the lab started): other lab runs on
the same machine may come and go meanwhile without disturbing the check.
"""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from . import sshd
from .cli import running
from .house import (
    REPO_ROOT,
    ROUTER_LAN,
    House,
    background,
    build_house,
    internet_addresses,
    play_argv,
    scenario,
    serve_argv,
    ubus_argv,
    write_router_data,
)
from .netlab import Lab, list_namespaces, namespace_pids, run

pytestmark = pytest.mark.lab

SCRIPT: Final = REPO_ROOT / "scripts" / "lab"


@dataclass(frozen=True)
class RootState:
    """What the lab must not change in the root namespace, and this run's namespaces."""

    links: frozenset[str]
    tables: frozenset[str]
    namespaces: frozenset[str]


def root_state(prefix: str) -> RootState:
    links = run(["ip", "-o", "link", "show"]).stdout.splitlines()
    return RootState(
        links=frozenset(line.split(":")[1].strip() for line in links),
        tables=frozenset(run(["nft", "list", "tables"]).stdout.splitlines()),
        namespaces=frozenset(name for name in list_namespaces() if name.startswith(prefix)),
    )


def lab_pids(house: House) -> set[int]:
    """Every process running in the lab's namespaces."""
    return {
        pid for namespace in house.namespaces.values() for pid in namespace_pids(namespace.name)
    }


class BoomError(RuntimeError):
    """The failure a test raises inside the lab."""


def start_everything(lab: Lab, house: House, directory: Path) -> set[int]:
    """Every service and player the end-to-end tests start; the services' pids."""
    hints, _ = write_router_data(directory)
    server = sshd.prepare(directory / "ssh", ROUTER_LAN)
    services = [lab.start(house.router, server.argv(), "sshd", ends_on_eof=False)]
    sshd.wait_listening(house.router)
    services += [
        lab.start(house.router, ubus_argv(hints, plugin=True, lifetime=60), "ubus", REPO_ROOT),
        lab.start(house.internet, serve_argv(internet_addresses(), 60), "internet", REPO_ROOT),
    ]
    players = [
        lab.start(house.namespaces[role], play_argv(beacons, 60), role, REPO_ROOT)
        for role, beacons in {**background(100), **scenario("all", seconds=30)}.items()
    ]
    for helper in services[1:] + players:
        assert helper.read_line().strip() == "ready"
    return {helper.pid for helper in services}


def fail_inside_a_lab(directory: Path, prefix: str, pids: set[int]) -> None:
    """Build the lab, start everything, note the processes in it (into `pids`), then fail."""
    with Lab() as lab:
        house = build_house(lab)
        services = start_everything(lab, house, directory)
        pids |= lab_pids(house)
        assert services <= pids
        assert len(root_state(prefix).namespaces) == len(house.namespaces)
        raise BoomError


@pytest.mark.usefixtures("sshd_tools")
def test_a_failure_inside_the_lab_leaves_nothing_behind() -> None:
    prefix = f"phl{os.getpid()}-"
    before = root_state(prefix)
    pids: set[int] = set()
    with (
        tempfile.TemporaryDirectory(prefix="phl-cleanup-") as directory,
        pytest.raises(BoomError),
    ):
        fail_inside_a_lab(Path(directory), prefix, pids)
    assert root_state(prefix) == before
    assert not [pid for pid in pids if running(pid)]


@pytest.mark.usefixtures("sshd_tools")
def test_scripts_lab_up_play_down_leaves_nothing_behind(tmp_path: Path) -> None:
    prefix = f"phl{os.getpid()}-cli-"
    before = root_state(prefix)
    options = ["--prefix", prefix, "--state-dir", str(tmp_path / "state")]

    def lab(*args: str) -> str:
        done = subprocess.run(
            [str(SCRIPT), *options, *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        assert "lab up" in lab("up")
        assert "lab up" in lab("up")  # again: the first lab goes first
        status = lab("status")
        assert f"{prefix}router" in status
        assert "gone" not in status
        pids = {
            int(line.split("pid ")[1].split()[0]) for line in status.splitlines() if "pid " in line
        }
        assert len(pids) == 3
        assert "foscam -> 10001/udp" in lab("play", "foscam", "--seconds", "1")
    finally:
        removed = lab("down")
    assert f"namespace {prefix}router" in removed
    assert root_state(prefix) == before
    assert not [pid for pid in pids if running(pid)]
    assert not (tmp_path / "state").exists()
    assert "the lab is down" in lab("status")


FAILING_TEST: Final = """
import json, os
from pathlib import Path

from tests.lab.house import serve_argv, internet_addresses, REPO_ROOT
from tests.lab.netlab import namespace_pids


def test_fails_inside_the_lab(house_lab):
    lab, house = house_lab
    helper = lab.start(house.internet, serve_argv(internet_addresses(), 60), "hosts", REPO_ROOT)
    assert helper.read_line().strip() == "ready"
    pids = [pid for ns in house.namespaces.values() for pid in namespace_pids(ns.name)]
    names = [ns.name for ns in house.namespaces.values()]
    Path(os.environ["PHL_RECORD"]).write_text(json.dumps({"pids": pids, "names": names}))
    raise RuntimeError("a lab test fails")
"""


@pytest.mark.usefixtures("lab_tools")
def test_a_failing_pytest_lab_test_leaves_nothing_behind(tmp_path: Path) -> None:
    """The `house_lab` fixture removes its lab when the test using it fails."""
    test_file, record = tmp_path / "test_failing.py", tmp_path / "record.json"
    test_file.write_text(FAILING_TEST)
    before = root_state("phl")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.lab.conftest",
            f"--rootdir={REPO_ROOT}",
            str(test_file),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PHL_RECORD": str(record), "PHONEHOME_REQUIRE_LAB": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "1 failed" in done.stdout, done.stdout + done.stderr
    assert "a lab test fails" in done.stdout
    made = json.loads(record.read_text())
    assert made["pids"]
    assert not set(made["names"]) & set(list_namespaces())
    assert not [pid for pid in made["pids"] if running(pid)]
    after = root_state("phl")
    assert (after.links, after.tables) == (before.links, before.tables)
