"""LinuxSshRouter against the SSH emulator (tests/emulators/ssh.py), and its scripts in a real sh."""

import asyncio
import json
import os
import shlex
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from custom_components.phonehome.routers import linux_poll, linux_ssh, nft_quarantine
from custom_components.phonehome.routers.base import (
    LanDevice,
    QuarantineRecord,
    QuarantineState,
    RouterAuthError,
    RouterConnectionError,
    RouterHostKeyError,
    RouterPermissionError,
    RouterResponseError,
    RouterVerificationError,
    quarantine_name,
)
from custom_components.phonehome.routers.linux_hosts import DeviceTable
from custom_components.phonehome.routers.linux_ssh import LinuxSshRouter, fetch_host_key
from tests.emulators.ssh import SshEmulator

FIXTURES = Path(__file__).parent / "fixtures" / "linux_ssh"
CORE = Path(__file__).parents[1] / "core" / "fixtures"
LEASES = "/tmp/dhcp.leases"
ODHCPD = "/tmp/hosts/odhcpd"
CAMERA = LanDevice(mac="02:77:00:00:00:02", ipv4=("192.168.77.2",), ipv6=("fd00:77::2",))
CAMERA_RECORD = QuarantineRecord(mac=CAMERA.mac, name=quarantine_name(CAMERA.mac))
PHONE = LanDevice(mac="02:77:00:00:00:04", ipv4=("192.168.77.4",))
Factory = Callable[..., LinuxSshRouter]


@pytest.fixture
async def emulator() -> AsyncIterator[SshEmulator]:
    emu = SshEmulator()
    emu.files = {
        linux_poll.CONNTRACK_PATH: (CORE / "proc_lab.txt").read_text(),
        linux_poll.COUNT_PATH: "7\n",
        LEASES: (FIXTURES / "dhcp.leases").read_text(),
        ODHCPD: (FIXTURES / "odhcpd").read_text(),
    }
    emu.neigh = (FIXTURES / "ip_neigh.txt").read_text()
    emu.conntrack_list = (CORE / "extended_lab.txt").read_text()
    await emu.start()
    yield emu
    await emu.close()


@pytest.fixture
async def router_for(emulator: SshEmulator) -> AsyncIterator[Factory]:
    made: list[LinuxSshRouter] = []

    def factory(**kwargs: Any) -> LinuxSshRouter:
        options: dict[str, Any] = {
            "password": emulator.password,
            "host_key": emulator.public_host_key,
            "timeout": 3.0,
            "command_timeout": 3.0,
        }
        options.update(kwargs)
        router = LinuxSshRouter(
            "127.0.0.1", emulator.port, options.pop("username", "root"), **options
        )
        made.append(router)
        return router

    yield factory
    for router in made:
        await router.close()


@pytest.fixture
async def router(router_for: Factory) -> LinuxSshRouter:
    router = router_for()
    await router.connect()
    return router


def _argv(command: str) -> list[str]:
    return shlex.split(command)


# ---------------------------------------------------------------- host key and login


async def test_fetch_host_key_shows_what_ssh_keygen_prints(
    emulator: SshEmulator, tmp_path: Path
) -> None:
    key = await fetch_host_key("127.0.0.1", emulator.port)
    assert key.public_key == emulator.public_host_key
    assert key.algorithm == "ssh-ed25519"
    (tmp_path / "key.pub").write_text(key.public_key + "\n")
    printed = (
        await asyncio.to_thread(
            subprocess.run,
            ["ssh-keygen", "-lf", str(tmp_path / "key.pub")],
            capture_output=True,
            text=True,
            check=True,
        )
    ).stdout.split()
    assert printed[1] == key.fingerprint
    assert key.fingerprint.startswith("SHA256:")
    assert linux_ssh.parse_host_key(key.public_key) == key
    with pytest.raises(ValueError, match="not an OpenSSH public key"):
        linux_ssh.parse_host_key("ssh-ed25519 AAAAnot-base64")


async def test_fetch_host_key_unreachable() -> None:
    with pytest.raises(RouterConnectionError, match="cannot reach SSH"):
        await fetch_host_key("127.0.0.1", _closed_port(), timeout=2.0)


async def test_pinned_key_connects_and_identifies(
    router_for: Factory, emulator: SshEmulator
) -> None:
    info = await router_for().connect()
    assert info.unique_id == emulator.machine_id
    assert info.name == "gw"
    assert info.model == "Linksys E8450 (UBI)"
    assert info.firmware == "OpenWrt 24.10.0"
    assert emulator.logins == ["password:root"]


async def test_other_host_key_is_refused_before_login(
    router_for: Factory, emulator: SshEmulator
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    router = router_for(host_key=other)
    with pytest.raises(RouterHostKeyError, match=r"host key of 127\.0\.0\.1:\d+ changed") as caught:
        await router.connect()
    assert caught.value.fingerprint == emulator.host_key.get_fingerprint("sha256")
    assert caught.value.public_key == emulator.public_host_key
    assert emulator.logins == []
    assert emulator.commands == []


async def test_pinned_key_of_another_type_is_refused(
    router_for: Factory, emulator: SshEmulator
) -> None:
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048).export_public_key().decode()
    with pytest.raises(RouterHostKeyError, match="offers no ssh-rsa host key") as caught:
        await router_for(host_key=rsa).connect()
    assert caught.value.fingerprint is None
    assert emulator.logins == []


async def test_invalid_pinned_key(router_for: Factory) -> None:
    with pytest.raises(RouterHostKeyError, match="not valid"):
        await router_for(host_key="not a key").connect()


async def test_key_login(router_for: Factory, emulator: SshEmulator) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    emulator.authorized_keys = [key]
    private = key.export_private_key().decode()
    await router_for(password=None, client_key=private).connect()
    assert emulator.logins == ["key:root"]


async def test_unknown_key_is_an_auth_error(router_for: Factory) -> None:
    private = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    with pytest.raises(RouterAuthError, match="refused the SSH login of 'root'"):
        await router_for(password=None, client_key=private).connect()


async def test_unreadable_key_is_an_auth_error(router_for: Factory) -> None:
    with pytest.raises(RouterAuthError, match="SSH key cannot be read"):
        await router_for(client_key="-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n").connect()


async def test_wrong_password(router_for: Factory, emulator: SshEmulator) -> None:
    with pytest.raises(RouterAuthError):
        await router_for(password="wrong").connect()
    assert emulator.commands == []


async def test_unreachable(emulator: SshEmulator) -> None:
    router = LinuxSshRouter(
        "127.0.0.1", _closed_port(), host_key=emulator.public_host_key, timeout=2.0
    )
    with pytest.raises(RouterConnectionError, match="cannot reach SSH"):
        await router.connect()
    await router.close()


async def test_command_timeout(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    router.session.command_timeout = 0.3
    emulator.delay = 1.0
    with pytest.raises(RouterConnectionError, match="did not finish"):
        await router.snapshot()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- snapshot


async def test_snapshot_on_realistic_data(router: LinuxSshRouter) -> None:
    snapshot = await router.snapshot()
    assert snapshot.conntrack_count == 7
    assert len(snapshot.flows) == 7
    assert snapshot.capabilities.table_source == "proc"
    assert snapshot.capabilities.byte_counters
    assert snapshot.capabilities.quarantine
    assert snapshot.capabilities.cut_live_flows
    assert snapshot.quarantined == {}
    devices = snapshot.devices
    assert devices["02:77:00:00:00:02"] == LanDevice(
        mac="02:77:00:00:00:02",
        ipv4=("192.168.77.2",),
        ipv6=("fd00:77::2", "fe80::77:ff:fe00:2"),
        hostname="foscam-cam",
    )
    assert devices["02:77:00:00:00:03"].hostname is None  # "*" in dnsmasq
    assert devices["3c:22:fb:12:34:56"].ipv6 == ("fd00:77::14",)  # MAC from a DUID-LLT
    assert devices["02:77:00:00:00:04"] == LanDevice(  # odhcpd DUID-LL, then ip neigh
        mac="02:77:00:00:00:04",
        ipv4=("192.168.77.4",),
        ipv6=("fd00:77::4", "2001:db8:77::4"),
        hostname="phone",
    )
    assert devices["02:77:00:00:00:05"].hostname == "printer"  # odhcpd IPv4 lease
    assert devices["02:77:00:00:00:06"].hostname is None  # odhcpd "broken\x20"
    assert "be:a8:47:97:f5:f9" not in devices  # the WAN gateway
    assert len(devices) == 6


async def test_snapshot_falls_back_to_conntrack_tool(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    del emulator.files[linux_poll.CONNTRACK_PATH]
    snapshot = await router.snapshot()
    assert snapshot.capabilities.table_source == "conntrack"
    assert len(snapshot.flows) == 3
    assert {flow.dst for flow in snapshot.flows} == {
        "203.0.113.10",
        "203.0.113.11",
        "2001:db8:1::a",
    }


async def test_no_table_at_all(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    del emulator.files[linux_poll.CONNTRACK_PATH]
    emulator.conntrack_installed = False
    with pytest.raises(RouterPermissionError, match="conntrack-tools is not installed"):
        await router.snapshot()


async def test_count_missing_is_none(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    del emulator.files[linux_poll.COUNT_PATH]
    assert (await router.snapshot()).conntrack_count is None


async def test_one_connection_across_polls(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    for _ in range(3):
        await router.snapshot()
    assert router.session.connections_opened == 1
    assert len(emulator.logins) == 1
    assert len(emulator.commands) == 4


async def test_reconnects_once_after_a_drop(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    await router.snapshot()
    emulator.drop()
    await asyncio.sleep(0.1)
    snapshot = await router.snapshot()
    assert len(snapshot.flows) == 7
    assert router.session.connections_opened == 2
    assert len(emulator.logins) == 2


async def test_reconnects_when_the_drop_is_not_seen_yet(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    assert router.session._client is not None
    router.session._client.lost = False
    emulator.drop()
    await asyncio.sleep(0.1)
    router.session._client.lost = (
        False  # as if the close had not arrived yet: the command fails, once
    )
    assert len((await router.snapshot()).flows) == 7
    assert router.session.connections_opened == 2


async def test_connection_that_keeps_dropping(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    emulator.hang_up = True
    with pytest.raises(RouterConnectionError, match="keeps dropping"):
        await router.snapshot()
    assert router.session.connections_opened == 2  # the first, and one for the second attempt
    emulator.hang_up = False
    assert len((await router.snapshot()).flows) == 7


def test_poll_output_cut_short() -> None:
    marker = "@@phonehome-00"
    whole = f"{marker} count\n7\n\n{marker} end 0\n{marker} table proc\n"
    with pytest.raises(RouterResponseError, match="cut short or out of order"):
        linux_poll.parse_poll(whole.encode(), "", marker)
    with pytest.raises(RouterResponseError, match="holds no connection table"):
        linux_poll.parse_poll(f"{marker} count\n7\n{marker} end 0\n".encode(), "", marker)
    failed = f"{marker} table proc\n\n{marker} end 1\n"
    with pytest.raises(RouterResponseError, match="Input/output error"):
        linux_poll.parse_poll(failed.encode(), "cat: read error: Input/output error", marker)
    with pytest.raises(RouterResponseError, match="cut short"):
        linux_poll.parse_poll(f"{marker} count\n{marker} count\n".encode(), "", marker)


def test_leases_with_odd_lines() -> None:
    table = DeviceTable()
    table.add_leases(
        "1764240000 02:77:00:00:00:0b not-an-ip host 01:02\n"
        "1764240000 7 fd00:77::b host 00:02:00:00:ab:11:01:02:03:04\n"  # DUID-EN: no MAC
        "1764240000 8 fd00:77::c host 00:03:00:06:02:77:00:00:00:0c\n"  # DUID-LL, not Ethernet
        "1764240000 9 fd00:77::d host 00:02:00:01:02:77:00:00:00:0d\n"  # DUID-EN, reads as Ethernet
        "1764240000 zz:zz 192.168.77.12 host\n"
    )
    assert table.devices() == {}


async def test_garbage_is_a_response_error(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    emulator.garbage = True
    with pytest.raises(RouterResponseError, match="printed no section"):
        await router.snapshot()


async def test_garbage_table_is_a_response_error(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    emulator.files[linux_poll.CONNTRACK_PATH] = "not\x00a table\n" * 5
    with pytest.raises(RouterResponseError, match="not one usable conntrack entry"):
        await router.snapshot()


async def test_garbage_count_is_a_response_error(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    emulator.files[linux_poll.COUNT_PATH] = "seven"
    with pytest.raises(RouterResponseError, match="not a number"):
        await router.snapshot()


async def test_garbage_on_identify(router_for: Factory, emulator: SshEmulator) -> None:
    emulator.garbage = True
    with pytest.raises(RouterResponseError, match="identify script"):
        await router_for().connect()


async def test_output_is_capped(router_for: Factory) -> None:
    router = router_for(max_bytes=1000)
    await router.connect()
    with pytest.raises(RouterResponseError, match="more than 1000 bytes"):
        await router.snapshot()


async def test_unique_id_falls_back_to_the_mac(router_for: Factory, emulator: SshEmulator) -> None:
    emulator.machine_id = ""
    assert (await router_for().connect()).unique_id == emulator.mac


# ---------------------------------------------------------------- rights


async def test_user_without_rights(router_for: Factory, emulator: SshEmulator) -> None:
    emulator.uid = 1000
    router = router_for()
    await router.connect()
    assert not router.nft_ok
    with pytest.raises(RouterPermissionError) as caught:
        await router.check_access()
    assert caught.value.acl == "read /proc/net/nf_conntrack"
    with pytest.raises(RouterPermissionError, match="may not read conntrack -L"):
        await router.snapshot()
    with pytest.raises(RouterPermissionError, match="may not run nft") as caught:
        await router.quarantine(CAMERA)
    assert caught.value.acl == "nft"


async def test_user_with_sudo(router_for: Factory, emulator: SshEmulator) -> None:
    emulator.uid = 1000
    emulator.sudo = True
    router = router_for()
    await router.connect()
    await router.check_access(quarantine=True)
    snapshot = await router.snapshot()
    assert len(snapshot.flows) == 7
    assert snapshot.capabilities.quarantine
    await router.quarantine(CAMERA)
    nft_commands = [c for c in emulator.commands if "nft" in _argv(c)[:3]]
    assert nft_commands
    assert all(c.startswith("sudo -n nft ") for c in nft_commands)
    assert emulator.deleted == ["192.168.77.2", "fd00:77::2"]


async def test_sudo_revoked_after_connect(router_for: Factory, emulator: SshEmulator) -> None:
    emulator.uid = 1000
    emulator.sudo = True
    router = router_for()
    await router.connect()
    emulator.sudo = False
    with pytest.raises(RouterPermissionError, match="password is required"):
        await router.quarantine(CAMERA)
    with pytest.raises(RouterPermissionError, match="password is required"):
        await router.release(CAMERA_RECORD)


async def test_nft_missing(router_for: Factory, emulator: SshEmulator) -> None:
    emulator.nft_installed = False
    router = router_for()
    await router.connect()
    assert not (await router.snapshot()).capabilities.quarantine
    with pytest.raises(RouterPermissionError, match="nft is not installed"):
        await router.check_access(quarantine=True)
    with pytest.raises(RouterPermissionError, match="nft is not installed"):
        await router.release(CAMERA_RECORD)


# ---------------------------------------------------------------- quarantine


async def test_quarantine_adds_the_element_and_cuts_flows(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    record = await router.quarantine(CAMERA)
    assert record.mac == CAMERA.mac
    assert record.name == "phonehome_027700000002"
    assert record.addresses == ("192.168.77.2", "fd00:77::2")
    assert record.flows_cut
    applied = emulator.commands.index("nft -f -")
    assert emulator.stdins[applied] == nft_quarantine.add_script(CAMERA.mac)
    assert (
        'add element inet phonehome quarantined { 02:77:00:00:00:02 comment "phonehome_027700000002" }'
        in emulator.stdins[applied]
    )
    assert emulator.nft.elements == {
        CAMERA.mac: {"comment": "phonehome_027700000002", "packets": 0, "bytes": 0}
    }
    assert set(emulator.nft.rules) == {"ip", "ip6"}
    assert emulator.deleted == ["192.168.77.2", "fd00:77::2"]
    assert "192.168.77.2" not in emulator.files[linux_poll.CONNTRACK_PATH].split("dst=")[0]
    # the cut comes after the read-back
    listing = emulator.commands.index("nft -j list table inet phonehome")
    cut = next(
        i for i, c in enumerate(emulator.commands) if nft_quarantine.CONNTRACK_SCRIPT in _argv(c)
    )
    assert applied < listing < cut
    emulator.nft.elements[CAMERA.mac]["packets"] = 5
    snapshot = await router.snapshot()
    assert snapshot.quarantined == {CAMERA.mac: QuarantineState(enforced=True, blocked_packets=5)}


async def test_quarantine_is_idempotent(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    await router.quarantine(CAMERA)
    emulator.nft.elements[CAMERA.mac]["packets"] = 9
    emulator.nft.rules.pop("ip6")  # someone edited the chain: the next quarantine repairs it
    assert not (await router.snapshot()).quarantined[CAMERA.mac].enforced
    await router.quarantine(CAMERA)
    assert list(emulator.nft.elements) == [CAMERA.mac]
    assert emulator.nft.elements[CAMERA.mac]["packets"] == 9
    assert set(emulator.nft.rules) == {"ip", "ip6"}
    assert (await router.snapshot()).quarantined[CAMERA.mac].enforced


async def test_quarantine_not_verified(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    emulator.nft_ignores = True
    with pytest.raises(RouterVerificationError, match="does not show it in force"):
        await router.quarantine(CAMERA)
    assert emulator.deleted == []


async def test_quarantine_nft_error(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    emulator.nft.exists = True  # a table without its chain: flush chain fails
    emulator.nft.apply = lambda script: "Error: Could not process rule: Device or resource busy\n"  # type: ignore[method-assign]
    with pytest.raises(RouterResponseError, match="resource busy"):
        await router.quarantine(CAMERA)


async def test_quarantine_without_conntrack_tools(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    emulator.conntrack_installed = False
    record = await router.quarantine(CAMERA)
    assert not record.flows_cut
    assert emulator.nft.elements


async def test_quarantine_without_addresses(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    record = await router.quarantine(LanDevice(mac="02:77:00:00:00:09"))
    assert record.addresses == ()
    assert not any(nft_quarantine.CONNTRACK_SCRIPT in _argv(c) for c in emulator.commands)


async def test_release_removes_only_its_element_then_the_table(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    camera = await router.quarantine(CAMERA)
    phone = await router.quarantine(PHONE)
    await router.release(camera)
    assert list(emulator.nft.elements) == [PHONE.mac]
    assert emulator.nft.exists
    await router.release(phone)
    assert not emulator.nft.exists
    assert emulator.stdins[-2] == nft_quarantine.delete_script(PHONE.mac, present=True, last=True)
    commands = len(emulator.commands)
    await router.release(phone)  # already gone: success, nothing changed
    assert emulator.commands[commands:] == ["nft -j list table inet phonehome"]


async def test_release_of_an_absent_element_tidies_an_empty_table(
    router: LinuxSshRouter, emulator: SshEmulator
) -> None:
    record = await router.quarantine(CAMERA)
    del emulator.nft.elements[CAMERA.mac]
    await router.release(record)
    assert not emulator.nft.exists


async def test_release_not_verified(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    record = await router.quarantine(CAMERA)
    emulator.nft_ignores = True
    with pytest.raises(RouterVerificationError, match="still in the nft set"):
        await router.release(record)


async def test_list_table_garbage(router: LinuxSshRouter, emulator: SshEmulator) -> None:
    emulator.nft.listing = lambda: {"nope": 1}  # type: ignore[method-assign]
    emulator.nft.exists = True
    with pytest.raises(RouterResponseError, match="no nftables list"):
        await router.release(CAMERA_RECORD)
    with pytest.raises(RouterResponseError, match="no nftables list"):
        await router.snapshot()


# ---------------------------------------------------------------- injection


async def test_values_reach_the_shell_quoted(router_for: Factory, emulator: SshEmulator) -> None:
    hostile = "/tmp/x'; touch /tmp/pwned; echo '$(reboot)`id`\"\n"
    emulator.files[hostile] = "1764240000 02:77:00:00:00:0a 192.168.77.10 $(reboot);id 01:02\n"
    router = router_for(leases_paths=(hostile, LEASES))
    await router.connect()
    snapshot = await router.snapshot()
    assert snapshot.devices["02:77:00:00:00:0a"].hostname == "$(reboot);id"
    poll = _argv(emulator.commands[-1])
    assert poll[:4] == ["sh", "-c", linux_poll.POLL_SCRIPT, "phonehome"]
    assert poll[-2:] == [hostile, LEASES]
    # A real shell hands the script exactly these arguments.
    echoed = (
        await asyncio.to_thread(
            subprocess.run,
            ["sh", "-c", shlex.join(["printf", "%s\\0", *poll[4:]])],
            capture_output=True,
            check=True,
        )
    ).stdout.split(b"\0")[:-1]
    assert [arg.decode() for arg in echoed] == poll[4:]
    hostile_device = LanDevice(
        mac=CAMERA.mac, ipv4=("192.168.77.2; reboot",), ipv6=("fe80::1%eth0;reboot",)
    )
    await router.quarantine(hostile_device)
    cut = _argv(emulator.commands[-1])
    assert cut[-1:] == ["fe80::1%eth0;reboot"]  # valid (scoped) address, passed as one argument
    assert "192.168.77.2; reboot" not in " ".join(emulator.commands)
    with pytest.raises(ValueError, match="not a MAC"):
        await router.quarantine(LanDevice(mac="02:77:00:00:00:02; reboot"))
    assert all("reboot" not in stdin for stdin in emulator.stdins)


# ---------------------------------------------------------------- nft shapes and scripts


def _without_handles(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_handles(v) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_without_handles(v) for v in value]
    return value


def test_emulator_lists_the_table_as_nft_does() -> None:
    from tests.emulators.ssh import NftTable

    table = NftTable()
    assert table.apply(nft_quarantine.add_script("00:11:32:aa:bb:cc")) is None
    real = json.loads((FIXTURES / "nft_list_table.json").read_text())
    assert _without_handles(table.listing()) == _without_handles(real)
    assert (
        table.apply(nft_quarantine.delete_script("00:11:32:aa:bb:cc", present=True, last=False))
        is None
    )
    empty = json.loads((FIXTURES / "nft_list_table_empty.json").read_text())
    assert _without_handles(table.listing()) == _without_handles(empty)
    assert table.apply("add rule inet phonehome forward accept\n") is not None


def test_parse_real_nft_listings() -> None:
    state = nft_quarantine.parse_table((FIXTURES / "nft_list_table.json").read_text())
    assert state.exists
    assert state.chain_ok
    assert state.holds("00:11:32:aa:bb:cc")
    assert state.quarantined() == {"00:11:32:aa:bb:cc": QuarantineState(True, 0)}
    empty = nft_quarantine.parse_table((FIXTURES / "nft_list_table_empty.json").read_text())
    assert empty.elements == {}
    assert empty.chain_ok
    bare = {
        "nftables": [
            {
                "set": {
                    "family": "inet",
                    "table": "phonehome",
                    "name": "quarantined",
                    "elem": ["00:11:32:aa:bb:cc", "junk", 3],
                }
            }
        ]
    }
    state = nft_quarantine.parse_table(json.dumps(bare))
    assert state.elements == {"00:11:32:aa:bb:cc": nft_quarantine.Element(None, None)}
    assert not state.chain_ok
    assert not state.holds("00:11:32:aa:bb:cc")
    real = json.loads((FIXTURES / "nft_list_table.json").read_text())
    rules = [item for item in real["nftables"] if "rule" in item]
    rules[0]["rule"]["expr"] = "junk"
    rules[1]["rule"]["expr"] = [3, {"match": "junk"}, {"match": {"left": {"payload": 1}}}]
    real["nftables"].append("junk")
    assert not nft_quarantine.parse_table(json.dumps(real)).chain_ok
    with pytest.raises(ValueError, match="no nftables list"):
        nft_quarantine.parse_table("[]")


def test_flows_cut_reading() -> None:
    assert nft_quarantine.flows_cut("missing\n") is None
    assert nft_quarantine.flows_cut(
        "deleted 0 conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n"
        "deleted 1 conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n"
    )
    assert not nft_quarantine.flows_cut(
        "deleted 1 conntrack v1.4.7 (conntrack-tools): Operation failed\n"
    )


def test_isc_dhcpd_leases() -> None:
    table = DeviceTable()
    table.add_leases(
        "lease 192.168.1.20 {\n  binding state active;\n  hardware ethernet B8:27:EB:42:C9:E9;\n"
        '  client-hostname "red01";\n}\n'
        "lease 192.168.1.21 {\n  binding state active;\n  hardware ethernet b8:27:eb:60:b8:8e;\n}\n"
        "lease 192.168.1.21 {\n  binding state free;\n  hardware ethernet b8:27:eb:60:b8:8e;\n}\n"
    )
    devices = table.devices()
    assert devices == {
        "b8:27:eb:42:c9:e9": LanDevice(
            mac="b8:27:eb:42:c9:e9", ipv4=("192.168.1.20",), hostname="red01"
        )
    }


def test_isc_lease_cut_short_is_dropped() -> None:
    """A block still open at the next ``lease`` line is dropped; the next block is its own."""
    table = DeviceTable()
    table.add_leases(
        "lease 192.168.1.20 {\n  binding state active;\n"
        "lease 192.168.1.21 {\n  binding state active;\n  hardware ethernet b8:27:eb:60:b8:8e;\n}\n"
        "lease 192.168.1.22 {\n  binding state active;\n  hardware ethernet b8:27:eb:42:c9:e9;\n"
    )
    assert table.devices() == {
        "b8:27:eb:60:b8:8e": LanDevice(mac="b8:27:eb:60:b8:8e", ipv4=("192.168.1.21",))
    }


def test_isc_leases_are_read_in_one_pass() -> None:
    """20,000 ``lease x {`` lines never closed, and a block of 40,000 blank lines or
    unclosed quotes: patterns that rescanned the rest from each line took seconds to
    minutes (quadratic); one pass over the lines takes milliseconds."""
    opened = "".join(f"lease 10.0.{n >> 8}.{n & 255} {{\n" for n in range(20_000))
    closed = "lease 192.168.1.21 {\n  hardware ethernet b8:27:eb:60:b8:8e;\n}\n"
    for filler in (" \n" * 40_000, '  client-hostname "x\n' * 40_000):
        table = DeviceTable()
        started = time.perf_counter()
        table.add_leases(opened + "lease 192.168.1.22 {\n" + filler + "}\n" + closed + opened)
        assert time.perf_counter() - started < 2
        assert table.devices()["b8:27:eb:60:b8:8e"].ipv4 == ("192.168.1.21",)


def test_lease_addresses_in_the_text_flows_carry() -> None:
    """Canonical text (core/addresses.py), as the flows carry it; zoned addresses skipped."""
    table = DeviceTable()
    for address in ("FD00:77::B/64", "::1.2.3.4", "::FFFF:192.168.1.5", "fe80::1%eth0", "01.2.3.4"):
        table.add("02:77:00:00:00:0b", address)
    assert table.devices()["02:77:00:00:00:0b"].ipv6 == (
        "fd00:77::b",
        "::1.2.3.4",
        "::ffff:192.168.1.5",
    )


def _stub(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


SHELLS = [["sh"]] + ([["busybox", "sh"]] if shutil.which("busybox") else [])
"""The scripts run on dash or bash (Debian, VyOS, UniFi OS) and busybox ash (OpenWrt)."""


def _shell(
    script: str, args: list[str], bin_dir: Path, shell: list[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(
        [*(shell or ["sh"]), "-c", script, "phonehome", *args],
        capture_output=True,
        env=env,
        check=False,
        timeout=30,
    )


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_poll_script_in_a_real_shell(tmp_path: Path, shell: list[str]) -> None:
    """The real script prints what the emulator prints, and the parser reads it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "ip", f"cat {shlex.quote(str(FIXTURES / 'ip_neigh.txt'))}\n")
    _stub(bin_dir, "nft", f"cat {shlex.quote(str(FIXTURES / 'nft_list_table.json'))}\n")
    _stub(
        bin_dir,
        "conntrack",
        f"cat {shlex.quote(str(CORE / 'extended_lab.txt'))}\necho 'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.' >&2\n",
    )
    table = tmp_path / "nf_conntrack"
    table.write_text((CORE / "proc_lab.txt").read_text())
    count = tmp_path / "count"
    count.write_text("7\n")
    hostile = tmp_path / "x'; touch pwned; echo '$(id)"
    hostile.write_text((FIXTURES / "dhcp.leases").read_text())
    marker = "@@phonehome-0011223344556677"
    args = [
        marker,
        "0",
        str(table),
        str(count),
        str(hostile),
        str(tmp_path / "absent"),
        str(FIXTURES / "odhcpd"),
    ]
    done = _shell(linux_poll.POLL_SCRIPT, args, bin_dir, shell)
    assert done.returncode == 0, done.stderr
    poll = linux_poll.parse_poll(done.stdout, done.stderr.decode(), marker)
    assert (poll.count, poll.source, len(poll.table.flows)) == (7, "proc", 7)
    assert len(poll.devices) == 6
    assert poll.quarantined == {"00:11:32:aa:bb:cc": QuarantineState(True, 0)}
    assert not (tmp_path / "pwned").exists()
    table.unlink()
    done = _shell(linux_poll.POLL_SCRIPT, args, bin_dir, shell)
    poll = linux_poll.parse_poll(done.stdout, "", marker)
    assert (poll.source, len(poll.table.flows)) == ("conntrack", 3)


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_conntrack_script_in_a_real_shell(tmp_path: Path, shell: list[str]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    _stub(
        bin_dir,
        "conntrack",
        f'echo "$@" >> {shlex.quote(str(log))}\necho "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted." >&2\nexit 1\n',
    )
    done = _shell(
        nft_quarantine.CONNTRACK_SCRIPT, ["0", "192.168.77.2", "fd00:77::2"], bin_dir, shell
    )
    assert log.read_text() == "-D -s 192.168.77.2\n-D -s fd00:77::2\n"
    assert nft_quarantine.flows_cut(done.stdout.decode()) is True
    (bin_dir / "conntrack").unlink()
    done = _shell(nft_quarantine.CONNTRACK_SCRIPT, ["0", "192.168.77.2"], bin_dir, shell)
    assert nft_quarantine.flows_cut(done.stdout.decode()) is None


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_info_script_in_a_real_shell(tmp_path: Path, shell: list[str]) -> None:
    done = _shell(linux_poll.INFO_SCRIPT, [], tmp_path, shell)
    assert done.returncode == 0, done.stderr
    keys = {line.partition("=")[0] for line in done.stdout.decode().splitlines()}
    assert {"uid", "sudo", "hostname", "machine_id", "mac", "firmware", "nft", "table"} <= keys


async def test_close_never_raises(router: LinuxSshRouter) -> None:
    await router.close()
    await router.close()
