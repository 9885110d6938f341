"""The sh scripts a Linux router runs for LinuxSshRouter, and the readers of what they print.

Both scripts are fixed text: every value reaches them as a positional argument
(``sh -c SCRIPT phonehome ARG...``, each quoted with ``shlex.quote``), never
inside the script. They use only POSIX sh and what busybox offers (cat, ip,
awk, sed, tr), so they run on OpenWrt's ash as on bash or dash.

- ``INFO_SCRIPT`` (at connect): ``key=value`` lines: uid, whether ``sudo -n``
  works, hostname, /etc/machine-id, the MAC of the interface holding the address
  the SSH client reached (``$SSH_CONNECTION``; else the first non-zero MAC),
  model, PRETTY_NAME, whether nft is installed and may run, and how the table
  can be read (``proc``, ``conntrack`` or ``none``).
- ``POLL_SCRIPT`` (each poll): sections between a per-poll random marker.
"""

import re
from dataclasses import dataclass
from typing import Final

from ..core.addresses import normalize_mac
from ..core.conntrack import ConntrackParseError, ParseResult, parse_proc
from . import nft_quarantine as nft
from .base import LanDevice, QuarantineState, RouterInfo, RouterPermissionError, RouterResponseError
from .linux_hosts import DeviceTable

CONNTRACK_PATH: Final = "/proc/net/nf_conntrack"
COUNT_PATH: Final = "/proc/sys/net/netfilter/nf_conntrack_count"
HELP: Final = "see README#linux-router-over-ssh"
TABLE_SOURCES: Final = frozenset({"proc", "conntrack", "none"})
"""How POLL_SCRIPT can read the table: its ``table`` section's argument."""
DENIED: Final = re.compile(r"permission denied|operation not permitted|password is required", re.I)
_MACHINE_ID: Final = re.compile(r"[0-9a-f]{32}")


INFO_SCRIPT: Final = f"""s=0
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true </dev/null 2>/dev/null; then s=1; fi
as() {{ if [ "$s" = 1 ]; then sudo -n "$@" </dev/null; else "$@" </dev/null; fi; }}
printf 'uid=%s\\nsudo=%s\\n' "$(id -u)" "$s"
printf 'hostname=%s\\n' "$(cat /proc/sys/kernel/hostname)"
printf 'machine_id=%s\\n' "$(cat /etc/machine-id 2>/dev/null)"
dev= mac=
set -- ${{SSH_CONNECTION:-}}
[ -n "${{3:-}}" ] && dev=$(ip -o addr show to "$3" 2>/dev/null | awk '{{print $2; exit}}')
[ -n "$dev" ] && mac=$(cat "/sys/class/net/$dev/address" 2>/dev/null)
if [ -z "$mac" ] || [ "$mac" = 00:00:00:00:00:00 ]; then
  for f in /sys/class/net/*/address; do
    m=$(cat "$f" 2>/dev/null)
    case "$m" in ''|00:00:00:00:00:00) ;; *) mac=$m; break ;; esac
  done
fi
printf 'mac=%s\\n' "$mac"
for f in /tmp/sysinfo/model /sys/firmware/devicetree/base/model /sys/class/dmi/id/product_name; do
  if [ -r "$f" ]; then printf 'model=%s\\n' "$(tr -d '\\000' <"$f")"; break; fi
done
printf 'firmware=%s\\n' "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')"
n=0; command -v nft >/dev/null 2>&1 && n=1
printf 'nft=%s\\n' "$n"
[ "$n" = 1 ] && as nft list tables >/dev/null 2>&1 && printf 'nft_ok=1\\n'
t=none
if [ -r {CONNTRACK_PATH} ]; then t=proc
elif [ "$s" = 1 ] && sudo -n test -r {CONNTRACK_PATH} </dev/null 2>/dev/null; then t=proc
elif command -v conntrack >/dev/null 2>&1 && as conntrack -C >/dev/null 2>&1; then t=conntrack
fi
printf 'table=%s\\n' "$t"
"""
"""Who the router is and what this user may do, as ``key=value`` lines."""

POLL_SCRIPT: Final = """m=$1 s=$2 ct=$3 cnt=$4
shift 4
as() { if [ "$s" = 1 ]; then sudo -n "$@" </dev/null; else "$@" </dev/null; fi; }
mark() { printf '%s %s\\n' "$m" "$*"; }
end() { printf '\\n%s end %s\\n' "$m" "$1"; }
mark count; cat "$cnt"; end $?
if [ -r "$ct" ]; then mark table proc; cat "$ct"; end $?
elif [ -e "$ct" ] && [ "$s" = 1 ]; then mark table proc; as cat "$ct"; end $?
elif command -v conntrack >/dev/null 2>&1; then mark table conntrack; as conntrack -L -o extended; end $?
else mark table none; end 127
fi
i=0
for f in "$@"; do
  i=$((i + 1))
  if [ -r "$f" ]; then mark leases "$i"; cat "$f"; end $?; fi
done
mark neigh; ip neigh show </dev/null; end $?
if command -v nft >/dev/null 2>&1; then mark nft; as nft -j list table inet phonehome 2>&1; end $?; fi
"""
"""One poll. $1 the marker, $2 1 to use ``sudo -n``, $3 the conntrack file, $4 the count
file, then the lease files. Sections: ``MARKER NAME [ARG]``, body, ``MARKER end RC``."""


@dataclass(frozen=True, slots=True)
class Identity:
    """What INFO_SCRIPT found: who the router is and what this user may do."""

    info: RouterInfo
    sudo: bool
    nft_installed: bool
    nft_ok: bool
    table_source: str


def parse_identity(stdout: bytes, status: int | None, where: str) -> Identity:
    """Read INFO_SCRIPT's output; RouterResponseError when it is not that."""
    info = dict(
        line.partition("=")[::2]
        for line in stdout.decode(errors="replace").splitlines()
        if "=" in line
    )
    machine_id = info.get("machine_id", "").strip().lower()
    unique_id = machine_id if _MACHINE_ID.fullmatch(machine_id) else normalize_mac(info.get("mac"))
    hostname = info.get("hostname", "").strip()
    if status != 0 or unique_id is None or not hostname:
        raise RouterResponseError(
            f"{where} did not answer the identify script (exit {status}): {stdout[:80]!r}"
        )
    nft_installed = info.get("nft") == "1"
    return Identity(
        info=RouterInfo(
            unique_id=unique_id,
            name=hostname,
            model=info.get("model") or None,
            firmware=info.get("firmware") or None,
        ),
        sudo=info.get("sudo") == "1",
        nft_installed=nft_installed,
        nft_ok=nft_installed and info.get("nft_ok") == "1",
        table_source=table if (table := info.get("table")) in TABLE_SOURCES else "none",
    )


@dataclass(frozen=True, slots=True)
class Poll:
    """What one poll found."""

    count: int | None
    source: str
    table: ParseResult
    devices: dict[str, LanDevice]
    quarantined: dict[str, QuarantineState]


_SECTION: Final = r"^{marker} (\S+)(?: (\S+))?$"
_MAX_DIGITS: Final = 20
"""Longer numbers than a 64-bit counter or exit status has are not what the script prints."""


def _number(text: str) -> int | None:
    """A number of ASCII digits as the shell prints it (not ``²``, ``+1`` or ``1_0``), else None."""
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
        return None
    return int(text)


def _sections(text: str, marker: str) -> list[tuple[str, str, str, int]]:
    """(name, argument, body, exit status) of every section, in order."""
    found: list[tuple[str, str, str, int]] = []
    heads = list(re.finditer(_SECTION.format(marker=re.escape(marker)), text, re.M))
    if not heads:
        raise RouterResponseError(f"the poll script printed no section: {text[:80]!r}")
    for head, tail in zip(heads[::2], heads[1::2], strict=False):
        status = _number(tail.group(2) or "")
        if head.group(1) == "end" or tail.group(1) != "end" or status is None:
            break
        found.append(
            (head.group(1), head.group(2) or "", text[head.end() + 1 : tail.start()], status)
        )
    if len(found) * 2 != len(heads):
        raise RouterResponseError("the poll output is cut short or out of order")
    return found


def parse_poll(stdout: bytes, stderr: str, marker: str) -> Poll:
    """Everything one poll printed; raises RouterError subclasses (run it on a worker thread)."""
    text = stdout.decode(errors="replace")
    count: int | None = None
    source = "none"
    table: ParseResult | None = None
    devices = DeviceTable()
    quarantined: dict[str, QuarantineState] = {}
    for name, argument, body, status in _sections(text, marker):
        if name == "count" and status == 0:
            count = _number(body.strip())
            if count is None:
                raise RouterResponseError(f"{COUNT_PATH} is not a number: {body[:80]!r}")
        elif name == "table":
            source = argument
            table = _table(argument, body, status, stderr)
        elif name == "leases" and status == 0:
            devices.add_leases(body)
        elif name == "neigh" and status == 0:
            devices.add_neighbours(body)
        elif name == "nft" and status == 0:
            try:
                quarantined = nft.parse_table(body).quarantined()
            except ValueError as err:
                raise RouterResponseError(f"nft -j list table inet phonehome: {err}") from err
    if table is None:
        raise RouterResponseError("the poll output holds no connection table")
    return Poll(count, source, table, devices.devices(), quarantined)


def _table(source: str, body: str, status: int, stderr: str) -> ParseResult:
    if source not in TABLE_SOURCES:
        raise RouterResponseError(f"the poll output names no known table source: {source!r}")
    if source == "none":
        raise RouterPermissionError(
            f"{CONNTRACK_PATH} is missing and conntrack-tools is not installed ({HELP})",
            acl=f"read {CONNTRACK_PATH}",
        )
    if status != 0:
        message = stderr.strip()[-300:]
        what = CONNTRACK_PATH if source == "proc" else "conntrack -L"
        if DENIED.search(message):
            raise RouterPermissionError(
                f"the SSH user may not read {what}: {message} ({HELP})", acl=f"read {what}"
            )
        raise RouterResponseError(f"reading {what} failed (exit {status}): {message}")
    try:
        return parse_proc(body)
    except ConntrackParseError as err:
        raise RouterResponseError(f"the connection table: {err}") from err
