"""OpenSSH's sshd in the lab router: its own config, host key and client key in a directory.

Only files in `directory` are written; the machine's /etc/ssh and its own sshd are never
used (the config names every file it needs, and `-f` points sshd at it). sshd listens on
one address only (the router's LAN address, inside the router namespace) and lets root log
in with the generated client key, nothing else.

sshd needs its privilege separation directory /run/sshd. Rather than create it on the
machine, sshd starts in a mount namespace of its own (`unshare --mount`, private
propagation) with a fresh tmpfs on /run: nothing of it shows outside.
"""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .netlab import LabError, Namespace, run

SSHD: Final = "/usr/sbin/sshd"
"""sshd must be started by its absolute path (it re-executes itself)."""
PORT: Final = 22
START_TIMEOUT: Final = 5.0
CONFIG: Final = """\
ListenAddress {address}:{port}
HostKey {directory}/host_ed25519
PidFile none
AuthorizedKeysFile {directory}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
AllowUsers root
MaxStartups 10:30:20
LogLevel ERROR
"""
START: Final = 'mount -t tmpfs -o mode=0755 phl-run /run && mkdir -m 0755 /run/sshd && exec "$@"'
"""Runs in the private mount namespace: a tmpfs over /run with /run/sshd, then sshd."""


@dataclass(frozen=True)
class SshServer:
    """The generated files and what a client needs to pin and log in."""

    directory: Path
    config: Path
    host_key: str
    """The host's public key, OpenSSH format (what the config flow pins)."""
    client_key: str
    """The client's private key, OpenSSH format (no passphrase)."""

    def argv(self) -> list[str]:
        """The command to run inside the router namespace (foreground, logs to stderr)."""
        unshare = ["unshare", "--mount", "--propagation", "private"]
        return [*unshare, "sh", "-c", START, "phl-sshd", SSHD, "-D", "-e", "-f", str(self.config)]


def missing() -> list[str]:
    """Why sshd cannot run here (empty when it can)."""
    return [
        f"'{tool}' is not installed (Debian package openssh-server)"
        for tool in (SSHD, "ssh-keygen")
        if shutil.which(tool) is None
    ]


def _keygen(path: Path, comment: str) -> str:
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_suffix(".pub").read_text().strip()


def prepare(directory: Path, address: str, port: int = PORT) -> SshServer:
    """Write host key, client key, authorized_keys and sshd_config into `directory`."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_public = _keygen(directory / "host_ed25519", "phonehome-lab-router")
    client_public = _keygen(directory / "client_ed25519", "phonehome-lab-hass")
    (directory / "authorized_keys").write_text(client_public + "\n")
    config = directory / "sshd_config"
    config.write_text(CONFIG.format(address=address, port=port, directory=directory))
    return SshServer(
        directory=directory,
        config=config,
        host_key=" ".join(host_public.split()[:2]),
        client_key=(directory / "client_ed25519").read_text(),
    )


def wait_listening(router: Namespace, port: int = PORT, timeout: float = START_TIMEOUT) -> None:
    """Wait until something listens on TCP `port` in the router namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if router.run("ss", "-Hltn", f"sport = :{port}").stdout.strip():
            return
        time.sleep(0.05)
    raise LabError(f"nothing listens on TCP {port} in {router.name} after {timeout:g} s")
