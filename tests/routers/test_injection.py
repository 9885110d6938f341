"""Hostile input at the routers: device names arrive cleaned, values reach SSH as data only.

Names: every router kind builds LanDevice, whose names pass through clean_label;
these tests feed each kind's real reply path control characters, HTML, 10 kB
and bytes that are not UTF-8. Commands: every value travels as one quoted
argument (``sh -c SCRIPT phonehome ARG...``) or as nft text built from a
normalised MAC; the recorded command lines are replayed in a real sh to show
that no payload runs.
"""

import asyncio
import shlex
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from custom_components.phonehome.core.labels import ELLIPSIS, MAX_LABEL
from custom_components.phonehome.routers import linux_poll, nft_quarantine
from custom_components.phonehome.routers.base import LanDevice, QuarantineRecord, quarantine_name
from custom_components.phonehome.routers.linux_hosts import DeviceTable
from custom_components.phonehome.routers.linux_ssh import LinuxSshRouter
from custom_components.phonehome.routers.unifi import UniFiRouter
from tests.emulators.ssh import SshEmulator
from tests.emulators.ubus import UbusEmulator
from tests.emulators.unifi import UniFiEmulator
from tests.routers.conftest import RouterFactory, self_signed

CAMERA_MAC = "02:77:00:00:00:02"
LONG = "x" * 10_000
CUT = "x" * (MAX_LABEL - 1) + ELLIPSIS
HOSTILE_NAMES = {
    "<img src=x onerror=alert(1)>": "img src=x onerror=alert(1)",
    "\u202egpj.exe\x00\x1b[2J\r\n": "gpj.exe (2J",
    "[Update firmware](https://evil.example)": "(Update firmware)(https://evil.example)",
    LONG: CUT,
}
INVALID_UTF8 = "\u00ff"
"""Sent as the single byte 0xff (see ``invalid_utf8``): no UTF-8 text holds it."""
BRIEF_PAYLOADS = [
    "; rm -rf /",
    "$(reboot)",
    "`reboot`",
    "x\nreboot",
    "x'; reboot; echo '",
    'x"; reboot; echo "',
    "$HOME ${PATH} *",
    "-rf --help",
    "\\",
]
"""Never executed: checked as they arrive at the emulator."""
CANARY = "pwned"
RUN_PAYLOADS = [
    f"; touch {CANARY}",
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"x\ntouch {CANARY}",
    f"x'; touch {CANARY}; echo '",
    f'x"; touch {CANARY}; echo "',
    f"x' \"$(touch {CANARY})\" '",
    f"* ? [a] ~ $HOME > {CANARY}",
]
"""Executed by a real sh in a scratch directory: evaluated, each would create CANARY there."""


@pytest.fixture
def invalid_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Emulator replies carry the byte 0xff where a name holds U+00FF (JSON-escaped)."""

    def raw(make: Callable[..., web.Response]) -> Callable[..., web.Response]:
        def respond(*args: Any, **kwargs: Any) -> web.Response:
            response = make(*args, **kwargs)
            assert isinstance(response.body, bytes)
            response.body = response.body.replace(b"\\u00ff", b"\xff")
            return response

        return respond

    monkeypatch.setattr(web, "Response", raw(web.Response))
    monkeypatch.setattr(web, "json_response", raw(web.json_response))


# ---------------------------------------------------------------- OpenWrt


@pytest.mark.usefixtures("invalid_utf8")
async def test_openwrt_hint_and_lease_names_are_cleaned(
    emulator: UbusEmulator, router_for: RouterFactory
) -> None:
    names = list(HOSTILE_NAMES)
    emulator.host_hints = {
        f"C0:FF:EE:00:00:0{n}": {"ipaddrs": [f"192.168.1.{20 + n}"], "name": name}
        for n, name in enumerate(names)
    }
    emulator.dhcp_leases = {
        "dhcp_leases": [
            {"macaddr": "C0:FF:EE:00:00:09", "ipaddr": "192.168.1.9", "hostname": "\u200b"},
            {
                "macaddr": "C0:FF:EE:00:00:0a",
                "ipaddr": "192.168.1.10",
                "hostname": "caf" + INVALID_UTF8,
            },
        ],
        "dhcp6_leases": [
            {"macaddr": "C0:FF:EE:00:00:09", "ip6addr": "fd00::9", "hostname": "Küchen radio"}
        ],
    }
    devices = (await router_for().snapshot()).devices
    assert [devices[f"c0:ff:ee:00:00:0{n}"].name for n in range(len(names))] == list(
        HOSTILE_NAMES.values()
    )
    assert devices["c0:ff:ee:00:00:09"].hostname == "Küchen radio"  # the invisible one skipped
    assert devices["c0:ff:ee:00:00:0a"].hostname == "caf\ufffd"


# ---------------------------------------------------------------- UniFi


@pytest.fixture
async def unifi(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[UniFiEmulator]:
    tls: ssl.SSLContext = self_signed(Path(tmp_path_factory.mktemp("tls")))
    emu = UniFiEmulator()
    await emu.start(tls)
    yield emu
    await emu.close()


@pytest.mark.usefixtures("invalid_utf8")
async def test_unifi_client_names_are_cleaned(unifi: UniFiEmulator) -> None:
    unifi.clients = [
        {
            "mac": f"02:00:00:00:00:1{n}",
            "ip": f"192.168.0.{10 + n}",
            "name": name,
            "hostname": "cam" + INVALID_UTF8 + "\t\t1",
            "oui": "<b>Vendor</b>",
        }
        for n, name in enumerate(HOSTILE_NAMES)
    ]
    async with aiohttp.ClientSession() as http:
        router = UniFiRouter(
            http,
            "127.0.0.1",
            "admin",
            unifi.users["admin"].password,
            port=unifi.port,
            verify_ssl=False,
            timeout=2.0,
        )
        await router.connect()
        devices = (await router.snapshot()).devices
        await router.close()
    shown = [devices[f"02:00:00:00:00:1{n}"] for n in range(len(HOSTILE_NAMES))]
    assert [device.name for device in shown] == list(HOSTILE_NAMES.values())
    assert {(device.hostname, device.vendor) for device in shown} == {("cam\ufffd 1", "bVendor/b")}


# ---------------------------------------------------------------- Linux over SSH: names


def test_ssh_poll_with_bytes_that_are_not_utf8_shows_replacement_characters() -> None:
    marker = "@@phonehome-0123456789abcdef"

    def section(head: str, body: bytes, status: int = 0) -> bytes:
        return f"{marker} {head}\n".encode() + body + f"\n{marker} end {status}\n".encode()

    stdout = b"".join(
        [
            section("count", b"0"),
            section("table proc", b""),
            section(
                "leases 1", b"1764240000 02:77:00:00:00:0a 192.168.77.10 caf\xc3\xa9\xff\x1b 01\n"
            ),
            section("neigh", b""),
        ]
    )
    poll = linux_poll.parse_poll(stdout, "", marker)
    assert poll.devices["02:77:00:00:00:0a"].hostname == "café\ufffd"


def test_lease_names_are_cleaned_and_zoned_addresses_skipped() -> None:
    table = DeviceTable()
    table.add_leases(
        "1764240000 02:77:00:00:00:0b fe80::1%eth0 zoned 01\n"
        f"1764240000 02:77:00:00:00:0c 192.168.77.12 {LONG} 01\n"
    )
    table.add_leases(
        "lease 192.168.77.13 {\n  binding state active;\n  hardware ethernet 02:77:00:00:00:0d;\n"
        '  client-hostname "say \\"hi\\" \\$(x)";\n}\n'
    )
    devices = table.devices()
    assert "02:77:00:00:00:0b" not in devices
    assert devices["02:77:00:00:00:0c"].hostname == CUT
    assert devices["02:77:00:00:00:0d"].hostname == 'say "hi" $(x)'


# ---------------------------------------------------------------- Linux over SSH: commands


@pytest.fixture
async def ssh() -> AsyncIterator[SshEmulator]:
    emu = SshEmulator()
    emu.files = {linux_poll.CONNTRACK_PATH: "", linux_poll.COUNT_PATH: "0\n"}
    await emu.start()
    yield emu
    await emu.close()


@pytest.fixture
async def ssh_router_for(ssh: SshEmulator) -> AsyncIterator[Callable[..., LinuxSshRouter]]:
    made: list[LinuxSshRouter] = []

    def factory(**kwargs: Any) -> LinuxSshRouter:
        router = LinuxSshRouter(
            "127.0.0.1",
            ssh.port,
            "root",
            password=ssh.password,
            host_key=ssh.public_host_key,
            timeout=3.0,
            command_timeout=3.0,
            **kwargs,
        )
        made.append(router)
        return router

    yield factory
    for router in made:
        await router.close()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    assert not (tmp_path / CANARY).exists(), "a payload ran"


async def _sh(command: str, cwd: Path) -> bytes:
    """What a real POSIX sh (the router's login shell) prints running this command line."""
    done = await asyncio.to_thread(
        subprocess.run,
        ["sh", "-c", command],
        cwd=cwd,
        capture_output=True,
        check=False,
        timeout=30,
    )
    return done.stdout


def _echoing(command: str, script: str) -> str:
    """The command line with ``script`` swapped for one that prints each argument, NUL-ended."""
    quoted = shlex.quote(script)
    assert command.startswith(f"sh -c {quoted} phonehome ")
    return command.replace(quoted, shlex.quote('printf "%s\\0" "$@"'), 1)


@pytest.mark.parametrize("payload", BRIEF_PAYLOADS)
async def test_leases_paths_arrive_as_one_argument_each(
    ssh: SshEmulator, ssh_router_for: Callable[..., LinuxSshRouter], payload: str
) -> None:
    path = "/tmp/" + payload
    ssh.files[path] = f"1764240000 02:77:00:00:00:0a 192.168.77.10 {shlex.quote(payload)} 01\n"
    router = ssh_router_for(leases_paths=(path, "/tmp/dhcp.leases"))
    await router.connect()
    snapshot = await router.snapshot()
    assert shlex.split(ssh.commands[-1])[-2:] == [path, "/tmp/dhcp.leases"]
    assert "02:77:00:00:00:0a" in snapshot.devices  # the emulator read exactly that file


@pytest.mark.parametrize("payload", RUN_PAYLOADS)
async def test_a_real_sh_runs_the_poll_with_hostile_paths_as_data(
    ssh: SshEmulator,
    ssh_router_for: Callable[..., LinuxSshRouter],
    scratch: Path,
    payload: str,
) -> None:
    leases = scratch / payload
    leases.write_text("1764240000 02:77:00:00:00:0a 192.168.77.10 lamp 01\n")
    router = ssh_router_for(leases_paths=(str(leases),))
    await router.connect()
    await router.snapshot()
    command = ssh.commands[-1]
    echoed = (await _sh(_echoing(command, linux_poll.POLL_SCRIPT), scratch)).split(b"\0")[:-1]
    assert [arg.decode() for arg in echoed] == shlex.split(command)[4:]
    # The real poll script, as the router's shell would run it, reads that file and runs nothing.
    printed = (await _sh(command, scratch)).decode(errors="replace")
    assert "\n1764240000 02:77:00:00:00:0a 192.168.77.10 lamp 01\n" in printed


async def test_nul_never_reaches_the_wire(
    ssh: SshEmulator, ssh_router_for: Callable[..., LinuxSshRouter]
) -> None:
    router = ssh_router_for(leases_paths=("/tmp/dhcp.leases\0; reboot",))
    await router.connect()
    sent = len(ssh.commands)
    with pytest.raises(ValueError, match="NUL"):
        await router.snapshot()
    assert len(ssh.commands) == sent


@pytest.mark.parametrize("payload", [*BRIEF_PAYLOADS, "\0", ""])
async def test_a_hostile_mac_is_refused_before_any_command(
    ssh: SshEmulator, ssh_router_for: Callable[..., LinuxSshRouter], payload: str
) -> None:
    router = ssh_router_for()
    await router.connect()
    sent = len(ssh.commands)
    mac = CAMERA_MAC + payload if payload else "not a mac"
    with pytest.raises(ValueError, match="not a MAC"):
        await router.quarantine(LanDevice(mac=mac))
    with pytest.raises(ValueError, match="not a MAC"):
        await router.release(QuarantineRecord(mac=mac, name=quarantine_name(CAMERA_MAC)))
    assert len(ssh.commands) == sent


async def test_names_never_reach_a_command_and_addresses_arrive_as_data(
    ssh: SshEmulator, ssh_router_for: Callable[..., LinuxSshRouter], scratch: Path
) -> None:
    router = ssh_router_for()
    await router.connect()
    device = LanDevice(
        mac=CAMERA_MAC.upper().replace(":", "-"),
        ipv4=("192.168.77.2", f"192.168.77.3; touch {CANARY}"),
        ipv6=(f"fe80::1%$(touch {CANARY})",),
        hostname=f"$(touch {CANARY})",
        name=f"`touch {CANARY}`",
    )
    sent = len(ssh.commands)
    await router.quarantine(device)
    wire = "\n".join(ssh.commands[sent:] + ssh.stdins[sent:])
    assert "192.168.77.3" not in wire  # not an address: never sent
    assert ssh.stdins[sent] == nft_quarantine.add_script(CAMERA_MAC)  # the normalised MAC only
    cut = ssh.commands[-1]
    assert shlex.split(cut)[-2:] == ["192.168.77.2", f"fe80::1%$(touch {CANARY})"]
    echoed = (await _sh(_echoing(cut, nft_quarantine.CONNTRACK_SCRIPT), scratch)).split(b"\0")
    assert [arg.decode() for arg in echoed[:-1]] == shlex.split(cut)[4:]
    # The names appear nowhere but in that one quoted address argument.
    assert wire.count(CANARY) == 1
