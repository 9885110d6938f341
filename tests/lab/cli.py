"""scripts/lab: the network lab as a persistent playground (root, Linux).

  scripts/lab up [--no-plugin]          build the house (tests/lab/house.py) and start the
                                        router's services; removes an earlier lab first
  scripts/lab play SCENARIO [--seconds N] [--background]
                                        play a scenario from the devices (foreground, bounded)
  scripts/lab status                    what exists: namespaces, processes, conntrack count
  scripts/lab down                      remove everything `up` made

Namespaces are named PREFIX<role> (default prefix `phlab-`); state (namespace names,
pids, generated keys, logs) lives in the state directory (default /run/phonehome-lab).
`--prefix` and `--state-dir` (before the command) keep a second lab apart, as the tests do.
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from . import sshd
from .house import (
    BACKGROUND_CONNECTIONS,
    DEVICES,
    REPO_ROOT,
    ROUTER_LAN,
    SCENARIOS,
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
from .netlab import (
    PROC_CONNTRACK,
    Lab,
    LabError,
    Namespace,
    delete_namespace,
    list_namespaces,
    missing_requirements,
)

DEFAULT_PREFIX: Final = "phlab-"
"""Not `phl<pid>-`: the tests' clean-up of dead runs leaves a persistent lab alone."""
DEFAULT_STATE_DIR: Final = Path("/run/phonehome-lab")
STATE_FILE: Final = "state.json"
READY_TIMEOUT: Final = 15.0
STOP_TIMEOUT: Final = 3.0
PLAY_LIFETIME_MARGIN: Final = 30.0
"""Seconds a player may outlive its scenario before it exits on its own."""


def _state(state_dir: Path) -> dict[str, Any]:
    path = state_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (pid_alive counts zombies)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ours(pid: int, marker: str) -> bool:
    """Whether `pid` still runs a command naming `marker` (not a recycled pid)."""
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _stop(pids: dict[str, list[Any]]) -> list[str]:
    """SIGTERM the processes that are still ours, SIGKILL what outlives STOP_TIMEOUT."""
    mine = {name: pid for name, (pid, marker) in pids.items() if _ours(pid, marker)}
    for pid in mine.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(running(pid) for pid in mine.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in mine.values():
        if running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return [f"{name} (pid {pid})" for name, pid in mine.items()]


def down(prefix: str, state_dir: Path) -> list[str]:
    """Stop the recorded processes, delete every namespace with the prefix, drop the state."""
    state = _state(state_dir)
    removed = _stop(state.get("pids", {}))
    for name in list_namespaces():
        if name.startswith(prefix):
            delete_namespace(name)
            removed.append(f"namespace {name}")
    if state_dir.is_dir():
        for path in sorted(state_dir.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        state_dir.rmdir()
        removed.append(f"state {state_dir}")
    return removed


def _detached(namespace: Namespace, argv: list[str], log: Path) -> int:
    """Start a service that outlives this command (own session, stdin /dev/null, log file)."""
    with log.open("w") as out:
        process = subprocess.Popen(
            namespace.argv(argv),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid


def _wait_ready(pid: int, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if "ready" in log.read_text().split():
            return
        if not running(pid):
            break
        time.sleep(0.05)
    raise LabError(f"{log.stem} (pid {pid}) did not start: {log.read_text().strip()[-500:]}")


def up(prefix: str, state_dir: Path, *, plugin: bool = True) -> dict[str, Any]:
    """Remove an earlier lab, build the house, start the router's and the internet's services."""
    if problems := missing_requirements() + sshd.missing():
        raise LabError("; ".join(problems))
    down(prefix, state_dir)
    state_dir.mkdir(mode=0o700, parents=True)
    state: dict[str, Any] = {"prefix": prefix, "pids": {}}
    try:
        with Lab(prefix) as lab:
            house = build_house(lab)
            state["namespaces"] = lab.keep()
        hints, leases = write_router_data(state_dir)
        services = {
            "internet": (house.internet, serve_argv(internet_addresses(), 0)),
            "ubus": (house.router, ubus_argv(hints, plugin=plugin, lifetime=0)),
        }
        for name, (namespace, argv) in services.items():
            log = state_dir / f"{name}.log"
            pid = _detached(namespace, argv, log)
            state["pids"][name] = [pid, argv[2]]  # its module: `down` knows it by that
            _save(state_dir, state)
            _wait_ready(pid, log)
        server = sshd.prepare(state_dir / "ssh", ROUTER_LAN)
        pid = _detached(house.router, server.argv(), state_dir / "sshd.log")
        state["pids"]["sshd"] = [pid, str(server.config)]
        _save(state_dir, state)
        sshd.wait_listening(house.router)
        (state_dir / "ssh" / "known_hosts").write_text(f"{ROUTER_LAN} {server.host_key}\n")
        state["ssh"] = {"host_key": server.host_key, "leases": str(leases)}
        _save(state_dir, state)
    except BaseException:
        down(prefix, state_dir)
        raise
    return state


def _save(state_dir: Path, state: dict[str, Any]) -> None:
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))


def status(prefix: str, state_dir: Path) -> str:
    """Namespaces with the prefix, the recorded processes, the router's conntrack count."""
    state = _state(state_dir)
    lines = [f"state: {state_dir / STATE_FILE}" if state else "state: none (the lab is down)"]
    names = [name for name in list_namespaces() if name.startswith(prefix)]
    lines.append(f"namespaces ({len(names)}): {' '.join(sorted(names)) or '-'}")
    for name, (pid, marker) in state.get("pids", {}).items():
        alive = "running" if _ours(pid, marker) and running(pid) else "gone"
        lines.append(f"{name}: pid {pid} {alive}")
    router = Namespace(prefix + "router")
    if router.name in names:
        count = router.read_file("/proc/sys/net/netfilter/nf_conntrack_count").strip()
        lines.append(f"router conntrack entries: {count}")
    return "\n".join(lines)


def play(prefix: str, name: str, *, seconds: float, busy: bool) -> str:
    """Play a scenario from the devices until it ends (or Ctrl-C); summarise the router's table."""
    plays = scenario(name, seconds=seconds)
    if busy:
        plays = {**background(), **plays}
    router = Namespace(prefix + "router")
    if router.name not in list_namespaces():
        raise LabError(f"no lab with prefix {prefix!r}: run `scripts/lab up` first")
    house = House({role: Namespace(prefix + role) for role in plays}, {})
    with Lab(prefix) as lab:
        players = [
            lab.start(
                house.device_ns(role),
                play_argv(beacons, seconds + PLAY_LIFETIME_MARGIN),
                role,
                REPO_ROOT,
            )
            for role, beacons in plays.items()
        ]
        deadline = seconds + PLAY_LIFETIME_MARGIN
        for player in players:
            player.read_line()  # ready
        for player in players:
            player.read_line(deadline)  # done
        table = router.read_file(PROC_CONNTRACK)
    return _summary(table)


def _summary(table: str) -> str:
    """Entries in the router's table per device and destination port."""
    # imported here: the integration's package imports Home Assistant (a second)
    from custom_components.phonehome.core.analyzer import protocol_name
    from custom_components.phonehome.core.conntrack import parse_proc

    names = {device.ip: device.role for device in DEVICES}
    per: Counter[str] = Counter(
        f"{names[flow.src]} -> {flow.dport or '-'}/{protocol_name(flow.protocol)}"
        for flow in parse_proc(table).flows
        if flow.src in names
    )
    return "router conntrack entries by device -> port/protocol:\n" + "\n".join(
        f"  {key}: {count}" for key, count in sorted(per.items())
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/lab."""
    parser = argparse.ArgumentParser(prog="scripts/lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="build the lab (removes an earlier one first)")
    up_parser.add_argument("--no-plugin", action="store_true", help="ubus without the rpcd plugin")
    commands.add_parser("down", help="remove everything the lab made")
    commands.add_parser("status", help="list what exists")
    play_parser = commands.add_parser("play", help="play a scenario from the devices")
    play_parser.add_argument("scenario", choices=SCENARIOS)
    play_parser.add_argument("--seconds", type=float, default=60.0)
    play_parser.add_argument(
        "--background",
        action="store_true",
        help=f"first open {BACKGROUND_CONNECTIONS} connections from the NAS",
    )
    args = parser.parse_args(argv)
    prefix, state_dir = args.prefix, args.state_dir
    try:
        if args.command == "up":
            state = up(prefix, state_dir, plugin=not args.no_plugin)
            print(_welcome(prefix, state_dir, state))
        elif args.command == "down":
            print("\n".join(down(prefix, state_dir)) or "nothing to remove")
        elif args.command == "status":
            print(status(prefix, state_dir))
        else:
            print(play(prefix, args.scenario, seconds=args.seconds, busy=args.background))
    except LabError as err:
        print(f"scripts/lab: {err}", file=sys.stderr)
        return 1
    return 0


def _welcome(prefix: str, state_dir: Path, state: dict[str, Any]) -> str:
    hass = f"ip netns exec {prefix}hass"
    key = state_dir / "ssh" / "client_ed25519"
    known = state_dir / "ssh" / "known_hosts"
    return "\n".join(
        [
            f"lab up: {len(state['namespaces'])} namespaces ({prefix}*), state in {state_dir}",
            f"router {ROUTER_LAN}: ubus http://{ROUTER_LAN}/ubus (root / secret), "
            f"ssh root@{ROUTER_LAN} (key {key})",
            f"host key {state['ssh']['host_key']}",
            f"DHCP leases (SSH kind): {state['ssh']['leases']}",
            f"from the Home Assistant namespace: {hass} curl -s http://{ROUTER_LAN}/ubus ...",
            f"  {hass} ssh -i {key} -o UserKnownHostsFile={known} root@{ROUTER_LAN}",
            "next: scripts/lab play foscam; scripts/lab status; scripts/lab down",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
