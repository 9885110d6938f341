"""Any Linux router over SSH (OpenWrt with dropbear, UniFi OS, VyOS, a Debian box).

One SSH connection (routers/ssh_session.py), pinned to the host key the owner
confirmed at setup (``fetch_host_key``), opened by ``connect`` and reused by
every later call, re-opened when the router drops it.

Commands are fixed POSIX sh scripts run as ``sh -c SCRIPT phonehome ARGS``:
every value (paths, addresses, markers) travels as a positional argument quoted
with ``shlex.quote``, and nft scripts travel on stdin. A poll is one command
(routers/linux_poll.py) that prints the conntrack count, the table
(``/proc/net/nf_conntrack``, else ``conntrack -L -o extended``), each DHCP lease
file, ``ip neigh show`` and the integration's nft table; the output is capped
(``max_bytes``) and parsed on a worker thread. Over SSH the table is read
whatever its size: no ubus message limit applies, and ``conntrack_cap`` is only
reported.

Quarantine (routers/nft_quarantine.py): the device's MAC in the set of the
integration's ``inet phonehome`` table, read back, then ``conntrack -D -s`` for
each of its addresses.

Rights: root, or a user allowed ``sudo -n`` (no password) for ``cat
/proc/net/nf_conntrack``, ``conntrack`` and ``nft``; ``connect`` finds out which.
"""

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from ..core.addresses import normalize_mac
from . import nft_quarantine as nft
from .base import (
    Capabilities,
    LanDevice,
    QuarantineRecord,
    RouterError,
    RouterInfo,
    RouterPermissionError,
    RouterResponseError,
    RouterVerificationError,
    Snapshot,
    quarantine_name,
)
from .linux_poll import (
    CONNTRACK_PATH,
    COUNT_PATH,
    DENIED,
    HELP,
    INFO_SCRIPT,
    POLL_SCRIPT,
    parse_identity,
    parse_poll,
)
from .ssh_session import (
    COMMAND_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    MAX_OUTPUT,
    CommandOutput,
    HostKey,
    SshSession,
    fetch_host_key,
    parse_host_key,
)

__all__ = ["HostKey", "LinuxSshRouter", "fetch_host_key", "parse_host_key"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_CONNTRACK_CAP: Final = 65536
"""Only reported: over SSH the table is read whatever its size (no ubus message limit);
``max_bytes`` bounds what one poll may send."""
DEFAULT_LEASES_PATHS: Final = (
    "/tmp/dhcp.leases",  # OpenWrt dnsmasq
    "/tmp/hosts/odhcpd",  # OpenWrt odhcpd (DHCPv6, and DHCPv4 when main)
    "/var/lib/misc/dnsmasq.leases",  # Debian, Ubuntu, Alpine dnsmasq
    "/var/lib/dhcp/dhcpd.leases",  # ISC dhcpd
)


class LinuxSshRouter:
    """A Linux router reached over SSH (implements ``Router``)."""

    kind = "linux_ssh"

    def __init__(  # noqa: PLR0913
        self,
        host: str,
        port: int = DEFAULT_PORT,
        username: str = "root",
        *,
        host_key: str,
        password: str | None = None,
        client_key: str | None = None,
        leases_paths: Sequence[str] = DEFAULT_LEASES_PATHS,
        conntrack_cap: int = DEFAULT_CONNTRACK_CAP,
        timeout: float = DEFAULT_TIMEOUT,
        command_timeout: float = COMMAND_TIMEOUT,
        max_bytes: int = MAX_OUTPUT,
    ) -> None:
        self.host = host
        self.leases_paths = tuple(leases_paths)
        self.conntrack_cap = conntrack_cap
        self.session = SshSession(
            host=host,
            port=port,
            username=username,
            host_key=host_key,
            password=password,
            client_key=client_key,
            timeout=timeout,
            command_timeout=command_timeout,
            max_bytes=max_bytes,
        )
        self.sudo = False
        """Privileged commands run through ``sudo -n`` (the user is not root)."""
        self.nft_installed = False
        self.nft_ok = False
        """nft is installed and this user may run it (as root or through sudo)."""
        self.table_source = "none"
        """How ``connect`` found the table readable: "proc", "conntrack" or "none"."""

    def _as(self, *argv: str) -> list[str]:
        """A privileged command: through ``sudo -n`` when the user is not root."""
        return ["sudo", "-n", *argv] if self.sudo else list(argv)

    # ------------------------------------------------------------ Router

    async def connect(self) -> RouterInfo:
        """Open the connection, identify the router and find out this user's rights."""
        output = await self.session.run(
            ["sh", "-c", INFO_SCRIPT, "phonehome"], timeout=self.session.timeout
        )
        identity = parse_identity(output.stdout, output.status, self.session.where)
        self.sudo = identity.sudo
        self.nft_installed = identity.nft_installed
        self.nft_ok = identity.nft_ok
        self.table_source = identity.table_source
        return identity.info

    async def check_access(self, *, quarantine: bool = False) -> None:
        """Raise RouterPermissionError when the table (or, asked, nft) is out of reach."""
        if self.table_source == "none":
            raise RouterPermissionError(
                f"the SSH user may read neither {CONNTRACK_PATH} nor `conntrack -L`: log in "
                f"as root or allow it `sudo -n` ({HELP})",
                acl=f"read {CONNTRACK_PATH}",
            )
        if quarantine and not self.nft_ok:
            raise self._no_nft()

    def _no_nft(self) -> RouterPermissionError:
        if not self.nft_installed:
            return RouterPermissionError(f"nft is not installed on {self.host} ({HELP})", acl="nft")
        return RouterPermissionError(
            f"the SSH user may not run nft: log in as root or allow it `sudo -n nft` ({HELP})",
            acl="nft",
        )

    async def snapshot(self) -> Snapshot:
        """One poll: one command, parsed off the event loop."""
        marker = "@@phonehome-" + secrets.token_hex(8)
        output = await self.session.run(
            [
                "sh",
                "-c",
                POLL_SCRIPT,
                "phonehome",
                marker,
                "1" if self.sudo else "0",
                CONNTRACK_PATH,
                COUNT_PATH,
                *self.leases_paths,
            ]
        )
        poll = await asyncio.to_thread(parse_poll, output.stdout, output.stderr, marker)
        flows = poll.table.flows
        return Snapshot(
            taken_at=datetime.now(UTC),
            flows=flows,
            devices=poll.devices,
            capabilities=Capabilities(
                byte_counters=any(flow.total_bytes is not None for flow in flows),
                quarantine=self.nft_ok,
                cut_live_flows=self.nft_ok,
                table_source=poll.source,
            ),
            conntrack_count=poll.count,
            parse_stats=poll.table.stats,
            quarantined=poll.quarantined,
        )

    async def quarantine(self, device: LanDevice) -> QuarantineRecord:
        """Add the device's MAC to the set, read it back, then delete its conntrack entries."""
        if not self.nft_ok:
            raise self._no_nft()
        mac = _mac(device.mac)
        await self._nft_apply(nft.add_script(mac))
        state = await self._read_table()
        if not state.holds(mac):
            raise RouterVerificationError(
                f"nft took the quarantine of {mac} but `nft list table inet phonehome` does "
                "not show it in force (element and forward chain)"
            )
        addresses = _addresses(device)
        cut = await self._cut_flows(addresses) if addresses else False
        return QuarantineRecord(
            mac=mac, name=quarantine_name(mac), addresses=addresses, flows_cut=cut
        )

    async def release(self, record: QuarantineRecord) -> None:
        """Delete the record's element (and the table with the last one); gone is success."""
        if not self.nft_ok:
            raise self._no_nft()
        mac = _mac(record.mac)
        state = await self._read_table()
        if mac in state.elements or (state.exists and not state.elements):
            await self._nft_apply(
                nft.delete_script(
                    mac, present=mac in state.elements, last=state.elements.keys() <= {mac}
                )
            )
            state = await self._read_table()
        if mac in state.elements:
            raise RouterVerificationError(
                f"{mac} is still in the nft set inet phonehome quarantined"
            )

    async def close(self) -> None:
        """Close the connection; never raises."""
        await self.session.close()

    # ------------------------------------------------------------ quarantine

    async def _nft_apply(self, script: str) -> None:
        output = await self.session.run(
            self._as(*nft.APPLY), stdin=script, timeout=self.session.timeout
        )
        if output.status != 0:
            raise self._nft_error(output)

    async def _read_table(self) -> nft.TableState:
        output = await self.session.run(self._as(*nft.LIST_TABLE), timeout=self.session.timeout)
        if output.status != 0:
            if nft.NO_SUCH_TABLE in output.stderr:
                return nft.ABSENT
            raise self._nft_error(output)
        try:
            return nft.parse_table(output.stdout.decode(errors="replace"))
        except ValueError as err:
            raise RouterResponseError(f"nft -j list table inet phonehome: {err}") from err

    def _nft_error(self, output: CommandOutput) -> RouterError:
        message = output.stderr.strip()[-300:]
        if DENIED.search(message):
            return RouterPermissionError(
                f"the SSH user may not run nft: {message} ({HELP})", acl="nft"
            )
        return RouterResponseError(f"nft failed (exit {output.status}): {message}")

    async def _cut_flows(self, addresses: tuple[str, ...]) -> bool:
        """``conntrack -D -s`` each address; False when conntrack is missing or refused."""
        output = await self.session.run(
            ["sh", "-c", nft.CONNTRACK_SCRIPT, "phonehome", "1" if self.sudo else "0", *addresses],
            timeout=self.session.timeout,
        )
        cut = nft.flows_cut(output.stdout.decode(errors="replace"))
        if not cut:
            _LOGGER.info(
                "%s: conntrack -D %s (%s); the nft chain still stops the device's flows",
                self.session.where,
                "is not installed" if cut is None else "failed",
                output.stderr.strip()[-200:],
            )
        return bool(cut)


def _mac(value: str) -> str:
    mac = normalize_mac(value)
    if mac is None:
        raise ValueError(f"not a MAC address: {value!r}")
    return mac


def _addresses(device: LanDevice) -> tuple[str, ...]:
    """The device's addresses that are addresses (anything else never reaches a command)."""
    valid = []
    for address in (*device.ipv4, *device.ipv6):
        try:
            valid.append(str(ipaddress.ip_address(address)))
        except ValueError:
            _LOGGER.warning("not cutting the flows of %r: not an IP address", address)
    return tuple(dict.fromkeys(valid))
