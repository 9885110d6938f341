"""OpenWrtRouter quarantine: a fw4 rule per device through rpcd's uci object, read back."""

import shutil
from typing import Any

import pytest

from custom_components.phonehome.routers.base import (
    LanDevice,
    QuarantineRecord,
    QuarantineState,
    RouterPermissionError,
    RouterResponseError,
    RouterVerificationError,
    quarantine_name,
)
from custom_components.phonehome.routers.openwrt import OpenWrtRouter
from custom_components.phonehome.routers.openwrt_firewall import rule_values
from tests.emulators.ubus import Failure, UbusEmulator, fixture_body
from tests.routers.conftest import RouterFactory

CAMERA = LanDevice(mac="c0:ff:ee:00:00:01", ipv4=("192.168.1.20",), ipv6=("fd00::22",))
PLUG = LanDevice(mac="c0:ff:ee:00:00:02", ipv4=("192.168.1.21",))
NAME = quarantine_name(CAMERA.mac)
TABLE = """\
ipv4     2 udp      17 29 src=192.168.1.20 dst=203.0.113.5 sport=40010 dport=10001 packets=7 bytes=420 [UNREPLIED] src=203.0.113.5 dst=192.168.1.20 sport=10001 dport=40010 packets=0 bytes=0 mark=0 zone=0 use=2
ipv4     2 tcp      6 7439 ESTABLISHED src=192.168.1.21 dst=198.51.100.7 sport=51000 dport=443 packets=10 bytes=1500 src=198.51.100.7 dst=192.168.1.21 sport=443 dport=51000 packets=12 bytes=9000 [ASSURED] mark=0 zone=0 use=2
ipv6     10 tcp      6 7439 ESTABLISHED src=fd00:0000:0000:0000:0000:0000:0000:0022 dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=52000 dport=443 packets=3 bytes=300 src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0022 sport=443 dport=52000 packets=2 bytes=200 [ASSURED] mark=0 zone=0 use=2
"""
RULES = ("uci", "get", {"config": "firewall", "type": "rule"})
RULESET = (
    "file",
    "exec",
    {"command": "/usr/sbin/nft", "params": ["--terse", "--json", "list", "ruleset"]},
)
COMMIT = ("uci", "commit", {"config": "firewall"})
REVERT = ("uci", "revert", {"config": "firewall"})


def add_call(device: LanDevice) -> tuple[str, str, dict[str, Any]]:
    name = quarantine_name(device.mac)
    values = rule_values(device.mac)
    return ("uci", "add", {"config": "firewall", "type": "rule", "name": name, "values": values})


def write_call(address: str) -> tuple[str, str, dict[str, Any]]:
    return ("file", "write", {"path": "/proc/net/nf_conntrack", "data": address})


async def connected(
    router_for: RouterFactory, user: str = "hass", password: str = "hasspw"
) -> OpenWrtRouter:
    """A router logged in as the ACL file's login, with a short read-back."""
    router = router_for(username=user, password=password)
    await router.connect()
    router.firewall.verify_interval = 0.01
    router.firewall.verify_timeout = 0.5
    return router


async def quarantined(router_for: RouterFactory) -> OpenWrtRouter:
    """A connected router that has just quarantined the camera."""
    router = await connected(router_for)
    await router.quarantine(CAMERA)
    return router


def rules(emulator: UbusEmulator) -> dict[str, dict[str, Any]]:
    return {
        name: values
        for name, values in emulator.uci["firewall"].items()
        if values[".type"] == "rule"
    }


@pytest.fixture
def camera_table(emulator: UbusEmulator) -> UbusEmulator:
    emulator.proc_text = TABLE
    return emulator


# ---------------------------------------------------------------- quarantine


async def test_quarantine_makes_exactly_these_calls(
    camera_table: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = camera_table
    router = await connected(router_for)
    emulator.call_log.clear()
    record = await router.quarantine(CAMERA)
    assert emulator.call_log == [
        RULES,
        RULESET,
        add_call(CAMERA),
        COMMIT,
        RULES,
        RULESET,
        write_call("192.168.1.20"),
        write_call("fd00::22"),
    ]
    assert record == QuarantineRecord(
        mac=CAMERA.mac, name=NAME, addresses=("192.168.1.20", "fd00::22"), flows_cut=True
    )
    section = emulator.uci["firewall"][NAME]
    assert {key: value for key, value in section.items() if not key.startswith(".")} == {
        "name": NAME,
        "src": "lan",
        "dest": "wan",
        "src_mac": "C0:FF:EE:00:00:01",
        "proto": "all",
        "target": "REJECT",
    }
    assert section[".type"] == "rule"
    assert section[".anonymous"] is False
    assert not emulator.uci_store.staged.get(router.ubus.session_id or "")


async def test_quarantine_twice_leaves_one_rule_and_changes_nothing(
    camera_table: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = camera_table
    router = await connected(router_for)
    first = await router.quarantine(CAMERA)
    before = rules(emulator)
    emulator.call_log.clear()
    second = await router.quarantine(CAMERA)
    assert second == first
    assert rules(emulator) == before
    assert [name for name in rules(emulator) if name.startswith("phonehome_")] == [NAME]
    assert emulator.call_log == [RULES, RULESET, RULES, RULESET] + [
        write_call(address) for address in ("192.168.1.20", "fd00::22")
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"enabled": "0"},
        {"dest_port": "443"},
        {"src_mac": "02:00:00:00:00:99"},
        {"target": "ACCEPT"},
    ],
)
async def test_quarantine_repairs_a_rule_someone_narrowed(
    emulator: UbusEmulator, router_for: RouterFactory, change: dict[str, str]
) -> None:
    emulator.uci["firewall"][NAME] = {
        ".anonymous": False,
        ".type": "rule",
        ".name": NAME,
        **rule_values(CAMERA.mac),
        **change,
    }
    router = await connected(router_for)
    assert (
        not (await router.snapshot()).quarantined.get(CAMERA.mac, QuarantineState(False)).enforced
    )
    emulator.call_log.clear()
    await router.quarantine(CAMERA)
    delete = ("uci", "delete", {"config": "firewall", "section": NAME})
    assert emulator.call_log[2:5] == [delete, add_call(CAMERA), COMMIT]
    section = emulator.uci["firewall"][NAME]
    assert {k: v for k, v in section.items() if not k.startswith(".")} == rule_values(CAMERA.mac)
    snapshot = await router.snapshot()
    assert snapshot.quarantined[CAMERA.mac].enforced


async def test_the_acl_file_login_may_quarantine_and_cut_flows(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    snapshot = await (await connected(router_for)).snapshot()
    assert snapshot.capabilities.quarantine
    assert snapshot.capabilities.cut_live_flows


# ---------------------------------------------------------------- live flows


async def test_live_flows_are_cut_through_file_write(
    camera_table: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = camera_table
    router = await connected(router_for)
    record = await router.quarantine(CAMERA)
    assert record.flows_cut
    assert "192.168.1.20" not in emulator.proc_text
    assert "0022" not in emulator.proc_text  # the IPv6 entry, either direction
    assert "src=192.168.1.21" in emulator.proc_text  # the plug's flow stays
    assert emulator.files["/proc/sys/net/netfilter/nf_conntrack_count"] == "1\n"


async def test_a_refused_conntrack_write_leaves_flows_uncut(
    camera_table: UbusEmulator, router_for: RouterFactory
) -> None:
    camera_table.statuses["file.write"] = 9  # a kernel without the flush patch: EIO
    record = await (await connected(router_for)).quarantine(CAMERA)
    assert not record.flows_cut
    assert "192.168.1.20" in camera_table.proc_text


@pytest.mark.skipif(
    shutil.which("busybox") is None and shutil.which("dash") is None,
    reason="the plugin needs busybox or dash",
)
async def test_live_flows_are_cut_through_the_plugins_flush(
    camera_table: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = camera_table
    emulator.plugin_installed = True
    router = await connected(router_for)
    record = await router.quarantine(CAMERA)
    assert record.flows_cut
    flushes = [call for call in emulator.call_log if call[:2] == ("phonehome", "flush")]
    assert flushes == [
        ("phonehome", "flush", {"ip": "192.168.1.20"}),
        ("phonehome", "flush", {"ip": "fd00::22"}),
    ]
    assert emulator.calls["file.write"] == 0
    assert "192.168.1.20" not in emulator.proc_text
    assert "0022" not in emulator.proc_text
    assert "src=192.168.1.21" in emulator.proc_text


async def test_the_lab_can_take_the_conntrack_writes(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    written: list[str] = []
    emulator.conntrack_writer = written.append
    await (await connected(router_for)).quarantine(CAMERA)
    assert written == ["192.168.1.20", "fd00::22"]


# ---------------------------------------------------------------- release


async def test_release_removes_only_its_own_section(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.uci["firewall"]["phonehome_other"] = {
        ".anonymous": False,
        ".type": "rule",
        ".name": "phonehome_other",
        "name": "phonehome_other",
        "src": "lan",
        "dest": "wan",
        "src_mac": "02:00:00:00:00:99",
        "target": "REJECT",
    }
    router = await connected(router_for)
    record = await router.quarantine(CAMERA)
    await router.quarantine(PLUG)
    before = set(rules(emulator))
    emulator.call_log.clear()
    await router.release(record)
    assert set(rules(emulator)) == before - {NAME}
    assert "phonehome_other" in rules(emulator)
    assert quarantine_name(PLUG.mac) in rules(emulator)
    deletes = [call for call in emulator.call_log if call[1] == "delete"]
    assert deletes == [("uci", "delete", {"config": "firewall", "section": NAME})]
    assert COMMIT in emulator.call_log
    snapshot = await router.snapshot()
    assert CAMERA.mac not in snapshot.quarantined
    assert snapshot.quarantined[PLUG.mac].enforced
    assert "02:00:00:00:00:99" not in snapshot.quarantined  # not a quarantine of ours


async def test_release_of_a_rule_already_gone_succeeds(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await connected(router_for)
    record = await router.quarantine(CAMERA)
    del emulator.uci["firewall"][NAME]  # a router reset, with fw4 not reloaded yet
    emulator.call_log.clear()
    await router.release(record)
    assert emulator.call_log == [("uci", "delete", {"config": "firewall", "section": NAME})]
    assert NAME not in emulator.uci["firewall"]


async def test_release_refuses_a_name_that_is_not_a_quarantine(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await connected(router_for)
    with pytest.raises(RouterResponseError, match="not a quarantine rule"):
        await router.release(QuarantineRecord(mac=CAMERA.mac, name="cfg0b1234"))
    assert emulator.calls["uci.delete"] == 0


# ---------------------------------------------------------------- snapshot


async def test_snapshot_reports_blocked_packets_from_the_rules_counter(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await quarantined(router_for)
    emulator.rule_counters[NAME] = 42
    emulator.call_log.clear()
    requests = emulator.requests
    snapshot = await router.snapshot()
    assert snapshot.quarantined == {CAMERA.mac: QuarantineState(enforced=True, blocked_packets=42)}
    assert emulator.requests - requests == 2  # one batch, then the table
    assert RULES in emulator.call_log
    assert RULESET in emulator.call_log


async def test_snapshot_without_the_nft_right_reports_no_counter(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].grants.discard(
        ("file", "/usr/sbin/nft --terse --json list ruleset", "exec")
    )
    router = await quarantined(router_for)
    snapshot = await router.snapshot()
    assert snapshot.quarantined == {CAMERA.mac: QuarantineState(enforced=True)}
    assert emulator.calls["file.exec"] == 0


async def test_a_deleted_rule_shows_and_quarantine_restores_it(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await quarantined(router_for)
    luci = await connected(router_for, "root", "secret")  # someone, through LuCI
    await luci.ubus.call(
        "uci", "set", {"config": "firewall", "section": NAME, "values": {"enabled": "0"}}
    )
    await luci.ubus.call("uci", "commit", {"config": "firewall"})
    assert not (await router.snapshot()).quarantined[CAMERA.mac].enforced
    await luci.ubus.call("uci", "delete", {"config": "firewall", "section": NAME})
    await luci.ubus.call("uci", "commit", {"config": "firewall"})
    assert CAMERA.mac not in (await router.snapshot()).quarantined
    await router.quarantine(CAMERA)
    assert (await router.snapshot()).quarantined[CAMERA.mac].enforced


async def test_a_rule_fw4_has_not_loaded_is_not_enforced(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await quarantined(router_for)
    emulator.nft_ruleset = lambda: '{"nftables": [{"metainfo": {"json_schema_version": 1}}]}'
    assert (await router.snapshot()).quarantined == {
        CAMERA.mac: QuarantineState(enforced=False, blocked_packets=0)
    }


@pytest.mark.parametrize(
    "stdout", ["not json", '{"nftables": 3}', '["nftables"]', '{"nftables": [1, {"rule": 2}']
)
async def test_garbage_nft_output_is_a_response_error(
    emulator: UbusEmulator, router_for: RouterFactory, stdout: str
) -> None:
    router = await connected(router_for)
    emulator.nft_ruleset = lambda: stdout
    with pytest.raises(RouterResponseError, match="nft"):
        await router.snapshot()
    with pytest.raises(RouterResponseError, match="nft"):
        await router.quarantine(CAMERA)


async def test_unknown_nft_objects_are_tolerated(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await quarantined(router_for)
    comment = f"!fw4: {NAME}"
    emulator.nft_ruleset = lambda: (
        '{"nftables": [{"set": {"name": "x"}}, 7, {"rule": {"comment": 5}}, '
        f'{{"rule": {{"comment": "{comment}", "expr": [{{"counter": {{"packets": 3}}}}, '
        '{"counter": "x"}, 9]}}, '
        f'{{"rule": {{"comment": "{comment}", "expr": [{{"counter": {{"packets": 4}}}}]}}}}]}}'
    )
    assert (await router.snapshot()).quarantined[CAMERA.mac] == QuarantineState(True, 7)


# ---------------------------------------------------------------- rights


async def test_quarantine_without_firewall_write_names_the_right(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].grants.discard(("uci", "firewall", "write"))
    router = await connected(router_for)
    with pytest.raises(RouterPermissionError, match="uci write firewall") as err:
        await router.quarantine(CAMERA)
    assert err.value.acl == "uci write firewall"
    assert emulator.calls["uci.add"] == 0
    assert not (await router.snapshot()).capabilities.quarantine


async def test_quarantine_without_uci_add_names_the_method(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].ubus.discard("uci.add")  # type: ignore[union-attr]
    with pytest.raises(RouterPermissionError) as err:
        await (await connected(router_for)).quarantine(CAMERA)
    assert err.value.acl == "uci add"


async def test_no_way_to_cut_flows_without_file_write_or_plugin(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].grants.discard(("file", "/proc/net/nf_conntrack", "write"))
    router = await connected(router_for)
    snapshot = await router.snapshot()
    assert snapshot.capabilities.quarantine
    assert not snapshot.capabilities.cut_live_flows
    record = await router.quarantine(CAMERA)
    assert not record.flows_cut
    assert emulator.calls["file.write"] == 0


async def test_the_poll_login_alone_may_not_quarantine(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.users["hass"].grants.clear()
    emulator.users["hass"].ubus -= {"uci.get", "uci.add", "file.exec"}  # type: ignore[operator]
    router = await connected(router_for)
    snapshot = await router.snapshot()
    assert not snapshot.capabilities.quarantine
    assert not snapshot.capabilities.cut_live_flows
    assert snapshot.quarantined == {}
    assert emulator.calls["uci.get"] == 0  # never asked: the poll would fail
    with pytest.raises(RouterPermissionError) as err:
        await router.quarantine(CAMERA)
    assert err.value.acl == "uci get"


async def test_rights_lost_after_connect_end_quarantine_not_the_poll(
    emulator: UbusEmulator, router_for: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    router = await quarantined(router_for)
    assert (await router.snapshot()).capabilities.quarantine
    emulator.users["hass"].grants.discard(("uci", "firewall", "read"))

    snapshot = await router.snapshot()

    assert snapshot.quarantined == {}
    assert not snapshot.capabilities.quarantine
    assert "may no longer read its firewall rules" in caplog.text
    calls = emulator.calls["uci.get"]
    assert (await router.snapshot()).devices  # later polls no longer ask
    assert emulator.calls["uci.get"] == calls


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize("status", [6, 9])
async def test_a_failing_commit_commits_nothing_and_reverts(
    emulator: UbusEmulator, router_for: RouterFactory, status: int
) -> None:
    before = rules(emulator)
    emulator.statuses["uci.commit"] = status
    router = await connected(router_for)
    with pytest.raises((RouterPermissionError, RouterResponseError)):
        await router.quarantine(CAMERA)
    assert rules(emulator) == before
    assert emulator.call_log[-1] == REVERT
    assert not emulator.uci_store.staged.get(router.ubus.session_id or "")


async def test_a_commit_that_never_answers_is_reverted(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.failure, emulator.failure_on = Failure.HTTP_500, "uci.commit"
    router = await connected(router_for)
    with pytest.raises(RouterResponseError, match="HTTP 500"):
        await router.quarantine(CAMERA)
    assert NAME not in emulator.uci["firewall"]
    assert emulator.call_log[-1] == REVERT
    assert not emulator.uci_store.staged.get(router.ubus.session_id or "")


async def test_a_failing_add_is_reverted_before_any_commit(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.statuses["uci.add"] = 2
    router = await connected(router_for)
    with pytest.raises(RouterResponseError, match="ubus status 2"):
        await router.quarantine(CAMERA)
    assert emulator.calls["uci.commit"] == 0
    assert emulator.call_log[-1] == REVERT


async def test_a_rule_fw4_never_loads_is_a_verification_error_and_removed(
    camera_table: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator = camera_table
    emulator.firewall_reload_lag = 10**6
    router = await connected(router_for)
    router.firewall.verify_timeout = 0.1
    with pytest.raises(RouterVerificationError, match=rf"{NAME} .* did not load it within"):
        await router.quarantine(CAMERA)
    assert NAME not in emulator.uci["firewall"]
    assert emulator.calls["file.write"] == 0  # nothing cut: not quarantined
    assert "192.168.1.20" in emulator.proc_text


async def test_a_reload_lag_within_the_bound_succeeds(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    emulator.firewall_reload_lag = 3
    router = await connected(router_for)
    before = emulator.calls["file.exec"]
    assert (await router.quarantine(CAMERA)).name == NAME
    assert emulator.calls["file.exec"] - before == 5  # before, 3 stale reads, loaded


async def test_release_waits_for_fw4_to_unload_the_rule(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await connected(router_for)
    record = await router.quarantine(CAMERA)
    emulator.firewall_reload_lag = 10**6
    router.firewall.verify_timeout = 0.1
    with pytest.raises(RouterVerificationError, match="did not unload it"):
        await router.release(record)
    emulator.firewall_reload_lag = 0
    emulator.fw.committed(emulator.uci["firewall"], 0)
    await router.release(record)


# ---------------------------------------------------------------- the emulator's uci


async def test_staged_changes_belong_to_their_session(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    one = await connected(router_for, "root", "secret")
    two = await connected(router_for, "root", "secret")
    section = {"config": "firewall", "section": NAME}
    answer = await one.ubus.call("uci", "add", {**section, "type": "rule", "name": NAME})
    assert answer == {"section": NAME}
    del answer
    assert (await one.ubus.call("uci", "get", section))["values"][".name"] == NAME
    changes = await one.ubus.call("uci", "changes", {"config": "firewall"})
    assert changes == {"changes": [["add", NAME, "rule"]]}
    with pytest.raises(RouterResponseError, match="status 4"):
        await two.ubus.call("uci", "get", section)
    await one.close()
    assert not emulator.uci_store.staged
    assert NAME not in emulator.uci["firewall"]


async def test_the_emulators_uci_answers_as_captured(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    router = await connected(router_for, "root", "secret")
    revert = await router.ubus.call("uci", "revert", {"config": "firewall"})
    assert revert == {}  # captured: result [0] without payload
    assert fixture_body("call_no_payload_uci_revert")["result"] == [0]
    with pytest.raises(RouterPermissionError):  # captured: status 6 for a config not there
        await router.ubus.call("uci", "get", {"config": "doesnotexist"})
    rules_answer = await router.ubus.call("uci", "get", {"config": "firewall", "type": "rule"})
    names = [values["name"] for values in rules_answer["values"].values()]
    assert names[:2] == ["Allow-DHCP-Renew", "Allow-Ping"]
    zone = next(v for v in emulator.uci["firewall"].values() if v.get("name") == "wan")
    assert zone["network"] == ["wan", "wan6"]  # lists as uci_get_list_option shows them
