"""One SSH connection to a router, pinned to its host key, reused and re-opened when it drops.

``SshSession`` opens the connection on first use and keeps it for every later
command; when the server closes it (reboot, idle timeout) or it breaks, the
next command opens a new one, and a command that failed because the
connection went away runs once more on the new one (callers send only reads
and idempotent changes). The server's host key must be exactly the pinned key
(asyncssh ``known_hosts`` holding that one key, which also limits the host-key
algorithm to the pinned key's): another key raises RouterHostKeyError naming
the key it presented, before any login. No ~/.ssh/config, known_hosts file or
agent of the Home Assistant host is used.

Commands run through the server's exec request (the login shell runs them), one
channel each, argv joined with ``shlex.join``. Output is read in chunks up to
``max_bytes`` (more raises RouterResponseError) within ``timeout`` seconds.
"""

import asyncio
import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import asyncssh

from .base import RouterAuthError, RouterConnectionError, RouterHostKeyError, RouterResponseError

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT: Final = 22
DEFAULT_TIMEOUT: Final = 10.0
"""Seconds to connect and log in, and for the short commands."""
COMMAND_TIMEOUT: Final = 60.0
"""Seconds for one poll: the whole table of a busy router, over a slow link."""
MAX_OUTPUT: Final = 64 * 1024 * 1024
"""Bytes of output one command may send: 65,536 IPv6 entries take about 30 MiB."""
MAX_STDERR: Final = 64 * 1024
KEEPALIVE: Final = 30.0
HOST_KEY_ALGS: Final = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
)
"""The key ``fetch_host_key`` asks for, best first (an ed25519 key where there is one)."""


@dataclass(frozen=True, slots=True)
class HostKey:
    """An SSH server's host key, as the config flow shows it and pins it."""

    public_key: str
    """OpenSSH format: ``ssh-ed25519 AAAA...``."""
    fingerprint: str
    """As ``ssh-keygen -lf`` prints it: ``SHA256:...``."""
    algorithm: str


def describe_key(key: asyncssh.SSHKey) -> HostKey:
    """Public key text, fingerprint and algorithm of a key."""
    text = key.export_public_key("openssh").decode().split()
    return HostKey(" ".join(text[:2]), key.get_fingerprint("sha256"), text[0])


def parse_host_key(public_key: str) -> HostKey:
    """Check a pinned key (OpenSSH format); raises ValueError when it is none."""
    try:
        return describe_key(asyncssh.import_public_key(public_key.strip()))
    except (asyncssh.KeyImportError, UnicodeError) as err:
        raise ValueError(f"not an OpenSSH public key: {err}") from err


async def fetch_host_key(
    host: str,
    port: int = DEFAULT_PORT,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
) -> HostKey:
    """The host key the server presents (ed25519 first), to show and pin in the config flow."""
    try:
        async with asyncio.timeout(timeout):
            key = await asyncssh.get_server_host_key(
                host, port, server_host_key_algs=list(HOST_KEY_ALGS), config=None
            )
    except (asyncssh.Error, OSError, TimeoutError) as err:
        raise RouterConnectionError(f"cannot reach SSH on {host}:{port}: {_why(err)}") from err
    if key is None:
        raise RouterResponseError(f"{host}:{port} presented no host key")
    return describe_key(key)


@dataclass(frozen=True, slots=True)
class CommandOutput:
    """What one command printed, and its exit status (None: it never said)."""

    status: int | None
    stdout: bytes
    stderr: str


class _PinnedClient(asyncssh.SSHClient):
    """Records a host key that is not the pinned one (never accepting it) and a lost link."""

    def __init__(self) -> None:
        self.presented: asyncssh.SSHKey | None = None
        self.lost = False

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        """Called only for a key that is not the pinned one: remember it, refuse it."""
        self.presented = key
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The server closed the connection or it broke: the next call opens another."""
        self.lost = True


@dataclass(eq=False, kw_only=True)
class SshSession:
    """The SSH connection to one router (see the module docstring)."""

    host: str
    port: int
    username: str
    host_key: str
    """The pinned host key, OpenSSH format."""
    password: str | None = field(default=None, repr=False)
    client_key: str | None = field(default=None, repr=False)
    """OpenSSH private key text (no passphrase)."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds to connect and log in."""
    command_timeout: float = COMMAND_TIMEOUT
    """Seconds a command may take, unless ``run`` is given another."""
    max_bytes: int = MAX_OUTPUT
    connections_opened: int = field(default=0, init=False)
    _conn: asyncssh.SSHClientConnection | None = field(default=None, init=False, repr=False)
    _client: _PinnedClient | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"

    async def _open(self) -> asyncssh.SSHClientConnection:
        try:
            pinned = asyncssh.import_public_key(self.host_key.strip())
        except (asyncssh.KeyImportError, UnicodeError) as err:
            raise RouterHostKeyError(
                f"the pinned host key of {self.host} is not valid: {err}"
            ) from err
        keys = None
        if self.client_key:
            try:
                keys = [asyncssh.import_private_key(self.client_key)]
            except (asyncssh.KeyImportError, UnicodeError) as err:
                raise RouterAuthError(
                    f"the SSH key cannot be read (OpenSSH private key without passphrase): {err}"
                ) from err
        client = _PinnedClient()
        try:
            async with asyncio.timeout(self.timeout):
                conn = await asyncssh.connect(
                    self.host,
                    self.port,
                    client_factory=lambda: client,
                    username=self.username,
                    password=self.password,
                    client_keys=keys,
                    known_hosts=([pinned], [], []),
                    config=None,
                    agent_path=None,
                    keepalive_interval=KEEPALIVE,
                    connect_timeout=self.timeout,
                )
        except asyncssh.HostKeyNotVerifiable as err:
            raise self._host_key_error(client.presented, pinned) from err
        except asyncssh.KeyExchangeFailed as err:
            if "host key" in str(err).lower():
                raise self._host_key_error(None, pinned) from err
            raise RouterConnectionError(
                f"SSH key exchange with {self.where} failed: {err}"
            ) from err
        except asyncssh.PermissionDenied as err:
            raise RouterAuthError(
                f"{self.where} refused the SSH login of {self.username!r}: {_why(err)}"
            ) from err
        except (asyncssh.Error, OSError, TimeoutError) as err:
            raise RouterConnectionError(f"cannot reach SSH on {self.where}: {_why(err)}") from err
        self.connections_opened += 1
        self._client = client
        return conn

    def _host_key_error(
        self, presented: asyncssh.SSHKey | None, pinned: asyncssh.SSHKey
    ) -> RouterHostKeyError:
        expected = pinned.get_fingerprint("sha256")
        if presented is None:
            return RouterHostKeyError(
                f"{self.where} offers no {pinned.algorithm.decode()} host key; the pinned "
                f"key is {expected}. If the router was reinstalled, confirm its new key"
            )
        shown = describe_key(presented)
        return RouterHostKeyError(
            f"the host key of {self.where} changed: it presented {shown.fingerprint}, the "
            f"pinned key is {expected}. Not connecting; if the router was reinstalled, "
            "confirm its new key",
            fingerprint=shown.fingerprint,
            public_key=shown.public_key,
        )

    async def _connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is None or self._client is None or self._client.lost:
                self._drop()
                self._conn = await self._open()
            return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.abort()
        self._conn = None

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> CommandOutput:
        """Run ``shlex.join(argv)``; once more on a fresh connection when the first dropped.

        Raises ValueError, sending nothing, for an argument holding NUL: the server
        would cut the command line there.
        """
        if any("\0" in arg for arg in argv):
            raise ValueError("an SSH command argument holds NUL: not sent")
        command = shlex.join(argv)
        label = f"sh -c <script> {shlex.join(argv[3:])}" if argv[:2] == ["sh", "-c"] else command
        error: BaseException | None = None
        for _attempt in range(2):
            conn = await self._connection()
            try:
                output = await self._exec(
                    conn, command, stdin, timeout or self.command_timeout, label[:80]
                )
            except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, ConnectionError) as err:
                error = err
            else:
                if output.status is not None:
                    return output
                error = ConnectionResetError("the command ended without an exit status")
            self._drop()
            _LOGGER.debug("%s: connection dropped (%s), reconnecting", self.where, error)
        raise RouterConnectionError(
            f"the SSH connection to {self.where} keeps dropping: {_why(error or ValueError())}"
        ) from error

    async def _exec(
        self,
        conn: asyncssh.SSHClientConnection,
        command: str,
        stdin: str | None,
        timeout: float,  # noqa: ASYNC109
        label: str,
    ) -> CommandOutput:
        process = await conn.create_process(command, encoding=None)
        errors = asyncio.ensure_future(_read(process.stderr, MAX_STDERR, None))
        try:
            async with asyncio.timeout(timeout):
                if stdin is not None:
                    process.stdin.write(stdin.encode())
                process.stdin.write_eof()
                stdout = await _read(process.stdout, self.max_bytes, label)
                stderr = await errors
                await process.wait_closed()
        except TimeoutError as err:
            raise RouterConnectionError(
                f"{self.where} did not finish `{label}` within {timeout:g} s"
            ) from err
        finally:
            errors.cancel()
            process.close()
        return CommandOutput(process.returncode, stdout, stderr.decode(errors="replace"))

    async def close(self) -> None:
        """Close the connection; never raises."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.close()
        try:
            async with asyncio.timeout(self.timeout):
                await conn.wait_closed()
        except (asyncssh.Error, OSError, TimeoutError) as err:
            _LOGGER.debug("%s: closing the SSH connection: %s", self.where, err)


async def _read(stream: asyncssh.SSHReader[bytes], limit: int, label: str | None) -> bytes:
    """A stream to its end, at most ``limit`` bytes: more raises (stdout) or is dropped (stderr)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(1 << 16):
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif label is not None:
            raise RouterResponseError(
                f"`{label}` printed more than {limit} bytes: refusing to read on"
            )
    return b"".join(chunks)


def _why(err: BaseException) -> str:
    return str(err) or type(err).__name__
