r"""LAN devices of a Linux router from its DHCP lease files and its neighbour table.

Lease files, told apart by their content:

- dnsmasq (OpenWrt /tmp/dhcp.leases, Debian /var/lib/misc/dnsmasq.leases):
  ``expiry mac ip hostname clientid`` per IPv4 lease; after a ``duid`` line,
  ``expiry iaid ipv6 hostname duid`` per IPv6 lease (the MAC comes from a
  DUID-LL or DUID-LLT, when the client sent one of those);
- odhcpd (OpenWrt /tmp/hosts/odhcpd): ``# iface duid iaid hostname valid id
  length addr/len ...`` (``ipv4`` in place of the iaid, and the MAC as its DUID,
  for IPv4 leases); hostname ``-`` when none, ``broken\x20...`` when invalid;
- ISC dhcpd (/var/lib/dhcp/dhcpd.leases): ``lease IP { ... hardware ethernet
  MAC; client-hostname "NAME"; }`` blocks, the last block per address counting
  (dhcpd writes only printable names, a backslash before ``"``, ``\``, ``$``...).

Hostnames pass through ``clean_label`` (core/labels.py) as they are read.

``ip neigh show``: ``ADDRESS dev IF lladdr MAC [router] STATE``; entries without
a link-layer address (FAILED, INCOMPLETE) are skipped. IPv4 neighbours count as
devices only with a private (LAN) address, so the ISP's gateway on the WAN side
stays out; IPv6 neighbours only add addresses to a MAC known otherwise.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from ..core.addresses import IPV4, AddressScope, address_info, classify_address, normalize_mac
from ..core.labels import clean_label
from .base import LanDevice

NO_HOSTNAME: Final = frozenset({"*", "-", ""})
DUID_LLT: Final = "0001"
DUID_LL: Final = "0003"
HWTYPE_ETHERNET: Final = "0001"
MAC_HEX: Final = 12
BAD_STATES: Final = frozenset({"FAILED", "INCOMPLETE"})
_ISC_OPEN: Final = re.compile(r"lease\s+(\S+)\s*\{")
# Each statement is matched within its line ([ \t], never \s): a run of blank lines
# or an unclosed quote would otherwise be rescanned from every line start.
_ISC_MAC: Final = re.compile(r"^[ \t]*hardware ethernet[ \t]+([0-9A-Fa-f:]+);", re.M)
_ISC_HOST: Final = re.compile(r'^[ \t]*client-hostname[ \t]+"((?:[^"\\\n]|\\.)*)";', re.M)
_ISC_ESCAPE: Final = re.compile(r"\\(.)")
_ISC_STATE: Final = re.compile(r"^[ \t]*binding state[ \t]+(\w+);", re.M)


@dataclass(slots=True)
class _Found:
    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    hostname: str | None = None


class DeviceTable:
    """Collects addresses and hostnames by MAC from leases and neighbours."""

    def __init__(self) -> None:
        self._found: dict[str, _Found] = {}

    def add(self, mac: object, address: str, hostname: str | None = None) -> None:
        """One address (and maybe a hostname) of the device with this MAC; junk is skipped.

        Addresses are kept in the canonical text the flows carry (core/addresses.py).
        An address with a zone (``fe80::1%eth0``) is no device's address: skipped.
        """
        info = address_info(address.split("/", maxsplit=1)[0])
        if info is None or (key := normalize_mac(mac)) is None:
            return
        device = self._found.setdefault(key, _Found())
        addresses = device.ipv4 if info.family == IPV4 else device.ipv6
        if info.address not in addresses:
            addresses.append(info.address)
        if hostname not in NO_HOSTNAME and not device.hostname:
            device.hostname = clean_label(hostname)

    def add_leases(self, text: str) -> None:
        """Every lease of one file, whatever its format."""
        if blocks := list(_isc_blocks(text)):
            self._add_isc(blocks)
            return
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 8 and fields[0] == "#":  # noqa: PLR2004 - odhcpd
                self._add_odhcpd(fields)
            elif len(fields) >= 4 and fields[0].isdigit():  # noqa: PLR2004 - dnsmasq
                mac = fields[1] if ":" not in fields[2] else _duid_mac(fields[-1])
                self.add(mac, fields[2], fields[3])

    def _add_odhcpd(self, fields: list[str]) -> None:
        _, _, duid, iaid, hostname, _, _, _, *addresses = fields
        mac = duid if iaid == "ipv4" and len(duid) == MAC_HEX else _duid_mac(duid)
        if hostname.startswith("broken\\x20"):
            hostname = "-"
        for address in addresses:
            self.add(mac, address, hostname)

    def _add_isc(self, blocks: list[tuple[str, str]]) -> None:
        leases: dict[str, tuple[str, str | None]] = {}
        for address, body in blocks:
            state, found = _ISC_STATE.search(body), _ISC_MAC.search(body)
            if found is None or (state is not None and state.group(1) != "active"):
                leases.pop(address, None)
                continue
            host = _ISC_HOST.search(body)
            name = _ISC_ESCAPE.sub(r"\1", host.group(1)) if host else None
            leases[address] = (found.group(1), name)
        for address, (mac, hostname) in leases.items():
            self.add(mac, address, hostname)

    def add_neighbours(self, text: str) -> None:
        """``ip neigh show``: LAN IPv4 neighbours, and IPv6 addresses of known MACs."""
        for line in text.splitlines():
            fields = line.split()
            if "lladdr" not in fields[:-1] or (fields and fields[-1] in BAD_STATES):
                continue
            address, mac = fields[0], normalize_mac(fields[fields.index("lladdr") + 1])
            scope = classify_address(address)
            if ":" in address:
                if mac in self._found and scope != AddressScope.MULTICAST:
                    self.add(mac, address)
            elif scope == AddressScope.LAN:
                self.add(mac, address)

    def devices(self) -> dict[str, LanDevice]:
        """What was collected, by MAC."""
        return {
            mac: LanDevice(
                mac=mac,
                ipv4=tuple(found.ipv4),
                ipv6=tuple(found.ipv6),
                hostname=found.hostname,
            )
            for mac, found in sorted(self._found.items())
        }


def _isc_blocks(text: str) -> Iterator[tuple[str, str]]:
    """Each ``lease IP {`` ... ``}`` block of an ISC lease file: its address and body.

    One pass over the lines: a block still open at the next ``lease`` line or at
    the end of the text was cut short, and is dropped.
    """
    address: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if opening := _ISC_OPEN.match(line):
            address, body = opening.group(1), [line[opening.end() :]]
        elif address is not None and line.startswith("}"):
            yield address, "\n".join(body)
            address = None
        elif address is not None:
            body.append(line)


def _duid_mac(duid: str) -> str | None:
    """The MAC inside a DUID-LLT or DUID-LL of Ethernet hardware (hex, colons or not)."""
    digits = duid.replace(":", "").lower()
    if digits[4:8] != HWTYPE_ETHERNET:
        return None
    if digits.startswith(DUID_LL):
        mac = digits[8:]
    elif digits.startswith(DUID_LLT):
        mac = digits[16:]
    else:
        return None
    return mac if len(mac) == MAC_HEX else None
