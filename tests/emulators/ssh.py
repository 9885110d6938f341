"""An SSH server emulating a Linux router, for routers/linux_poll.py.

An asyncssh server on 127.0.0.1 (a free port) with a generated ed25519 host key,
password and public-key authentication. Each exec request's command line is
recorded exactly (``commands``), split as a POSIX shell would (``shlex.split``)
and answered by interpreting it against the state the test controls:

- ``files``: path -> text (/proc/net/nf_conntrack, the count, lease files);
  /proc/net/nf_conntrack is readable by root only, as on a real kernel (0440);
- ``neigh``: what ``ip neigh show`` prints; ``conntrack_list``: what
  ``conntrack -L -o extended`` prints;
- ``nft``: an in-memory ``inet phonehome`` table that takes the nft scripts the
  router sends (``nft -f -``: table / set / chain declarations, ``flush chain``,
  the two rules, ``add element``, ``delete element``, ``delete table``; anything
  else is a syntax error and changes nothing) and prints ``nft -j list table``
  in the shape nftables 1.0.6 prints (tests/routers/fixtures/linux_ssh);
- ``deleted``: addresses ``conntrack -D -s`` was run for.

The router's sh scripts (identify, poll, conntrack -D) are recognised by their
text and answered as the real scripts would answer on such a router
(tests/routers/test_linux_poll.py also runs them in a real shell).

Switches: ``drop()`` closes every connection, ``delay`` (seconds before each
answer), ``garbage`` (every command prints noise), ``uid`` / ``sudo`` (a user
that is not root, with or without ``sudo -n``), ``nft_installed``,
``conntrack_installed``, ``nft_ignores`` (nft takes scripts but changes nothing),
``hang_up`` (every command closes the connection); ``faults``
(tests/emulators/faults.py: delay, cut, 100 MiB, wrong shape, actions on a
command's arrival), ``reboot()`` and ``stop()`` / ``start(port)``.
"""

import asyncio
import copy
import ipaddress
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Final

import asyncssh

from custom_components.phonehome.routers import linux_poll, nft_quarantine
from tests.emulators.faults import Fault, Faults

CONNTRACK_PATH: Final = linux_poll.CONNTRACK_PATH
COUNT_PATH: Final = linux_poll.COUNT_PATH
ROOT_ONLY: Final = frozenset({CONNTRACK_PATH})
NOT_PERMITTED: Final = "Error: Could not process rule: Operation not permitted\n"
NO_SUCH: Final = (
    "Error: No such file or directory\nlist table inet phonehome\n                ^^^^^^^^^\n"
)
SUDO_DENIED: Final = "sudo: a password is required\n"
WRONG_SHAPE: Final = '{"nftables": {"table": "not a list"}}\n'
"""Valid JSON where nft prints a list of objects."""
SCRIPTS: Final = {
    linux_poll.INFO_SCRIPT: "info",
    linux_poll.POLL_SCRIPT: "poll",
    nft_quarantine.CONNTRACK_SCRIPT: "conntrack -D",
}
_RULE: Final = re.compile(
    r"^(ip6?) daddr != \{ ([^}]*) \} ether saddr @quarantined reject with icmpx type admin-prohibited$"
)
_ADD: Final = re.compile(
    r'^add element inet phonehome quarantined \{ ([0-9a-f:]{17}) comment "(phonehome_[0-9a-f]{12})" \}$'
)
_DELETE: Final = re.compile(r"^delete element inet phonehome quarantined \{ ([0-9a-f:]{17}) \}$")
_DECLARATION: Final = [
    "table inet phonehome {",
    "set quarantined {",
    "type ether_addr",
    "counter",
    "}",
    "chain forward {",
    "type filter hook forward priority filter - 10; policy accept;",
    "}",
    "}",
]
METAINFO: Final = {
    "metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}
}


@dataclass
class NftTable:
    """``table inet phonehome`` as the kernel holds it."""

    exists: bool = False
    chain: bool = False
    rules: dict[str, list[str]] = field(default_factory=dict)
    """Family ("ip", "ip6") -> the destinations its rule exempts."""
    elements: dict[str, dict[str, Any]] = field(default_factory=dict)
    """MAC -> {"comment", "packets", "bytes"}."""

    def apply(self, script: str) -> str | None:
        """Run an nft script in one transaction; the error nft prints, or None."""
        work = copy.deepcopy(self)
        lines = [line.strip() for line in script.splitlines() if line.strip()]
        index = 0
        while index < len(lines):
            line = lines[index]
            if lines[index : index + len(_DECLARATION)] == _DECLARATION:
                work.exists = work.chain = True
                index += len(_DECLARATION)
                continue
            if line == "table inet phonehome {" and lines[index + 1] == "chain forward {":
                index += 2
                while lines[index] != "}":
                    if not work.chain or not (match := _RULE.match(lines[index])):
                        return f"Error: syntax error, unexpected {lines[index]!r}\n"
                    work.rules[match.group(1)] = [p.strip() for p in match.group(2).split(",")]
                    index += 1
                if lines[index + 1] != "}":
                    return "Error: syntax error, unexpected end of file\n"
                index += 2
                continue
            if error := work._command(line):
                return error
            index += 1
        self.__dict__.update(work.__dict__)
        return None

    def _command(self, line: str) -> str | None:
        if line == "flush chain inet phonehome forward":
            if not self.chain:
                return "Error: No such file or directory\n"
            self.rules = {}
        elif match := _ADD.match(line):
            if not self.exists:
                return "Error: No such file or directory\n"
            self.elements.setdefault(
                match.group(1), {"comment": match.group(2), "packets": 0, "bytes": 0}
            )
        elif match := _DELETE.match(line):
            if self.elements.pop(match.group(1), None) is None:
                return "Error: Could not process rule: No such file or directory\n"
        elif line == "delete table inet phonehome":
            if not self.exists:
                return "Error: Could not process rule: No such file or directory\n"
            self.__dict__.update(NftTable().__dict__)
        else:
            return f"Error: syntax error, unexpected {line!r}\n"
        return None

    def listing(self) -> dict[str, Any]:
        """``nft -j list table inet phonehome``, in nftables 1.0.6's shape."""
        ours = {"family": "inet", "table": "phonehome"}
        nft_set: dict[str, Any] = {
            "family": "inet",
            "name": "quarantined",
            "table": "phonehome",
            "type": "ether_addr",
            "handle": 2,
        }
        if self.elements:
            nft_set["elem"] = [
                {
                    "elem": {
                        "val": mac,
                        "comment": element["comment"],
                        "counter": {"packets": element["packets"], "bytes": element["bytes"]},
                    }
                }
                for mac, element in sorted(self.elements.items())
            ]
        nft_set["stmt"] = [{"counter": None}]
        items: list[dict[str, Any]] = [
            METAINFO,
            {"table": {"family": "inet", "name": "phonehome", "handle": 1}},
            {"set": nft_set},
        ]
        if self.chain:
            items.append(
                {
                    "chain": {
                        **ours,
                        "name": "forward",
                        "handle": 1,
                        "type": "filter",
                        "hook": "forward",
                        "prio": -10,
                        "policy": "accept",
                    }
                }
            )
        for handle, (family, prefixes) in enumerate(sorted(self.rules.items()), start=8):
            items.append(
                {
                    "rule": {
                        **ours,
                        "chain": "forward",
                        "handle": handle,
                        "expr": _expr(family, prefixes),
                    }
                }
            )
        return {"nftables": items}


def _expr(family: str, prefixes: list[str]) -> list[dict[str, Any]]:
    members: list[Any] = []
    for text in sorted(prefixes, key=ipaddress.ip_network):
        network = ipaddress.ip_network(text)
        single = network.prefixlen == network.max_prefixlen
        members.append(
            str(network.network_address)
            if single
            else {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}
        )
    return [
        {
            "match": {
                "op": "!=",
                "left": {"payload": {"protocol": family, "field": "daddr"}},
                "right": {"set": members},
            }
        },
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ether", "field": "saddr"}},
                "right": "@quarantined",
            }
        },
        {"reject": {"type": "icmpx", "expr": "admin-prohibited"}},
    ]


@dataclass
class _Answer:
    stdout: str = ""
    stderr: str = ""
    status: int = 0


class SshEmulator:
    """The router's SSH server; ``start`` it, point a LinuxSshRouter at ``port``."""

    def __init__(self) -> None:
        self.username = "root"
        self.password = "secret"
        self.authorized_keys: list[asyncssh.SSHKey] = []
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.files: dict[str, str] = {}
        self.neigh = ""
        self.conntrack_list = ""
        self.nft = NftTable()
        self.deleted: list[str] = []
        self.commands: list[str] = []
        self.stdins: list[str] = []
        self.logins: list[str] = []
        self.connections: list[asyncssh.SSHServerConnection] = []
        self.hostname = "gw"
        self.machine_id = "5f0e5ea51a2c4f6b8d3c9a7e1b2d4c6f"
        self.mac = "02:77:00:00:00:01"
        self.model = "Linksys E8450 (UBI)"
        self.firmware = "OpenWrt 24.10.0"
        self.uid = 0
        self.sudo = False
        self.nft_installed = True
        self.conntrack_installed = True
        self.nft_ignores = False
        self.delay = 0.0
        self.garbage = False
        self.hang_up = False
        """Close the connection on every command, before it answers."""
        self.port = 0
        self.faults = Faults()
        """Shared fault injection, by command name (``name_of``)."""
        self._server: asyncssh.SSHAcceptor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def public_host_key(self) -> str:
        return self.host_key.export_public_key().decode().strip()

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1, ``port`` (0: a free one)."""
        self._server = await asyncssh.create_server(
            lambda: _Server(self),
            "127.0.0.1",
            port,
            server_host_keys=[self.host_key],
            process_factory=self._process,
            encoding="utf-8",
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def stop(self) -> None:
        """Stop listening and drop every connection (unreachable); ``start`` again later."""
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def reboot(self) -> None:
        """The router restarts: connections dropped, the nft table (kernel state) and the
        conntrack table gone; files on disk stay."""
        self.drop()
        self.nft = NftTable()
        self.files[CONNTRACK_PATH] = ""
        self.conntrack_list = ""

    @staticmethod
    def name_of(command: str) -> str:
        """A command's name for ``faults``: ``poll``, ``info``, ``conntrack -D``, ``nft -f -``..."""
        try:
            argv = shlex.split(command)
        except ValueError:
            return command
        if argv[:2] == ["sh", "-c"] and len(argv) > 2:
            return SCRIPTS.get(argv[2], command)
        return " ".join(argv[2:] if argv[:2] == ["sudo", "-n"] else argv)

    def drop(self) -> None:
        """Close every open connection, as a rebooting router or an idle timeout would."""
        for conn in self.connections:
            conn.close()
        self.connections.clear()

    @property
    def privileged(self) -> bool:
        return self.uid == 0 or self.sudo

    # ------------------------------------------------------------ commands

    async def _process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        if (task := asyncio.current_task()) is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        command = process.command or ""
        self.commands.append(command)
        name = self.name_of(command)
        self.faults.arrived(name)
        connection = process.channel.get_connection()
        if self.hang_up or connection not in self.connections:  # hung up, or dropped just now
            connection.close()
            return
        stdin = await process.stdin.read()
        self.stdins.append(stdin)
        fault = self.faults.answer_with()
        delay = self.faults.delay if fault is Fault.DELAY else self.delay
        if delay:
            await asyncio.sleep(delay)
        if fault is Fault.HUGE:
            for chunk in self.faults.huge(b"", b"\n"):
                process.stdout.write(chunk.decode())
                await process.stdout.drain()
            process.exit(0)
            return
        answer = (
            _Answer("\x00\x01garbage \x7f{[\n" * 3) if self.garbage else self.answer(command, stdin)
        )
        if fault is Fault.WRONG_SHAPE:
            answer = _Answer(_wrong_shape(answer.stdout), answer.stderr, answer.status)
        if fault is Fault.CUT:
            process.stdout.write(answer.stdout[: len(answer.stdout) // 2])
            await process.stdout.drain()
            connection.close()
            return
        process.stdout.write(answer.stdout)
        process.stderr.write(answer.stderr)
        process.exit(answer.status)

    def answer(self, command: str, stdin: str) -> _Answer:
        """What the router's shell would print for this command line."""
        argv = shlex.split(command)
        if argv[:2] == ["sh", "-c"] and len(argv) > 3:
            script, args = argv[2], argv[4:]
            if script == linux_poll.INFO_SCRIPT:
                return self._info()
            if script == linux_poll.POLL_SCRIPT:
                return self._poll(*args)
            if script == nft_quarantine.CONNTRACK_SCRIPT:
                return self._conntrack_delete(args)
        sudo = argv[:2] == ["sudo", "-n"]
        if sudo:
            if not self.sudo:
                return _Answer(stderr=SUDO_DENIED, status=1)
            argv = argv[2:]
        root = self.uid == 0 or sudo
        if argv[:1] == ["nft"] and self.nft_installed:
            return self._nft(argv[1:], stdin, root)
        return _Answer(stderr=f"sh: {argv[0] if argv else ''}: not found\n", status=127)

    def _readable(self, path: str) -> bool:
        return path in self.files and (self.uid == 0 or path not in ROOT_ONLY)

    def _info(self) -> _Answer:
        sudo = self.uid != 0 and self.sudo
        lines = [
            f"uid={self.uid}",
            f"sudo={int(sudo)}",
            f"hostname={self.hostname}",
            f"machine_id={self.machine_id}",
            f"mac={self.mac}",
            f"model={self.model}",
            f"firmware={self.firmware}",
            f"nft={int(self.nft_installed)}",
        ]
        if self.nft_installed and self.privileged:
            lines.append("nft_ok=1")
        table = "none"
        if self._readable(CONNTRACK_PATH) or (sudo and CONNTRACK_PATH in self.files):
            table = "proc"
        elif self.conntrack_installed and self.privileged:
            table = "conntrack"
        lines.append(f"table={table}")
        return _Answer("".join(line + "\n" for line in lines))

    def _poll(self, marker: str, sudo: str, conntrack: str, count: str, *leases: str) -> _Answer:
        out: list[str] = []
        err: list[str] = []
        as_root = self.uid == 0 or (sudo == "1" and self.sudo)

        def section(name: str, body: str, status: int) -> None:
            out.append(f"{marker} {name}\n{body}\n{marker} end {status}\n")

        if count in self.files:
            section("count", self.files[count], 0)
        else:
            err.append(f"cat: can't open '{count}': No such file or directory\n")
            section("count", "", 1)
        if self._readable(conntrack):
            section("table proc", self.files[conntrack], 0)
        elif conntrack in self.files and sudo == "1":
            section("table proc", self.files[conntrack] if self.sudo else "", 0 if self.sudo else 1)
        elif self.conntrack_installed:
            if as_root:
                section("table conntrack", self.conntrack_list, 0)
                err.append("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n")
            else:
                err.append(
                    "conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted\n"
                )
                section("table conntrack", "", 1)
        else:
            section("table none", "", 127)
        for index, path in enumerate(leases, start=1):
            if path in self.files:
                section(f"leases {index}", self.files[path], 0)
        section("neigh", self.neigh, 0)
        if self.nft_installed:
            listing = self._nft(list(nft_quarantine.LIST_TABLE[1:]), "", as_root)
            section("nft", listing.stdout + listing.stderr, listing.status)
        return _Answer("".join(out), "".join(err))

    def _conntrack_delete(self, args: list[str]) -> _Answer:
        if not self.conntrack_installed:
            return _Answer("missing\n")
        sudo, addresses = args[0], args[1:]
        lines = []
        for address in addresses:
            if not (self.uid == 0 or (sudo == "1" and self.sudo)):
                lines.append(
                    "deleted 1 conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted"
                )
                continue
            self.deleted.append(address)
            table = self.files.get(CONNTRACK_PATH, "").splitlines()
            kept = [line for line in table if not _from(line, address)]
            self.files[CONNTRACK_PATH] = "".join(line + "\n" for line in kept)
            gone = len(table) - len(kept)
            lines.append(
                f"deleted {int(gone == 0)} conntrack v1.4.7 (conntrack-tools): {gone} flow entries have been deleted."
            )
        return _Answer("".join(line + "\n" for line in lines))

    def _nft(self, argv: list[str], stdin: str, root: bool) -> _Answer:
        if not root:
            return _Answer(stderr=NOT_PERMITTED, status=1)
        if argv == ["-f", "-"]:
            error = None if self.nft_ignores else self.nft.apply(stdin)
            return _Answer(stderr=error or "", status=1 if error else 0)
        if argv == list(nft_quarantine.LIST_TABLE[1:]):
            if not self.nft.exists:
                return _Answer(stderr=NO_SUCH, status=1)
            return _Answer(json.dumps(self.nft.listing()) + "\n")
        return _Answer(stderr="Error: syntax error\n", status=1)


def _wrong_shape(stdout: str) -> str:
    """What a command printed with every nft JSON listing replaced by valid JSON of another shape."""
    return "".join(
        WRONG_SHAPE if line.startswith('{"nftables"') else line
        for line in stdout.splitlines(keepends=True)
    )


def _from(line: str, address: str) -> bool:
    """The entry's original source is ``address`` (conntrack -D -s)."""
    match = re.search(r"\bsrc=(\S+)", line)
    return match is not None and ipaddress.ip_address(match.group(1)) == ipaddress.ip_address(
        address
    )


class _Server(asyncssh.SSHServer):
    def __init__(self, emulator: SshEmulator) -> None:
        self.emulator = emulator
        self.method = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.emulator.connections.append(conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def auth_completed(self) -> None:
        self.emulator.logins.append(f"{self.method}:{self.emulator.username}")

    def validate_password(self, username: str, password: str) -> bool:
        self.method = "password"
        return username == self.emulator.username and password == self.emulator.password

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self.method = "key"
        return username == self.emulator.username and any(
            key.public_data == known.public_data for known in self.emulator.authorized_keys
        )
