"""A throw-away router lab in Linux network namespaces, for tests and scripts/lab.

Everything the lab makes lives in namespaces named `phl<pid>-<role>`: the pid makes
parallel runs distinct, and lets a later run remove what a dead run left behind.
Links are created directly inside lab namespaces; the root namespace's links, addresses
and routes are never touched. Commands run as argument lists, never through a shell.
"""

import ipaddress
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from .traffic import REPLY_TIMEOUT, Probe, ProbeResult

PREFIX_STEM: Final = "phl"
"""Every lab namespace name starts with this, then the owner's pid and a dash."""
REQUIRED_TOOLS: Final = {"ip": "iproute2", "nft": "nftables", "conntrack": "conntrack"}
"""Command -> Debian package that provides it."""
COMMAND_TIMEOUT: Final = 10.0
"""Seconds any single lab command may take."""
TRAFFIC_SCRIPT: Final = Path(__file__).with_name("traffic.py")

_OWNED_NAME = re.compile(rf"^{PREFIX_STEM}(\d+)-")


class LabError(RuntimeError):
    """A lab command failed; the message names the command and its error output."""


def missing_requirements() -> list[str]:
    """Why this machine cannot run the lab (empty when it can)."""
    problems = []
    if not sys.platform.startswith("linux"):
        problems.append(f"network namespaces need Linux, not {sys.platform}")
    elif os.geteuid() != 0:
        problems.append("the lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
    problems.extend(
        f"'{tool}' is not installed (Debian package {package})"
        for tool, package in REQUIRED_TOOLS.items()
        if shutil.which(tool) is None
    )
    return problems


def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one command with a timeout; raise LabError when it fails and `check` is set."""
    command = shlex.join(argv)
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise LabError(f"`{command}` did not finish within {timeout:g} s") from err
    except OSError as err:
        raise LabError(f"`{command}` could not start: {err}") from err
    if check and done.returncode != 0:
        raise LabError(f"`{command}` exited {done.returncode}: {done.stderr.strip()}")
    return done


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces() -> list[str]:
    """Names of all named network namespaces (`ip netns list`)."""
    lines = run(["ip", "netns", "list"]).stdout.splitlines()
    return [line.split()[0] for line in lines if line.strip()]


def namespace_pids(name: str) -> list[int]:
    """Pids of the processes running inside a named namespace."""
    return [int(pid) for pid in run(["ip", "netns", "pids", name]).stdout.split()]


def delete_namespace(name: str) -> None:
    """Kill what still runs inside a namespace, then delete it."""
    for pid in namespace_pids(name):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    run(["ip", "netns", "delete", name])


def remove_stale_namespaces() -> list[str]:
    """Delete lab namespaces whose owning process is dead; return their names."""
    stale = [
        name
        for name in list_namespaces()
        if (owner := _OWNED_NAME.match(name)) and not pid_alive(int(owner.group(1)))
    ]
    for name in stale:
        delete_namespace(name)
    return stale


def _sysctl_path(key: str) -> str:
    """/proc/sys path of a dotted sysctl key."""
    return "/proc/sys/" + key.replace(".", "/")


@dataclass(frozen=True)
class Namespace:
    """A named network namespace and the commands that configure it."""

    name: str

    def argv(self, command: Sequence[str]) -> list[str]:
        """The argument list that runs `command` inside this namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def run(
        self,
        *command: str,
        stdin: str | None = None,
        timeout: float = COMMAND_TIMEOUT,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside this namespace."""
        return run(self.argv(command), stdin=stdin, timeout=timeout, check=check)

    def ip(self, *args: str) -> None:
        """Run `ip` against this namespace."""
        run(["ip", "-n", self.name, *args])

    def set_link_up(self, ifname: str) -> None:
        """Bring an interface up."""
        self.ip("link", "set", ifname, "up")

    def add_address(self, ifname: str, address: str) -> None:
        """Add an address in CIDR form; IPv6 skips duplicate detection so it is usable at once."""
        interface = ipaddress.ip_interface(address)
        extra = ["nodad"] if interface.version == 6 else []
        self.ip("address", "add", str(interface), "dev", ifname, *extra)

    def add_route(self, destination: str, via: str) -> None:
        """Route a prefix through a gateway."""
        network = ipaddress.ip_network(destination)
        self.ip(f"-{network.version}", "route", "add", str(network), "via", via)

    def set_sysctl(self, key: str, value: str) -> None:
        """Set a sysctl of this namespace (dotted key, as `sysctl` spells it)."""
        code = "import sys; open(sys.argv[1], 'w').write(sys.argv[2])"
        self.run(sys.executable, "-c", code, _sysctl_path(key), value)

    def can_read(self, path: str) -> bool:
        """Whether a file exists and is readable, as this namespace sees it."""
        return self.run("test", "-r", path, check=False).returncode == 0

    def read_file(self, path: str) -> str:
        """Read a file as this namespace sees it (/proc/net is per namespace)."""
        return self.run("cat", path).stdout

    def load_nftables(self, ruleset: str) -> None:
        """Load an nftables ruleset into this namespace."""
        self.run("nft", "-f", "-", stdin=ruleset)


class Helper:
    """A long-running process inside a namespace, with line-based stdin and stdout."""

    def __init__(
        self, name: str, process: subprocess.Popen[str], *, ends_on_eof: bool = True
    ) -> None:
        """Wrap a started process; `ends_on_eof`: it exits when its stdin closes."""
        self.name = name
        self.process = process
        self.ends_on_eof = ends_on_eof

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def read_line(self, timeout: float = COMMAND_TIMEOUT) -> str:
        """Wait for the next line the helper prints; raise LabError if none comes in time."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if ready else ""
        if not line:
            raise LabError(f"{self.name} (pid {self.pid}) printed nothing: {self.stop()}")
        return line

    def ask(self, line: str = "", timeout: float = COMMAND_TIMEOUT) -> str:
        """Send one line on stdin and return the line the helper answers."""
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()
        return self.read_line(timeout)

    def stop(self, timeout: float = 5.0) -> str:
        """Close stdin, then terminate, then kill; return the exit code and stderr. Idempotent."""
        process = self.process
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        first = [None] if self.ends_on_eof else []
        for escalate in (*first, process.terminate, process.kill):
            if process.poll() is not None:
                break
            if escalate is not None:
                escalate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        stderr = ""
        if process.poll() is not None and process.stderr and not process.stderr.closed:
            stderr = process.stderr.read()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        return f"exit {process.returncode}, stderr {stderr.strip()!r}"


class Lab:
    """Owns namespaces and helpers; closing it (always, via `with`) removes all of them."""

    def __init__(self, prefix: str | None = None) -> None:
        """Use `prefix` for namespace names; the default embeds this process's pid."""
        self.prefix = prefix or f"{PREFIX_STEM}{os.getpid()}-"
        self._namespaces: list[Namespace] = []
        self._helpers: list[Helper] = []

    def __enter__(self) -> Self:
        """Remove leftovers of dead runs, then hand out the lab."""
        remove_stale_namespaces()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Remove everything the lab made."""
        self.close()

    def add_namespace(self, role: str) -> Namespace:
        """Create a namespace `<prefix><role>`: loopback up, no IPv6 duplicate detection."""
        namespace = Namespace(self.prefix + role)
        run(["ip", "netns", "add", namespace.name])
        self._namespaces.append(namespace)
        for scope in ("all", "default"):
            namespace.set_sysctl(f"net.ipv6.conf.{scope}.accept_dad", "0")
        namespace.set_link_up("lo")
        return namespace

    def add_veth(self, left: Namespace, left_if: str, right: Namespace, right_if: str) -> None:
        """Connect two namespaces with a veth pair created inside them, and bring it up."""
        left.ip(
            "link", "add", left_if, "type", "veth", "peer", "name", right_if, "netns", right.name
        )
        left.set_link_up(left_if)
        right.set_link_up(right_if)

    def start(
        self,
        namespace: Namespace,
        command: Sequence[str],
        name: str,
        cwd: Path | None = None,
        *,
        ends_on_eof: bool = True,
    ) -> Helper:
        """Start a helper process inside a namespace (in `cwd`); the lab stops it on close.

        A helper that does not exit when its stdin closes (`ends_on_eof` False, e.g. sshd)
        is sent SIGTERM at once.
        """
        process = subprocess.Popen(
            namespace.argv(command),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        helper = Helper(name, process, ends_on_eof=ends_on_eof)
        self._helpers.append(helper)
        return helper

    def keep(self) -> list[str]:
        """Hand the namespaces over (scripts/lab up): `close` leaves them; returns their names."""
        names = [namespace.name for namespace in self._namespaces]
        self._namespaces.clear()
        return names

    def close(self) -> None:
        """Stop helpers, then delete namespaces, newest first; report what could not be undone."""
        failures = []
        while self._helpers:
            helper = self._helpers.pop()
            try:
                helper.stop()
            except (OSError, subprocess.SubprocessError) as err:
                failures.append(f"stopping {helper.name} (pid {helper.pid}): {err}")
        while self._namespaces:
            namespace = self._namespaces.pop()
            try:
                delete_namespace(namespace.name)
            except LabError as err:
                failures.append(str(err))
        if failures:
            raise LabError("lab cleanup failed: " + "; ".join(failures))


@dataclass(frozen=True)
class RouterLab:
    """A home network: `device` on the LAN, `router` forwarding to the `internet` namespace."""

    router: Namespace
    device: Namespace
    internet: Namespace
    device_v4: str
    device_v6: str
    internet_v4: tuple[str, ...]
    internet_v6: tuple[str, ...]
    marked_host: str
    """The router sets conntrack mark CT_MARK on flows to this internet host."""


LAN_V4: Final = "192.168.77.0/24"
LAN_V6: Final = "fd00:77::/64"
WAN_V4: Final = "203.0.113.0/24"
WAN_V6: Final = "2001:db8:1::/64"
INTERNET_V6_ROUTE: Final = "2001:db8::/32"
INTERNET_HOSTS: Final = 5
CT_MARK: Final = 42

ROUTER_RULESET: Final = """\
table inet phonehome_lab {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        iifname "{lan}" oifname "wan0" ip daddr {marked_host} ct mark set {mark}
        iifname "{lan}" oifname "wan0" accept
    }}
}}
"""
"""Forward LAN -> internet and the replies; referencing `ct` makes the kernel track flows.
One host's flows get a conntrack mark, as QoS or multi-WAN rules do on real routers."""


def _host(network: str, index: int) -> str:
    return str(ipaddress.ip_network(network)[index])


def _cidr(network: str, index: int) -> str:
    return f"{_host(network, index)}/{ipaddress.ip_network(network).prefixlen}"


def _add_router_namespaces(lab: Lab) -> tuple[Namespace, Namespace, Namespace]:
    """The router (forwarding, counting bytes), device and internet namespaces."""
    router = lab.add_namespace("router")
    device = lab.add_namespace("device")
    internet = lab.add_namespace("internet")
    for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
        router.set_sysctl(key, "1")
    router.set_sysctl("net.netfilter.nf_conntrack_acct", "1")
    return router, device, internet


def _connect_router(
    lab: Lab, router: Namespace, device: Namespace, internet: Namespace, lan_if: str
) -> RouterLab:
    """Address the LAN (on `lan_if`) and the WAN, route, and load the router's firewall."""
    lab.add_veth(router, "wan0", internet, "eth0")
    for network in (LAN_V4, LAN_V6):
        router.add_address(lan_if, _cidr(network, 1))
        device.add_address("eth0", _cidr(network, 2))
    for network in (WAN_V4, WAN_V6):
        router.add_address("wan0", _cidr(network, 1))
        for index in range(10, 10 + INTERNET_HOSTS):
            internet.add_address("eth0", _cidr(network, index))

    device.add_route(WAN_V4, _host(LAN_V4, 1))
    device.add_route(INTERNET_V6_ROUTE, _host(LAN_V6, 1))
    internet.add_route(LAN_V4, _host(WAN_V4, 1))
    internet.add_route(LAN_V6, _host(WAN_V6, 1))
    internet_v4 = tuple(_host(WAN_V4, i) for i in range(10, 10 + INTERNET_HOSTS))
    marked_host = internet_v4[-1]
    router.load_nftables(ROUTER_RULESET.format(lan=lan_if, marked_host=marked_host, mark=CT_MARK))
    return RouterLab(
        router=router,
        device=device,
        internet=internet,
        device_v4=_host(LAN_V4, 2),
        device_v6=_host(LAN_V6, 2),
        internet_v4=internet_v4,
        internet_v6=tuple(_host(WAN_V6, i) for i in range(10, 10 + INTERNET_HOSTS)),
        marked_host=marked_host,
    )


def build_router_lab(lab: Lab) -> RouterLab:
    """Build device -- router -- internet with addresses, routes and the router's firewall."""
    router, device, internet = _add_router_namespaces(lab)
    lab.add_veth(router, "lan0", device, "eth0")
    return _connect_router(lab, router, device, internet, "lan0")


@dataclass(frozen=True)
class HomeLab:
    """`build_router_lab` with the LAN on a bridge, and a second LAN host on it."""

    net: RouterLab
    lan_host: Namespace
    lan_host_v4: str
    lan_host_v6: str
    device_mac: str


LAN_BRIDGE: Final = "br-lan"
DEVICE_MAC: Final = "02:00:5e:77:00:02"
"""Locally administered, fixed: quarantine rules match it."""
BRIDGE_NETFILTER_KEYS: Final = (
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)


def build_home_lab(lab: Lab) -> HomeLab:
    """Device and LAN host on the router's bridge `br-lan`: LAN-to-LAN traffic is switched.

    As on OpenWrt, bridged frames skip the IP hooks (br_netfilter off where the
    kernel has it), so the router's firewall and conntrack see only routed traffic.
    """
    router, device, internet = _add_router_namespaces(lab)
    lan_host = lab.add_namespace("lanhost")
    router.ip("link", "add", LAN_BRIDGE, "type", "bridge")
    for key in BRIDGE_NETFILTER_KEYS:
        if router.can_read(_sysctl_path(key)):
            router.set_sysctl(key, "0")
    for port, host in (("lan0", device), ("lan1", lan_host)):
        lab.add_veth(router, port, host, "eth0")
        router.ip("link", "set", port, "master", LAN_BRIDGE)
    router.set_link_up(LAN_BRIDGE)
    device.ip("link", "set", "eth0", "address", DEVICE_MAC)
    for network in (LAN_V4, LAN_V6):
        lan_host.add_address("eth0", _cidr(network, 3))
    return HomeLab(
        net=_connect_router(lab, router, device, internet, LAN_BRIDGE),
        lan_host=lan_host,
        lan_host_v4=_host(LAN_V4, 3),
        lan_host_v6=_host(LAN_V6, 3),
        device_mac=DEVICE_MAC,
    )


PROC_CONNTRACK: Final = "/proc/net/nf_conntrack"


@dataclass(frozen=True)
class ConntrackDump:
    """One namespace's conntrack table as each source prints it (stdout only), read in a row."""

    proc: str
    """/proc/net/nf_conntrack."""
    extended: str
    """`conntrack -L -o extended`."""
    plain: dict[str, str]
    """`conntrack -L -f FAMILY`, by family ("ipv4", "ipv6")."""
    plain_default: str
    """`conntrack -L` without a family."""


def dump_conntrack(namespace: Namespace) -> ConntrackDump:
    """Read the table every way; the tool's "N flow entries" summary goes to stderr, not here."""
    return ConntrackDump(
        proc=namespace.read_file(PROC_CONNTRACK),
        extended=namespace.run("conntrack", "-L", "-o", "extended").stdout,
        plain={
            family: namespace.run("conntrack", "-L", "-f", family).stdout
            for family in ("ipv4", "ipv6")
        },
        plain_default=namespace.run("conntrack", "-L").stdout,
    )


def play_traffic(lab: Lab, topology: RouterLab, plan: Sequence[Probe]) -> list[ProbeResult]:
    """Serve from the internet namespace and play `plan` from the device namespace.

    The client keeps its open TCP connections until the lab closes, so their
    conntrack entries stay ESTABLISHED while the table is read.
    """
    internet_hosts = [*topology.internet_v4, *topology.internet_v6]
    script = str(TRAFFIC_SCRIPT)
    server = lab.start(
        topology.internet, [sys.executable, script, "serve", *internet_hosts], "traffic server"
    )
    if server.read_line().strip() != "ready":
        raise LabError(f"traffic server did not start: {server.stop()}")
    plan_json = json.dumps([asdict(probe) for probe in plan])
    client = lab.start(
        topology.device, [sys.executable, script, "play", plan_json], "traffic client"
    )
    longest = sum(probe.count for probe in plan) * REPLY_TIMEOUT + COMMAND_TIMEOUT
    return [ProbeResult(**fields) for fields in json.loads(client.read_line(longest))]
