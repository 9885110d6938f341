"""UniFi Network (UniFi OS consoles and legacy controllers): devices, flows, quarantine.

- Identity: ``stat/sysinfo`` (``anonymous_controller_id``, name, console type,
  Network version) and the site from ``/api/self/sites``; the unique id is the
  controller's anonymous id plus the site name. The site's ``role`` ("admin" or
  "readonly") decides whether this account may quarantine.
- Devices: ``stat/sta``.
- Connections, best first: the gateway's conntrack through an optional
  ``gateway`` router (LinuxSshRouter: table_source "proc" / "conntrack"); the v2
  ``traffic-flows`` endpoint (Network 9+: recent flow records, paged,
  table_source "traffic_flows"); else ``stat/stadpi`` per-client totals, no flows
  (table_source "dpi"); else none.
- Quarantine: an object-oriented network config named ``phonehome_<mac>`` with
  ``secure.internet.mode = TURN_OFF_INTERNET`` targeting the client's MAC: the
  internet is cut, the LAN stays. ``cmd/stamgr block-sta`` too, only with
  ``full_block``. Every change is read back.
"""

import logging
import time
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from ..core.model import Flow
from .base import (
    Capabilities,
    DeviceTraffic,
    LanDevice,
    QuarantineRecord,
    QuarantineState,
    Router,
    RouterError,
    RouterInfo,
    RouterPermissionError,
    RouterResponseError,
    RouterVerificationError,
    Snapshot,
    quarantine_name,
)
from .unifi_api import (
    ADMIN_HELP,
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    EndpointMissingError,
    UniFiClient,
)
from .unifi_parse import (
    config_id,
    enforces,
    ours,
    parse_clients,
    parse_dpi,
    parse_flow_page,
    quarantine_config,
    records,
    text,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT: Final = 443
DEFAULT_SITE: Final = "default"
DEFAULT_FLOW_CAP: Final = 10000
"""Most flow records read a poll (the console caps a query's total at 10,000)."""
FLOW_PAGE_SIZE: Final = 500
FLOW_WINDOW: Final = 300.0
"""Seconds of flow records a poll asks for."""
OON_LIST: Final = "object-oriented-network-configs"
OON_ITEM: Final = "object-oriented-network-config"
"""Create (POST), update (PUT /id) and delete (DELETE /id) use the singular path."""
WRITE_RIGHT: Final = "Network admin"


class UniFiRouter:
    """A UniFi Network site reached through its controller (implements ``Router``)."""

    kind = "unifi"

    def __init__(  # noqa: PLR0913
        self,
        session: aiohttp.ClientSession,
        host: str,
        username: str,
        password: str,
        *,
        port: int = DEFAULT_PORT,
        site: str = DEFAULT_SITE,
        verify_ssl: bool = True,
        full_block: bool = False,
        gateway: Router | None = None,
        conntrack_cap: int = DEFAULT_FLOW_CAP,
        flow_window: float = FLOW_WINDOW,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.host = host
        self.full_block = full_block
        self.gateway = gateway
        """Optional: the gateway's own Router (SSH) whose conntrack gives the flows."""
        self.conntrack_cap = gateway.conntrack_cap if gateway is not None else conntrack_cap
        self.flow_window = flow_window
        self.api = UniFiClient(
            session,
            host,
            port,
            username,
            password,
            site=site,
            verify_ssl=verify_ssl,
            timeout=timeout,
            max_bytes=max_bytes,
        )
        self.admin = False
        """The account is an admin of the site (may write configs)."""
        self.oon = False
        """The controller has object-oriented network configs (Network 9.4+)."""
        self.source = "none"
        """"traffic_flows", "dpi", "none" (found at connect), or the gateway's source."""

    # ------------------------------------------------------------ Router

    async def connect(self) -> RouterInfo:
        """Log in, identify the controller and site, find the sources this account may use."""
        await self.api.login()
        site = await self._site()
        sysinfo = records(await self.api.request("GET", self.api.v1("stat/sysinfo")), "sysinfo")
        info = sysinfo[0] if sysinfo else {}
        self.admin = site.get("role") == "admin"
        self.oon = await self._probe(OON_LIST)
        self.source = await self._find_source()
        if self.gateway is not None:
            await self.gateway.connect()
        controller = text(info.get("anonymous_controller_id")) or text(site.get("_id"))
        if controller is None:
            raise RouterResponseError("the controller names neither its id nor the site's")
        name = text(info.get("name")) or text(info.get("hostname")) or self.host
        site_label = text(site.get("desc")) or self.api.site
        return RouterInfo(
            unique_id=f"{controller}_{self.api.site}",
            name=f"{name} ({site_label})" if self.api.site != DEFAULT_SITE else name,
            model=text(info.get("ubnt_device_type")),
            firmware=text(info.get("version")),
        )

    async def check_access(self) -> None:
        """Every read a poll makes, once; RouterPermissionError names the refused one."""
        await self.api.request("GET", self.api.v1("stat/sta"), right="stat/sta")
        if self.oon:
            await self.api.request("GET", self.api.v2(OON_LIST), right=OON_LIST)
        if self.gateway is not None:
            await self.gateway.check_access()

    async def snapshot(self) -> Snapshot:
        """Clients, the best connection source, and the quarantine configs."""
        devices = parse_clients(
            await self.api.request("GET", self.api.v1("stat/sta"), right="stat/sta")
        )
        flows: list[Flow] = []
        traffic: dict[str, DeviceTraffic] = {}
        source = self.source
        counters = source == "traffic_flows"
        count: int | None = None
        if self.gateway is not None:
            table = await self.gateway.snapshot()
            flows, source = table.flows, table.capabilities.table_source
            counters, count = table.capabilities.byte_counters, table.conntrack_count
        elif source == "traffic_flows":
            flows = await self._flows()
        elif source == "dpi":
            traffic = parse_dpi(await self._dpi())
        quarantined: dict[str, QuarantineState] = {}
        if self.oon:
            for mac, configs in ours(await self._configs()).items():
                enforced = any(enforces(config, mac) for config in configs)
                quarantined[mac] = QuarantineState(enforced=enforced, blocked_packets=None)
        return Snapshot(
            taken_at=datetime.now(UTC),
            flows=flows,
            devices=devices,
            capabilities=Capabilities(
                byte_counters=counters,
                quarantine=self.admin and (self.oon or self.full_block),
                cut_live_flows=False,
                table_source=source,
            ),
            conntrack_count=count,
            table_read=source != "none",
            quarantined=quarantined,
            device_traffic=traffic,
        )

    async def quarantine(self, device: LanDevice) -> QuarantineRecord:
        """The OON config (and block-sta with full_block), read back; idempotent."""
        mac, name = device.mac, quarantine_name(device.mac)
        if not self.admin:
            raise RouterPermissionError(
                f"the UniFi account may not change site {self.api.site!r}: {ADMIN_HELP}",
                acl=WRITE_RIGHT,
            )
        if not self.oon and not self.full_block:
            raise RouterResponseError(
                "this controller has no object-oriented network configs (UniFi Network "
                "9.4 or later): update it, or turn on full block in the options"
            )
        written: str | None = None
        blocked = False
        try:
            if self.oon:
                written = await self._put_config(name, mac)
            if self.full_block and device.blocked is not True:
                await self._stamgr("block-sta", mac)
                blocked = True
            await self._verify(name, mac, blocked=blocked)
        except RouterVerificationError:
            await self._undo(name, mac, written=written, unblock=blocked)
            raise
        return QuarantineRecord(
            mac=mac, name=name, addresses=device.ipv4 + device.ipv6, station_blocked=blocked
        )

    async def release(self, record: QuarantineRecord) -> None:
        """Delete the configs named ``record.name`` (and unblock what quarantine blocked)."""
        if self.oon:
            for config in ours(await self._configs()).get(record.mac, []):
                if config.get("name") == record.name:
                    await self._delete_config(config_id(config))
            if record.mac in ours(await self._configs()):
                raise RouterVerificationError(
                    f"the controller still shows {record.name} after deleting it"
                )
        if record.station_blocked:
            await self._stamgr("unblock-sta", record.mac)

    async def close(self) -> None:
        """Log out (best effort; never raises) and close the gateway's connection."""
        await self.api.logout()
        if self.gateway is not None:
            await self.gateway.close()

    # ------------------------------------------------------------ sources

    async def _site(self) -> dict[str, Any]:
        sites = records(
            await self.api.request("GET", f"{self.api.prefix}/api/self/sites"), "site list"
        )
        for site in sites:
            if site.get("name") == self.api.site:
                return site
        names = ", ".join(f"{s.get('name')} ({s.get('desc')})" for s in sites) or "none"
        raise RouterResponseError(
            f"the controller has no site {self.api.site!r} for this account; its sites: "
            f"{names} (use the site name, as in the address /manage/<name>/...)"
        )

    async def _probe(self, path: str, json: object = None) -> bool:
        try:
            await self.api.request("POST" if json is not None else "GET", self.api.v2(path), json)
        except EndpointMissingError:
            return False
        return True

    async def _find_source(self) -> str:
        if await self._probe("traffic-flows", self._flow_query(0, 1)):
            return "traffic_flows"
        try:
            await self._dpi()
        except EndpointMissingError:
            return "none"
        return "dpi"

    def _flow_query(self, page: int, size: int) -> dict[str, int]:
        now = int(time.time() * 1000)
        return {
            "timestampFrom": now - int(self.flow_window * 1000),
            "timestampTo": now,
            "pageNumber": page,
            "pageSize": size,
        }

    async def _flows(self) -> list[Flow]:
        """Every page of the window's flow records, up to ``conntrack_cap``."""
        flows: list[Flow] = []
        query = self._flow_query(0, FLOW_PAGE_SIZE)
        for page in range(max(1, -(-self.conntrack_cap // FLOW_PAGE_SIZE))):
            query["pageNumber"] = page
            document = await self.api.request(
                "POST", self.api.v2("traffic-flows"), query, right="traffic-flows"
            )
            batch, more = parse_flow_page(document)
            flows.extend(batch)
            if not more or not batch:
                break
        return flows[: self.conntrack_cap]

    async def _dpi(self) -> object:
        return await self.api.request(
            "POST", self.api.v1("stat/stadpi"), {"type": "by_app"}, right="stat/stadpi"
        )

    # ------------------------------------------------------------ quarantine

    async def _configs(self) -> list[dict[str, Any]]:
        return records(
            await self.api.request("GET", self.api.v2(OON_LIST), right=OON_LIST),
            "object-oriented network configs",
        )

    async def _put_config(self, name: str, mac: str) -> str | None:
        """Create the config, or fix one of that name: the id written, None when it held.

        The id comes from the answer (a read-back that hides the config must not
        keep the undo from finding it); "" when the controller answered none.
        """
        existing = ours(await self._configs()).get(mac, [])
        existing = [config for config in existing if config.get("name") == name]
        wanted = quarantine_config(name, mac)
        if any(enforces(config, mac) for config in existing):
            return None
        if existing:
            identifier = config_id(existing[0])
            await self.api.request(
                "PUT",
                self.api.v2(f"{OON_ITEM}/{identifier}"),
                {**existing[0], **wanted},
                right=WRITE_RIGHT,
            )
            return identifier
        answer = await self.api.request("POST", self.api.v2(OON_ITEM), wanted, right=WRITE_RIGHT)
        created = answer[0] if isinstance(answer, list) and answer else answer
        return (
            str(created.get("_id") or created.get("id") or "") if isinstance(created, dict) else ""
        )

    async def _delete_config(self, identifier: str) -> None:
        try:
            await self.api.request(
                "DELETE", self.api.v2(f"{OON_ITEM}/{identifier}"), right=WRITE_RIGHT
            )
        except EndpointMissingError:
            _LOGGER.debug("Config %s was already gone", identifier)

    async def _stamgr(self, command: str, mac: str) -> None:
        await self.api.request(
            "POST", self.api.v1("cmd/stamgr"), {"cmd": command, "mac": mac}, right=WRITE_RIGHT
        )

    async def _verify(self, name: str, mac: str, *, blocked: bool) -> None:
        if self.oon and not any(
            enforces(config, mac) and config.get("name") == name
            for config in ours(await self._configs()).get(mac, [])
        ):
            raise RouterVerificationError(
                f"the controller took {name} but does not show it in force for {mac} "
                "(enabled, TURN_OFF_INTERNET, always, targeting the MAC)"
            )
        if blocked:
            clients = parse_clients(
                await self.api.request("GET", self.api.v1(f"stat/user/{mac}"), right="stat/user")
            )
            if mac not in clients or clients[mac].blocked is not True:
                raise RouterVerificationError(
                    f"the controller took block-sta for {mac} but does not show it blocked"
                )

    async def _undo(self, name: str, mac: str, *, written: str | None, unblock: bool) -> None:
        """Best effort: remove what a quarantine that failed verification added."""
        try:
            if written:
                await self._delete_config(written)
            elif written is not None:
                for config in ours(await self._configs()).get(mac, []):
                    if config.get("name") == name:
                        await self._delete_config(config_id(config))
            if unblock:
                await self._stamgr("unblock-sta", mac)
        except RouterError as err:
            _LOGGER.warning("Could not undo the unverified quarantine of %s: %s", mac, err)
