"""What every router kind gives: identity, one consistent snapshot per poll, and four errors.

Each router kind (OpenWrt, UniFi, Linux over SSH, demo) implements ``Router``;
Home Assistant code only ever sees these types. Nothing here imports Home
Assistant.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from ..core.labels import clean_label
from ..core.model import Flow
from ..core.parsing import ParseStats


class RouterError(Exception):
    """A router call failed; the message says what failed and what to do."""


class RouterConnectionError(RouterError):
    """The router cannot be reached: refused, unreachable, timed out, TLS failed."""


class RouterTLSError(RouterConnectionError):
    """The router's TLS certificate failed verification (or the TLS handshake failed)."""


class RouterHostKeyError(RouterError):
    """The SSH server presented another host key than the one pinned at setup: never accepted."""

    def __init__(
        self, message: str, *, fingerprint: str | None = None, public_key: str | None = None
    ) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        """SHA256 fingerprint of the key the server presented (``SHA256:...``); None when
        it offered none of the pinned key's type."""
        self.public_key = public_key
        """The presented key in OpenSSH format, to show when asking the owner to re-pin it."""


class RouterAuthError(RouterError):
    """The router rejected the credentials (or the session, after one fresh login)."""


class RouterPermissionError(RouterError):
    """The router user lacks a right; the message names the missing ACL entry."""

    def __init__(self, message: str, *, acl: str | None = None) -> None:
        super().__init__(message)
        self.acl = acl
        """The missing right as people write it (``luci getConntrackList``,
        ``file read /proc/sys/net/netfilter/nf_conntrack_count``); None when unknown."""


class RouterResponseError(RouterError):
    """The router answered, but not with what the call promises (garbage, wrong shape, too big)."""


class RouterVerificationError(RouterError):
    """The router took a change, but reading it back did not show it in force."""


@dataclass(frozen=True, slots=True)
class RouterInfo:
    """Who the router is: a stable unique id and what to show about it."""

    unique_id: str
    """Stable across reboots and address changes (e.g. the LAN MAC); one config entry each."""
    name: str
    model: str | None = None
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this router, with this user's rights, can report and do."""

    byte_counters: bool = False
    """Flows carry bytes and packets (nf_conntrack_acct on)."""
    quarantine: bool = False
    cut_live_flows: bool = False
    table_source: str = "luci"
    """Where the table came from: "luci" (getConntrackList), "plugin" (the phonehome
    rpcd plugin, paged), "proc" (/proc/net/nf_conntrack over SSH), "conntrack"
    (``conntrack -L -o extended`` over SSH), "traffic_flows" (UniFi's v2 traffic-flows:
    recent flow records, not live entries), "dpi" (UniFi per-client DPI totals only:
    no flows, see Snapshot.device_traffic), or "none" (left unread: above the cap
    without the plugin; no source)."""


@dataclass(frozen=True, slots=True)
class LanDevice:
    """A device on the LAN as the router knows it, keyed by its MAC.

    ``hostname``, ``name`` and ``vendor`` pass through ``clean_label`` here, whichever
    router kind built the device: no path can show a name uncleaned.
    """

    mac: str
    """Lower case, colon separated: aa:bb:cc:dd:ee:ff."""
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    hostname: str | None = None
    """Name the device gave itself (DHCP)."""
    name: str | None = None
    """Name the router's owner gave it (static lease, host hint)."""
    vendor: str | None = None
    wired: bool | None = None
    blocked: bool | None = None
    """The router blocks the device entirely (UniFi's block-sta); None where it cannot tell."""

    def __post_init__(self) -> None:
        for label in ("hostname", "name", "vendor"):
            if (value := getattr(self, label)) is not None:
                object.__setattr__(self, label, clean_label(value))


QUARANTINE_PREFIX: Final = "phonehome_"
"""Every name the integration gives on a router starts with this."""


def quarantine_name(mac: str) -> str:
    """The router-side name of a device's quarantine: ``phonehome_aabbccddeeff``."""
    return QUARANTINE_PREFIX + mac.replace(":", "").lower()


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """What one quarantine put on the router: enough to check it and remove exactly it."""

    mac: str
    name: str
    """The router-side name (``quarantine_name(mac)``): rule, set element or policy."""
    addresses: tuple[str, ...] = ()
    """The device's addresses when it was quarantined (their live flows were cut)."""
    flows_cut: bool = False
    """The device's established connections were removed from the router's table."""
    station_blocked: bool = False
    """Quarantine also blocked the device entirely (UniFi "full block", block-sta);
    release unblocks it."""


@dataclass(frozen=True, slots=True)
class QuarantineState:
    """What the router shows of one quarantine: still enforced, and blocked packets."""

    enforced: bool
    blocked_packets: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceTraffic:
    """What one device sent and received, counted apart from connections (UniFi DPI)."""

    tx_bytes: int
    rx_bytes: int
    tx_packets: int | None = None
    rx_packets: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent read of the router: its connections, LAN devices and quarantines."""

    taken_at: datetime
    flows: list[Flow]
    devices: dict[str, LanDevice]
    """By MAC."""
    capabilities: Capabilities
    conntrack_count: int | None = None
    """Entries the kernel tracks, read apart from the table."""
    table_read: bool = True
    """False when the table was left unread (too big to read safely): flows is empty."""
    parse_stats: ParseStats | None = None
    quarantined: dict[str, QuarantineState] = field(default_factory=dict)
    """By MAC: every quarantine the integration left on the router (found by its name)."""
    device_traffic: dict[str, DeviceTraffic] = field(default_factory=dict)
    """By MAC: totals where the router counts per device, not per connection (UniFi
    ``stat/stadpi``, table_source "dpi")."""


class Router(Protocol):
    """One router kind's client; the coordinator owns it and calls nothing else."""

    kind: str
    """"openwrt", "unifi", "linux_ssh" or "demo"."""
    conntrack_cap: int
    """Above this many tracked connections the table is left unread (where reading
    it could harm the router); diagnostics show it."""

    async def connect(self) -> RouterInfo:
        """Log in and identify the router; raises a RouterError subclass."""

    async def check_access(self) -> None:
        """Prove the login holds every right a poll needs; RouterPermissionError names one."""

    async def snapshot(self) -> Snapshot:
        """Read connections, LAN devices and quarantines; raises a RouterError subclass."""

    async def quarantine(self, device: LanDevice) -> QuarantineRecord:
        """Cut the device off the internet, LAN untouched, live flows too; idempotent.

        Returns only once reading the router back shows the block in force; raises
        RouterVerificationError when it does not, RouterPermissionError when a right
        is missing, RouterConnectionError when the router stops answering.
        """

    async def release(self, record: QuarantineRecord) -> None:
        """Remove exactly what ``quarantine`` added; a block already gone is success."""

    async def close(self) -> None:
        """Log out and release what the client holds."""
