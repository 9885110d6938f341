"""UniFi Network payloads turned into the router model: clients, traffic flows, OON configs.

Shapes, from the fixtures in shared/fixtures/unifi/:

- ``stat/sta`` clients (aiounifi tests/fixtures.py WIRED_CLIENT, WIRELESS_CLIENT):
  ``mac``, ``ip``, ``hostname``, ``name``, ``oui``, ``is_wired``, ``blocked``;
- v2 ``traffic-flows`` records (unifi-mcp tests/fixtures/traffic_flows.json):
  ``protocol`` ("TCP"), ``action`` ("allowed" | "blocked"), ``source`` and
  ``destination`` (``ip``, ``port``, ``mac``), ``traffic_data`` (``bytes_tx`` from
  the source, ``bytes_rx`` back to it, ``packets_*``, ``*_total``);
- object-oriented network configs (aiounifi tests/test_object_oriented_network_configs.py):
  ``_id`` (or ``id``), ``name``, ``enabled``, ``target_type`` "CLIENTS", ``targets``
  (MACs, or ``{"type": "MAC", "value": ...}``), ``secure.internet.mode``
  "TURN_OFF_INTERNET" with ``schedule.mode`` "ALWAYS".
"""

from collections.abc import Iterable
from typing import Any, Final

from ..core.addresses import AddressInfo, address_info, normalize_mac
from ..core.model import UNKNOWN_PROTOCOL, Flow
from ..core.parsing import MAX_PORT
from .base import QUARANTINE_PREFIX, DeviceTraffic, LanDevice, RouterResponseError

PROTOCOLS: Final = {"ICMP": 1, "IGMP": 2, "TCP": 6, "UDP": 17, "GRE": 47, "ESP": 50, "AH": 51}
PROTOCOLS_BY_FAMILY: Final = {("ICMP", 6): 58}
TURN_OFF_INTERNET: Final = "TURN_OFF_INTERNET"


def text(value: object) -> str | None:
    """A non-empty stripped string, else None."""
    return value.strip() or None if isinstance(value, str) else None


def _count(value: object, limit: int | None = None) -> int | None:
    """A non-negative integer (at most ``limit``), else None: JSON true, -1 or 70000 is no count."""
    if type(value) is not int or value < 0 or (limit is not None and value > limit):
        return None
    return value


def _address(value: object) -> AddressInfo | None:
    return address_info(value) if isinstance(value, str) else None


def records(data: object, what: str) -> list[dict[str, Any]]:
    """The objects of a list answer; RouterResponseError when it is no list."""
    if not isinstance(data, list):
        raise RouterResponseError(f"the controller's {what} is not a list")
    return [item for item in data if isinstance(item, dict)]


def parse_clients(data: object) -> dict[str, LanDevice]:
    """``stat/sta`` -> devices by MAC (``blocked``: UniFi's block-sta is on)."""
    devices: dict[str, LanDevice] = {}
    for client in records(data, "client list (stat/sta)"):
        mac = normalize_mac(client.get("mac"))
        if mac is None:
            continue
        ipv4: list[str] = []
        ipv6: list[str] = []
        ipv6_list = client.get("ipv6")
        addresses = [client.get("ip"), *(ipv6_list if isinstance(ipv6_list, list) else ())]
        for address in addresses:
            if (info := _address(address)) is not None:
                (ipv4 if info.family == 4 else ipv6).append(info.address)  # noqa: PLR2004
        wired = client.get("is_wired")
        devices[mac] = LanDevice(
            mac=mac,
            ipv4=tuple(ipv4),
            ipv6=tuple(ipv6),
            hostname=text(client.get("hostname")),
            name=text(client.get("name")),
            vendor=text(client.get("oui")),
            wired=wired if isinstance(wired, bool) else None,
            blocked=client.get("blocked") is True,
        )
    return devices


def parse_flow(record: dict[str, Any]) -> Flow | None:
    """One traffic-flows record as a Flow of its original direction; None when unusable."""
    source, destination = record.get("source"), record.get("destination")
    if not isinstance(source, dict) or not isinstance(destination, dict):
        return None
    src = _address(source.get("ip"))
    dst = _address(destination.get("ip"))
    if src is None or dst is None or src.family != dst.family:
        return None
    name = str(record.get("protocol") or "").upper()
    protocol = PROTOCOLS_BY_FAMILY.get((name, src.family), PROTOCOLS.get(name, UNKNOWN_PROTOCOL))
    counters = record.get("traffic_data")
    counters = counters if isinstance(counters, dict) else {}
    reply_packets = _count(counters.get("packets_rx"))
    reply_bytes = _count(counters.get("bytes_rx"))
    replied: bool | None = None
    if record.get("action") == "blocked":
        replied = False
    elif reply_packets is not None or reply_bytes is not None:
        replied = bool(reply_packets or reply_bytes)
    return Flow(
        family=src.family,
        protocol=protocol,
        src=src.address,
        dst=dst.address,
        sport=_count(source.get("port"), MAX_PORT),
        dport=_count(destination.get("port"), MAX_PORT),
        src_scope=src.scope,
        dst_scope=dst.scope,
        replied=replied,
        assured=None,
        state=None,
        timeout=None,
        total_packets=_count(counters.get("packets_total")),
        total_bytes=_count(counters.get("bytes_total")),
        reply_packets=reply_packets,
        reply_bytes=reply_bytes,
        offloaded=False,
        mark=0,
        zone=0,
        secctx=None,
    )


def parse_flow_page(document: object) -> tuple[list[Flow], bool]:
    """One page of traffic-flows: its flows, and whether another page follows."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise RouterResponseError("the controller's traffic-flows page holds no data list")
    flows = [
        flow
        for record in records(document["data"], "traffic-flows page")
        if (flow := parse_flow(record)) is not None
    ]
    return flows, document.get("has_next") is True


def parse_dpi(data: object) -> dict[str, DeviceTraffic]:
    """``stat/stadpi`` (type by_app): each client's bytes and packets, summed over apps."""
    totals: dict[str, DeviceTraffic] = {}
    for entry in records(data, "DPI statistics (stat/stadpi)"):
        mac = normalize_mac(entry.get("mac"))
        apps = entry.get("by_app")
        if mac is None or not isinstance(apps, list):
            continue
        sums = dict.fromkeys(("tx_bytes", "rx_bytes", "tx_packets", "rx_packets"), 0)
        for app in apps:
            if isinstance(app, dict):
                for key in sums:
                    sums[key] += _count(app.get(key)) or 0
        totals[mac] = DeviceTraffic(**sums)
    return totals


# ---------------------------------------------------------------- quarantine configs


def config_id(config: dict[str, Any]) -> str:
    """``_id``, or ``id`` on controllers that name it so."""
    value = config.get("_id") or config.get("id")
    if not isinstance(value, str) or not value:
        raise RouterResponseError(f"the controller's config {config.get('name')!r} has no id")
    return value


def targets(config: dict[str, Any]) -> set[str]:
    """The client MACs a config targets (plain MACs or ``{"type": "MAC", "value": ...}``)."""
    found: set[str] = set()
    listed = config.get("targets")
    for target in listed if isinstance(listed, list) else ():
        value = target.get("value") if isinstance(target, dict) else target
        if (mac := normalize_mac(value)) is not None:
            found.add(mac)
    return found


def enforces(config: dict[str, Any], mac: str) -> bool:
    """The config is on, cuts the internet always, and targets the MAC."""
    secure = config.get("secure")
    internet = secure.get("internet") if isinstance(secure, dict) else None
    if not isinstance(internet, dict):
        return False
    schedule = internet.get("schedule")
    always = not isinstance(schedule, dict) or schedule.get("mode", "ALWAYS") == "ALWAYS"
    return (
        config.get("enabled") is True
        and secure.get("enabled") is True  # type: ignore[union-attr]
        and internet.get("mode") == TURN_OFF_INTERNET
        and always
        and config.get("target_type", "CLIENTS") == "CLIENTS"
        and mac in targets(config)
    )


def quarantine_config(name: str, mac: str) -> dict[str, Any]:
    """The config that cuts one client off the internet (LAN untouched), always."""
    return {
        "name": name,
        "enabled": True,
        "target_type": "CLIENTS",
        "targets": [mac],
        "secure": {
            "enabled": True,
            "internet": {"mode": TURN_OFF_INTERNET, "schedule": {"mode": "ALWAYS"}},
        },
        "qos": {"enabled": False},
        "route": {"enabled": False},
    }


def ours(configs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The configs named ``phonehome_<12 hex digits>``, by the MAC in their name."""
    found: dict[str, list[dict[str, Any]]] = {}
    for config in configs:
        name = config.get("name")
        if not isinstance(name, str) or not name.startswith(QUARANTINE_PREFIX):
            continue
        mac = normalize_mac(name.removeprefix(QUARANTINE_PREFIX))
        if mac is not None:
            found.setdefault(mac, []).append(config)
    return found
