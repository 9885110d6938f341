"""OpenWrtRouter with the phonehome rpcd plugin: the emulator runs the real script."""

import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from custom_components.phonehome.core.conntrack import parse_proc
from custom_components.phonehome.core.conntrack_plugin import PluginPage
from custom_components.phonehome.core.model import Flow
from custom_components.phonehome.routers import openwrt
from custom_components.phonehome.routers.base import (
    RouterConnectionError,
    RouterResponseError,
    Snapshot,
)
from custom_components.phonehome.routers.openwrt import OpenWrtRouter
from tests.bench.synthetic import proc_text
from tests.emulators.ubus import HASS_UBUS, Failure, UbusEmulator, User
from tests.routers.conftest import RouterFactory

PAGE_LIMIT = 256 * 1024
"""The plugin keeps every reply under 256 KiB."""

if shutil.which("busybox") is None and shutil.which("dash") is None:  # pragma: no cover
    pytest.skip("the plugin needs busybox or dash", allow_module_level=True)


@pytest.fixture
def emulator_with_plugin(emulator: UbusEmulator) -> UbusEmulator:
    emulator.plugin_installed = True
    return emulator


def table(flows: list[Flow]) -> tuple[set[tuple[str, str, int | None, int]], int]:
    """The (src, dst, dport, protocol) seen, and the kernel entries they stand for."""
    keys = {(flow.src, flow.dst, flow.dport, flow.protocol) for flow in flows}
    return keys, sum(flow.connections for flow in flows)


async def poll(emulator: UbusEmulator, router: OpenWrtRouter) -> tuple[Snapshot, int]:
    """One snapshot and the HTTP requests it took."""
    before = emulator.requests
    snapshot = await router.snapshot()
    return snapshot, emulator.requests - before


def check_complete(emulator: UbusEmulator, snapshot: Snapshot, text: str) -> None:
    assert table(snapshot.flows) == table(parse_proc(text).flows)
    assert snapshot.table_read
    assert snapshot.capabilities.table_source == "plugin"
    assert snapshot.parse_stats is not None
    assert not snapshot.parse_stats.skipped
    pages = [size for name, size in emulator.reply_sizes if name == "phonehome.conntrack"]
    assert pages
    assert max(size for _, size in emulator.reply_sizes) < PAGE_LIMIT
    assert emulator.calls["luci.getConntrackList"] == 0
    assert emulator.rpcd_alive


@pytest.mark.parametrize(("entries", "requests"), [(100, 1), (3000, 1), (20000, 2)])
async def test_the_whole_table_arrives_in_few_requests(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory, entries: int, requests: int
) -> None:
    emulator = emulator_with_plugin
    text = proc_text(entries)
    emulator.proc_text = text
    router = router_for(username="hass", password="hasspw")
    await router.connect()
    assert router.plugin
    snapshot, used = await poll(emulator, router)
    check_complete(emulator, snapshot, text)
    assert snapshot.conntrack_count == entries
    # The first page in the poll's first batch, with the count, hosts and leases;
    # then (when more) the other pages in one batch.
    assert used == requests


async def test_a_full_table_of_65536_entries(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = emulator_with_plugin
    text = proc_text(65536)
    emulator.proc_text = text
    router = router_for(username="hass", password="hasspw")
    await router.connect()
    snapshot, used = await poll(emulator, router)
    check_complete(emulator, snapshot, text)
    assert used == 2
    pages = [size for name, size in emulator.reply_sizes if name == "phonehome.conntrack"]
    assert len(pages) > 10  # each page its own call, all but the first in one batch
    assert sum(pages) < 16 * 1024 * 1024 // 2


async def test_without_the_plugin_a_big_table_is_still_never_read(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.proc_text = proc_text(20000)
    router = router_for(username="hass", password="hasspw")
    await router.connect()
    assert not router.plugin
    snapshot = await router.snapshot()
    assert not snapshot.table_read
    assert snapshot.capabilities.table_source == "none"
    assert emulator.calls["luci.getConntrackList"] == 0
    assert emulator.calls["phonehome.conntrack"] == 0
    assert emulator.rpcd_alive

    emulator.proc_text = proc_text(100)
    snapshot = await router.snapshot()
    assert snapshot.capabilities.table_source == "luci"


async def test_pages_in_several_batches_when_the_reply_cap_is_small(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = emulator_with_plugin
    text = proc_text(20000)
    emulator.proc_text = text
    router = router_for(max_bytes=1024 * 1024)  # three pages of 256 KiB a batch, and room
    await router.connect()
    snapshot, used = await poll(emulator, router)
    check_complete(emulator, snapshot, text)
    pages = sum(name == "phonehome.conntrack" for name, _ in emulator.reply_sizes)
    assert pages > 4
    assert used == 1 + math.ceil((pages - 1) / 3)


async def test_pages_that_stop_early_leave_gaps_read_next(
    emulator_with_plugin: UbusEmulator,
    router_for: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator = emulator_with_plugin
    text = proc_text(20000)
    emulator.proc_text = text
    # Ask for more rows a page than fit: every later page stops at 256 KiB.
    monkeypatch.setattr(openwrt, "PLUGIN_ROW_MARGIN", -30)
    router = router_for()
    await router.connect()
    snapshot, used = await poll(emulator, router)
    check_complete(emulator, snapshot, text)
    assert used >= 4


def test_rows_in_order_takes_each_row_once() -> None:
    pages = {
        0: openwrt.PluginPage("a", 6, 0, 2, ["r0", "r1"]),
        4: openwrt.PluginPage("a", 6, 4, None, ["r4", "r5"]),
        2: openwrt.PluginPage("a", 6, 2, 3, ["r2"]),
    }
    assert openwrt._gaps(pages, 6) == [(3, 4)]
    pages[3] = openwrt.PluginPage("a", 6, 3, None, ["r3", "r4", "r5"])
    assert openwrt._gaps(pages, 6) == []
    assert openwrt._rows_in_order(pages) == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert openwrt._gaps({0: pages[0]}, 5) == [(2, 5)]


def drop_snapshots(times: int) -> Any:
    """A plugin hook deleting the snapshot files when the first `times` snapshots are
    first asked for a later page: the plugin then starts a new snapshot."""
    dropped: set[str] = set()

    def hook(directory: Path, arguments: dict[str, Any]) -> None:
        snapshot = arguments.get("snapshot")
        if snapshot and snapshot not in dropped and len(dropped) < times:
            dropped.add(snapshot)
            for path in (directory / "tmp").iterdir():
                path.unlink()

    return hook


async def test_a_new_snapshot_mid_read_restarts_once(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = emulator_with_plugin
    text = proc_text(8000)
    emulator.proc_text = text
    emulator.plugin_hook = drop_snapshots(1)
    router = router_for()
    await router.connect()
    snapshot, used = await poll(emulator, router)
    check_complete(emulator, snapshot, text)
    assert used == 4  # first page with the count, batch, then first page and batch again


async def test_a_second_new_snapshot_fails(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = emulator_with_plugin
    emulator.proc_text = proc_text(8000)
    emulator.plugin_hook = drop_snapshots(2)
    router = router_for()
    await router.connect()
    with pytest.raises(RouterResponseError, match="snapshot changed while reading it, twice"):
        await router.snapshot()


async def test_a_plugin_error_is_a_response_error(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = emulator_with_plugin
    emulator.proc_text = proc_text(100)
    emulator.plugin_hook = lambda directory, _: (directory / "nf_conntrack").unlink()
    router = router_for()
    await router.connect()
    with pytest.raises(RouterResponseError, match="plugin answered an error: no conntrack table"):
        await router.snapshot()


@pytest.mark.parametrize(("entries", "source"), [(100, "luci"), (4000, "none")])
async def test_plugin_the_user_may_not_call_falls_back_to_luci(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory, entries: int, source: str
) -> None:
    # The plugin may be installed for the owner's own use while this user's ACL
    # (an older phonehome.json) lacks it: polls keep working as without it.
    emulator = emulator_with_plugin
    emulator.users["hass"] = User("hasspw", HASS_UBUS - {"phonehome.conntrack"}, None)
    emulator.proc_text = proc_text(entries)
    router = router_for(username="hass", password="hasspw")
    await router.connect()
    assert router.plugin
    snapshot = await router.snapshot()
    assert snapshot.capabilities.table_source == source
    assert snapshot.table_read is (source == "luci")
    assert not router.plugin
    await router.snapshot()
    assert emulator.calls["phonehome.conntrack"] == 2  # once, and once after a fresh login
    assert emulator.rpcd_alive


async def test_list_failing_means_no_plugin(
    emulator_with_plugin: UbusEmulator,
    router_for: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router = router_for()

    async def refused(pattern: str) -> dict[str, Any]:
        raise RouterConnectionError(pattern)

    monkeypatch.setattr(router.ubus, "list_signatures", refused)
    await router.connect()
    assert not router.plugin


async def test_list_answers(emulator_with_plugin: UbusEmulator, router_for: RouterFactory) -> None:
    router = router_for()
    listed = await router.ubus.list_signatures("phonehome")
    assert listed["phonehome"]["conntrack"] == {
        "offset": "number",
        "limit": "number",
        "snapshot": "string",
    }
    assert await router.ubus.list_signatures("nothing") == {}
    emulator_with_plugin.failure = Failure.NOT_JSON
    with pytest.raises(RouterResponseError, match="did not answer list"):
        await router.ubus.list_signatures("phonehome")


def altered_pages(
    monkeypatch: pytest.MonkeyPatch, alter: Callable[[PluginPage], PluginPage]
) -> None:
    """Every page the router decodes passes through ``alter``."""
    decode = openwrt.decode_plugin_page
    monkeypatch.setattr(openwrt, "decode_plugin_page", lambda payload: alter(decode(payload)))


@pytest.mark.parametrize(
    ("alter", "message"),
    [
        (
            lambda page: dataclasses.replace(page, rows=[]) if page.offset == 0 else page,
            "the first page holds no row",
        ),
        (
            lambda page: dataclasses.replace(page, offset=page.offset + 1) if page.offset else page,
            "asked for offset",
        ),
        (
            lambda page: dataclasses.replace(page, rows=[["x"]] * len(page.rows)),
            "phonehome conntrack: not one usable conntrack entry",
        ),
    ],
)
async def test_pages_that_do_not_fit_are_response_errors(
    emulator_with_plugin: UbusEmulator,
    router_for: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    alter: Callable[[PluginPage], PluginPage],
    message: str,
) -> None:
    emulator_with_plugin.proc_text = proc_text(8000)
    router = router_for()
    await router.connect()
    altered_pages(monkeypatch, alter)
    with pytest.raises(RouterResponseError, match=message):
        await router.snapshot()


async def test_later_pages_the_user_may_no_longer_call_fall_back(
    emulator_with_plugin: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = emulator_with_plugin
    emulator.proc_text = proc_text(8000)
    emulator.users["hass"] = User("hasspw", set(HASS_UBUS), None)

    def revoke(_directory: Path, arguments: dict[str, Any]) -> None:
        if "snapshot" in arguments:  # a later page: the rights go from the next call on
            emulator.users["hass"].ubus = HASS_UBUS - {"phonehome.conntrack"}

    emulator.plugin_hook = revoke
    router = router_for(username="hass", password="hasspw")
    await router.connect()
    logins = router.ubus.logins
    snapshot = await router.snapshot()
    assert router.ubus.logins == logins + 1  # refused, logged in again, refused again
    assert snapshot.capabilities.table_source == "none"  # 8,000 is above the LuCI cap
    assert not router.plugin
