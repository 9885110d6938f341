"""OpenWrt (22.03+) over ubus JSON-RPC: identity, connection table and LAN devices.

One poll starts with a JSON-RPC batch: ``file read
/proc/sys/net/netfilter/nf_conntrack_count`` (and ``nf_conntrack_acct``),
``luci-rpc getHostHints`` and ``luci-rpc getDHCPLeases``. Then the table:

- with the phonehome rpcd plugin installed (``connect`` asks ubus ``list
  phonehome``), at any size through ``phonehome conntrack``: the first page (which
  makes the plugin read /proc into a snapshot) is the last call of that first
  batch, so a table that fits one page takes one request; then every other page
  of that snapshot in one more batch (more only past ``max_bytes`` of pages);
  each page stays under 256 KiB, far from ubus's 1 MiB message limit;
- without it, ``luci getConntrackList``, only when the count is at most
  ``conntrack_cap``. LuCI builds one ubus reply for the whole table; past ubus's
  1 MiB message limit (roughly 4,000 entries) the call hangs, rpcd dies and the
  owner's LuCI stops working until rpcd restarts. So the count is always read
  first, and above the cap the table is left unread (``Snapshot.table_read`` False).
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import yarl

from ..core.addresses import IPV4, AddressInfo, address_info, normalize_mac
from ..core.conntrack import ConntrackParseError, ParseResult, parse_luci_json
from ..core.conntrack_plugin import PluginPage, decode_plugin_page, parse_plugin_rows
from ..core.labels import clean_label
from .base import (
    Capabilities,
    LanDevice,
    QuarantineRecord,
    RouterConnectionError,
    RouterError,
    RouterInfo,
    RouterPermissionError,
    RouterResponseError,
    Snapshot,
)
from .openwrt_firewall import PLUGIN_OBJECT, FirewallQuarantine
from .ubus import (
    ACCESS_HELP,
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    Right,
    UbusCall,
    UbusClient,
    UbusResult,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_CONNTRACK_CAP: Final = 3000
"""Largest table read with getConntrackList: well below the ~4,000 entries that kill rpcd."""
CONNTRACK_TIMEOUT: Final = 30.0
PLUGIN_TIMEOUT: Final = 60.0
"""Seconds for the plugin's first page: its awk pass over a full table on a small router."""
PLUGIN_PAGE_LIMIT: Final = 10000
"""Rows asked for in the first page (the plugin's most); it stops earlier at 256 KiB."""
PLUGIN_PAGE_BYTES: Final = 256 * 1024
"""The plugin stops a page before its reply reaches this size."""
PLUGIN_PAGE_SLACK: Final = 1024
"""Room for the page's other fields."""
PLUGIN_ROW_MARGIN: Final = 64
"""Bytes two IPv6 addresses (39 characters at most) may take beyond two IPv4 ones (7 at least)."""
COUNT_PATH: Final = "/proc/sys/net/netfilter/nf_conntrack_count"
ACCT_PATH: Final = "/proc/sys/net/netfilter/nf_conntrack_acct"
LAN_BRIDGE: Final = "br-lan"
ARPHRD_ETHER: Final = 1


REQUIRED_RIGHTS: Final = (
    Right("ubus", "system", "board"),
    Right("ubus", "luci-rpc", "getNetworkDevices"),
    Right("ubus", "file", "read"),
    Right("file", COUNT_PATH, "read"),
    Right("file", ACCT_PATH, "read"),
    Right("ubus", "luci-rpc", "getHostHints"),
    Right("ubus", "luci-rpc", "getDHCPLeases"),
    Right("ubus", "luci", "getConntrackList"),
)
"""Every right ``connect`` and ``snapshot`` use, in the order they use them.

router/openwrt/phonehome.json grants exactly these, plus ``session access`` (for
``check_access``) and ``session destroy`` (for ``close``).
"""


class OpenWrtRouter:
    """An OpenWrt router reached through uhttpd's ``/ubus`` (implements ``Router``)."""

    kind = "openwrt"

    def __init__(  # noqa: PLR0913, PLR0917
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int,
        username: str,
        password: str,
        ssl: bool = False,
        verify_ssl: bool = True,
        conntrack_cap: int = DEFAULT_CONNTRACK_CAP,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        conntrack_timeout: float = CONNTRACK_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        plugin_timeout: float = PLUGIN_TIMEOUT,
    ) -> None:
        self.host = host
        self.conntrack_cap = conntrack_cap
        self._conntrack_timeout = conntrack_timeout
        self._plugin_timeout = plugin_timeout
        self._max_bytes = max_bytes
        self.plugin = False
        """The phonehome rpcd plugin is installed and this user may read through it."""
        url = yarl.URL.build(
            scheme="https" if ssl else "http", host=host.strip("[]"), port=port, path="/ubus"
        )
        self.ubus = UbusClient(
            session,
            str(url),
            username,
            password,
            verify_ssl=verify_ssl,
            timeout=timeout,
            max_bytes=max_bytes,
        )
        self.firewall = FirewallQuarantine(self.ubus)
        """Quarantine through fw4 rules (routers/openwrt_firewall.py)."""

    async def connect(self) -> RouterInfo:
        """Log in, read ``system board`` and the LAN MAC; raises a RouterError subclass."""
        await self.ubus.login()
        board_result, devices_result = await self.ubus.batch(
            [UbusCall("system", "board"), UbusCall("luci-rpc", "getNetworkDevices")]
        )
        board = board_result.unwrap()
        unique_id = self._lan_mac(devices_result.unwrap())
        release = board.get("release")
        firmware = None
        if isinstance(release, dict):
            firmware = _text(release.get("description")) or _text(release.get("version"))
        hostname = _text(board.get("hostname"))
        self.plugin = await self._detect_plugin()
        await self.firewall.detect()
        return RouterInfo(
            unique_id=unique_id,
            name=hostname or self.host,
            model=_text(board.get("model")),
            firmware=firmware,
        )

    async def check_access(self) -> None:
        """Ask rpcd whether this session holds every right a poll needs; never reads the table.

        One batch of ``session access`` calls (rpcd's ``rpc_handle_access``: the
        session's ACL for scope, object and function). Raises RouterPermissionError
        naming the first missing right (``acl``), and one for ``session access``
        itself when the user may not ask.
        """
        for right, granted in zip(
            REQUIRED_RIGHTS, await self.ubus.access(REQUIRED_RIGHTS), strict=True
        ):
            if not granted:
                raise RouterPermissionError(
                    f"the router user lacks the rpcd ACL for {right.name}: {ACCESS_HELP}",
                    acl=right.name,
                )

    async def snapshot(self) -> Snapshot:
        """Count first, then (below the cap only) the table; hosts and leases; one poll.

        With the plugin its first page comes in the poll's first batch, so a table
        that fits one page takes one request.
        """
        first_page = [_page_call(0, PLUGIN_PAGE_LIMIT)] if self.plugin else []
        results = await self.ubus.batch(
            [
                UbusCall("file", "read", {"path": COUNT_PATH}),
                UbusCall("file", "read", {"path": ACCT_PATH}),
                UbusCall("luci-rpc", "getHostHints"),
                UbusCall("luci-rpc", "getDHCPLeases"),
                *self.firewall.snapshot_calls(),
                *first_page,
            ],
            timeout=self._plugin_timeout if first_page else None,
        )
        first_result = results.pop() if first_page else None
        count_result, acct_result, hints_result, leases_result = results[:4]
        quarantined = self.firewall.snapshot_state(results[4:])
        count = _proc_number(count_result.unwrap(), COUNT_PATH)
        try:
            acct: int | None = _proc_number(acct_result.unwrap(), ACCT_PATH)
        except RouterError:
            acct = None
        devices = _merge_devices(hints_result.unwrap(), leases_result.unwrap())

        parsed = None if first_result is None else await self._read_plugin_table(first_result)
        source = "plugin"
        if parsed is None:
            parsed = await self._read_table(count)
            source = "luci" if parsed is not None else "none"
        flows = parsed.flows if parsed is not None else []
        counters = any(flow.total_bytes is not None for flow in flows) if flows else acct == 1
        return Snapshot(
            taken_at=datetime.now(UTC),
            flows=flows,
            devices=devices,
            capabilities=Capabilities(
                byte_counters=counters,
                quarantine=self.firewall.can_quarantine(),
                cut_live_flows=self.firewall.can_cut(self.plugin),
                table_source=source,
            ),
            conntrack_count=count,
            table_read=parsed is not None,
            parse_stats=parsed.stats if parsed is not None else None,
            quarantined=quarantined,
        )

    async def quarantine(self, device: LanDevice) -> QuarantineRecord:
        """A fw4 rule for the device, read back, then its live flows cut (openwrt_firewall)."""
        return await self.firewall.quarantine(device, plugin=self.plugin)

    async def release(self, record: QuarantineRecord) -> None:
        """Delete the record's fw4 rule and read back that it is gone."""
        await self.firewall.release(record)

    async def close(self) -> None:
        """Log out (best effort; never raises)."""
        await self.ubus.logout()

    async def _read_table(self, count: int) -> ParseResult | None:
        """The table through ``luci getConntrackList``; None (not called) above the cap.

        The one place that calls getConntrackList, and it needs the count just read.
        """
        if count > self.conntrack_cap:
            _LOGGER.debug(
                "%s tracks %d connections, above the cap of %d: table not read",
                self.host,
                count,
                self.conntrack_cap,
            )
            return None
        try:
            body = await self.ubus.call_raw(
                "luci", "getConntrackList", timeout=self._conntrack_timeout
            )
        except RouterConnectionError as err:
            raise RouterConnectionError(
                f"{err}. LuCI's getConntrackList builds one reply for the whole table; past "
                "ubus's 1 MiB limit rpcd hangs and dies (restart it: `/etc/init.d/rpcd "
                f"restart`). Lower the connection cap (now {self.conntrack_cap}) or install "
                "the phonehome rpcd plugin"
            ) from err
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, parse_luci_json, body)
        except ConntrackParseError as err:
            raise RouterResponseError(f"luci getConntrackList: {err}") from err

    async def _detect_plugin(self) -> bool:
        """Whether ubus lists the phonehome object with its conntrack method."""
        try:
            objects = await self.ubus.list_signatures(PLUGIN_OBJECT)
        except RouterError as err:
            _LOGGER.debug("%s: ubus list %s failed (%s): no plugin", self.host, PLUGIN_OBJECT, err)
            return False
        methods = objects.get(PLUGIN_OBJECT)
        return isinstance(methods, dict) and "conntrack" in methods

    async def _read_plugin_table(self, first: UbusResult) -> ParseResult | None:
        """The whole table through the plugin, its first page in hand; None if not granted.

        A page answered from another snapshot (the plugin started a new one, e.g.
        after its snapshot file expired) restarts the read once, first page again.
        """
        try:
            try:
                rows = await self._plugin_rows(first.unwrap_raw())
            except _SnapshotChangedError:
                (payload,) = await self.ubus.batch_raw(
                    [_page_call(0, PLUGIN_PAGE_LIMIT)], timeout=self._plugin_timeout
                )
                rows = await self._plugin_rows(payload)
        except _SnapshotChangedError as err:
            raise RouterResponseError(
                f"phonehome conntrack: the snapshot changed while reading it, twice ({err})"
            ) from err
        except RouterPermissionError as err:
            # Installed, but not granted to this user: read as without the plugin.
            _LOGGER.warning(
                "%s has the phonehome plugin but the router user may not call "
                "phonehome conntrack (%s); reading the table without it",
                self.host,
                err,
            )
            self.plugin = False
            return None
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, parse_plugin_rows, rows)
        except ConntrackParseError as err:
            raise RouterResponseError(f"phonehome conntrack: {err}") from err

    async def _decode(self, payloads: list[bytes]) -> list[PluginPage]:
        """Pages' payloads decoded off the event loop."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, _decode_pages, payloads)
        except ConntrackParseError as err:
            raise RouterResponseError(f"phonehome conntrack: {err}") from err

    async def _plugin_rows(self, first_payload: bytes) -> list[Any]:
        """Every row of one snapshot: the first page, then the others in few batches."""
        (first,) = await self._decode([first_payload])
        snapshot = first.snapshot
        rows: list[Any] = list(first.rows)
        if first.next is None:
            return rows
        if not first.rows:
            raise RouterResponseError("phonehome conntrack: the first page holds no row")
        # Later pages ask as many rows as fit in 256 KiB were each row as long as the
        # first page's average plus two IPv6 addresses in place of two IPv4 ones (the
        # first page is IPv4 when there is any: rows sort by family). A page that
        # still stops early leaves a gap, read in one more batch. A batch holds as many
        # pages as fit the reply cap at 256 KiB each, with one page's room left for
        # the JSON-RPC envelopes.
        row_bytes = first.size // len(first.rows) + PLUGIN_ROW_MARGIN
        per_page = max(1, (PLUGIN_PAGE_BYTES - PLUGIN_PAGE_SLACK) // row_bytes)
        per_batch = max(1, self._max_bytes // PLUGIN_PAGE_BYTES - 1)
        pages: dict[int, PluginPage] = {first.offset: first}
        missing = [(first.next, first.total)]
        while missing:
            offsets = [offset for start, end in missing for offset in range(start, end, per_page)][
                :per_batch
            ]
            calls = [_page_call(offset, per_page, snapshot) for offset in offsets]
            payloads = await self.ubus.batch_raw(calls, timeout=self._plugin_timeout)
            for offset, page in zip(offsets, await self._decode(payloads), strict=True):
                if page.snapshot != snapshot:
                    raise _SnapshotChangedError(f"{snapshot} became {page.snapshot}")
                if page.offset != offset or not page.rows:
                    raise RouterResponseError(
                        f"phonehome conntrack: asked for offset {offset}, got {page.offset} "
                        f"with {len(page.rows)} rows"
                    )
                pages[offset] = page
            missing = _gaps(pages, first.total)
        return _rows_in_order(pages)

    def _lan_mac(self, devices: dict[str, Any]) -> str:
        """The router's stable id: the LAN bridge's MAC, else the first wired port's.

        br-lan's MAC is the one OpenWrt derives from the board's factory MAC; it stays
        across reboots, firmware upgrades and address changes. Without br-lan (a
        renamed or unbridged LAN), the device holding the address we talk to, then
        the Ethernet device with the lowest ifindex (the SoC's first port).
        """
        candidates: list[tuple[int, int, str]] = []
        address = _address(self.host)
        for name, device in devices.items():
            if not isinstance(device, dict):
                continue
            mac = normalize_mac(device.get("mac"))
            if mac is None or device.get("type", ARPHRD_ETHER) != ARPHRD_ETHER:
                continue
            addresses = {
                _address(entry.get("address"))
                for key in ("ipaddrs", "ip6addrs")
                for entry in _list(device.get(key))
                if isinstance(entry, dict)
            }
            if name == LAN_BRIDGE:
                rank = 0
            elif address is not None and address in addresses:
                rank = 1
            else:
                rank = 2
            ifindex = device.get("ifindex")
            candidates.append((rank, ifindex if isinstance(ifindex, int) else 1 << 30, mac))
        if not candidates:
            raise RouterResponseError(
                "luci-rpc getNetworkDevices lists no Ethernet device with a MAC address: "
                "cannot identify the router"
            )
        return min(candidates)[2]


class _SnapshotChangedError(Exception):
    """A page came from another snapshot than the first page's."""


def _page_call(offset: int, limit: int, snapshot: str | None = None) -> UbusCall:
    """``phonehome conntrack``: ``limit`` rows from ``offset``, raw.

    With a snapshot, a later page of it; without, the first page, for which the
    plugin takes a new snapshot.
    """
    args: dict[str, object] = {"offset": offset, "limit": limit}
    if snapshot is not None:
        args["snapshot"] = snapshot
    return UbusCall(PLUGIN_OBJECT, "conntrack", args, raw=True)


def _decode_pages(payloads: list[bytes]) -> list[PluginPage]:
    return [decode_plugin_page(payload) for payload in payloads]


def _gaps(pages: dict[int, PluginPage], total: int) -> list[tuple[int, int]]:
    """The row ranges [start, end) that no page read yet."""
    gaps: list[tuple[int, int]] = []
    covered = 0
    for offset, page in sorted(pages.items()):
        if offset > covered:
            gaps.append((covered, offset))
        covered = max(covered, offset + len(page.rows))
    if covered < total:
        gaps.append((covered, total))
    return gaps


def _rows_in_order(pages: dict[int, PluginPage]) -> list[Any]:
    """The pages' rows by offset, each row once (pages that filled a gap may overlap)."""
    rows: list[Any] = []
    for offset, page in sorted(pages.items()):
        rows += page.rows[max(0, len(rows) - offset) :]
    return rows


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _address(value: object) -> AddressInfo | None:
    """An address as the router writes it (IPv6 maybe in brackets), parsed and canonical."""
    return address_info(value.strip("[]")) if isinstance(value, str) else None


def _proc_number(payload: dict[str, Any], path: str) -> int:
    """The count a /proc file holds: plain ASCII digits, else RouterResponseError."""
    data = payload.get("data")
    text = data.strip() if isinstance(data, str) else ""
    try:
        if not (text.isascii() and text.isdigit()):
            raise ValueError
        return int(text)
    except ValueError as err:  # also digits beyond int's limit for text
        raise RouterResponseError(
            f"file read {path} did not return a number: {payload!r:.80}"
        ) from err


def _add_addresses(device: dict[str, Any], values: object) -> None:
    """Each address in ``values`` to the device's list of its family, as canonical text."""
    for value in _list(values):
        if (info := _address(value)) is not None:
            device["ipv4" if info.family == IPV4 else "ipv6"].append(info.address)


def _merge_devices(hints: dict[str, Any], leases: dict[str, Any]) -> dict[str, LanDevice]:
    """Host hints (MAC -> ipaddrs, ip6addrs, name) and DHCP leases, by normalised MAC."""
    found: dict[str, dict[str, Any]] = {}

    def entry(mac: str) -> dict[str, Any]:
        return found.setdefault(mac, {"ipv4": [], "ipv6": [], "hostname": None, "name": None})

    for key, hint in hints.items():
        mac = normalize_mac(key)
        if mac is None or not isinstance(hint, dict):
            continue
        device = entry(mac)
        # 24.10 answers address lists; older rpcd-mod-luci one "ipv4" / "ipv6" string.
        for name in ("ipaddrs", "ip6addrs"):
            _add_addresses(device, hint.get(name))
        _add_addresses(device, [hint.get("ipv4"), hint.get("ipv6")])
        device["name"] = clean_label(hint.get("name"))
    for key in ("dhcp_leases", "dhcp6_leases"):
        for lease in _list(leases.get(key)):
            if not isinstance(lease, dict) or (mac := normalize_mac(lease.get("macaddr"))) is None:
                continue
            device = entry(mac)
            _add_addresses(device, [lease.get("ipaddr"), lease.get("ip6addr")])
            _add_addresses(device, lease.get("ip6addrs"))
            device["hostname"] = device["hostname"] or clean_label(lease.get("hostname"))
    return {
        mac: LanDevice(
            mac=mac,
            ipv4=tuple(dict.fromkeys(device["ipv4"])),
            ipv6=tuple(dict.fromkeys(device["ipv6"])),
            hostname=device["hostname"],
            name=device["name"],
        )
        for mac, device in sorted(found.items())
    }
