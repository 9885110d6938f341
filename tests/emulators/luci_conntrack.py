"""LuCI's `getConntrackList`, rebuilt in Python from /proc/net/nf_conntrack text.

Follows `conntrack_list()` in openwrt/luci modules/luci-base/ucode/sys.uc step by
step, including what it loses: the [UNREPLIED]/[ASSURED] flags and the TCP state
(not `key=value`), keys with a dash (`zone-orig`, `delta-time`), TIME_WAIT entries,
and the split of counters between the two directions.
"""

import re
import socket
from typing import Final

OPENWRT_PROTOCOLS: Final = """\
ip 0
icmp 1
igmp 2
ipencap 4
tcp 6
egp 8
udp 17
ipv6 41
ipv6-route 43
ipv6-frag 44
rsvp 46
gre 47
esp 50
ah 51
ipv6-icmp 58
ipv6-nonxt 59
ipv6-opts 60
ospf 89
ipip 94
etherip 97
pim 103
ipcomp 108
vrrp 112
l2tp 115
sctp 132
"""
"""The common part of OpenWrt's /etc/protocols (base-files): name, number."""

_PROTOCOL_LINE: Final = re.compile(r"^([^# \t\n]+)\s+([0-9]+)\s+")
_ENTRY_LINE: Final = re.compile(r"^(ipv[46]) +([0-9]+) +\S+ +([0-9]+)( +.+)\n$")
_TIMEOUT: Final = re.compile(r"^ +([0-9]+)( .+)$")
_KEY_VALUE: Final = re.compile(r" (\w+)=(\S+)", re.ASCII)  # ucode's \w is [[:alnum:]_]


def protocol_names(etc_protocols: str = OPENWRT_PROTOCOLS) -> dict[str, str]:
    """Number (as text) -> name, read the way LuCI reads /etc/protocols (later lines win)."""
    names = {}
    for line in etc_protocols.splitlines(keepends=True):
        if match := _PROTOCOL_LINE.match(line):
            names[match[2]] = match[1]
    return names


def _arrtoip_iptoarr(text: str) -> str | None:
    """ucode's `arrtoip(iptoarr(text))`: inet_pton then inet_ntop, IPv6 tried first."""
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, text))
        except OSError:
            continue
    return None


def conntrack_list(
    proc_text: str, protocols: dict[str, str] | None = None
) -> list[dict[str, str | int | None]]:
    """The entries LuCI's getConntrackList returns for this /proc/net/nf_conntrack text."""
    names = protocol_names() if protocols is None else protocols
    entries: list[dict[str, str | int | None]] = []
    for line in proc_text.splitlines(keepends=True):
        match = _ENTRY_LINE.match(line)
        if not match:
            continue
        family, layer4, tuples = match[1], match[3], match[4]
        timeout = None
        if timed := _TIMEOUT.match(tuples):
            timeout, tuples = timed[1], timed[2]
        if "TIME_WAIT" in tuples:
            continue
        entry: dict[str, str | int | None] = {
            "bytes": 0,
            "packets": 0,
            "layer3": family,
            "layer4": names.get(layer4, "unknown"),
            "timeout": int(timeout or 0),  # ucode: +null is 0
        }
        for key, value in _KEY_VALUE.findall(tuples):
            current = entry.get(key)
            if key in {"bytes", "packets"}:
                entry[key] = int(current or 0) + int(value)
            elif key in {"src", "dst"}:
                entry[key] = current if current is not None else _arrtoip_iptoarr(value)
            elif key in {"sport", "dport"}:
                entry[key] = current if current is not None else int(value)
            else:
                entry[key] = value
        entries.append(entry)
    return entries
