"""What every parser's output must satisfy, however bad its input, and how a parse may fail.

A parser that is handed garbage either raises its documented error (``outcome``
turns that into None) or returns a result that keeps these invariants; anything
else, any other exception included, fails the fuzz test.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Final

from custom_components.phonehome.core.addresses import address_info
from custom_components.phonehome.core.model import UNKNOWN_PROTOCOL, Flow
from custom_components.phonehome.core.parsing import MAX_PORT, MAX_PROTOCOL, ParseResult
from custom_components.phonehome.routers.base import DeviceTraffic, LanDevice, QuarantineState

MAC: Final = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
IPV4_COMPATIBLE: Final = ipaddress.ip_network("::/96")
"""``::a.b.c.d``: Python writes ``::102:304``, inet_ntop (and so every flow) ``::1.2.3.4``."""


def outcome[T](parse: Callable[[], T], *errors: type[Exception]) -> T | None:
    """The parse's result, or None when it raised one of its documented ``errors``."""
    try:
        return parse()
    except errors:
        return None


def is_count(value: object) -> bool:
    """A non-negative integer (not a bool)."""
    return type(value) is int and value >= 0


def check_address(address: object, family: int | None = None) -> None:
    """Canonical text (as the flows carry it) of the given family."""
    assert isinstance(address, str)
    info = address_info(address)
    assert info is not None, address
    assert info.address == address, address
    assert family is None or info.family == family, address


def check_flow(flow: Flow) -> None:
    """Canonical addresses of one family with their scopes; ports, protocol and counters in range."""
    assert type(flow) is Flow
    assert flow.family in {4, 6}
    for address, scope in ((flow.src, flow.src_scope), (flow.dst, flow.dst_scope)):
        check_address(address, flow.family)
        info = address_info(address)
        assert info is not None
        assert info.scope == scope
    assert type(flow.protocol) is int
    assert flow.protocol == UNKNOWN_PROTOCOL or 0 <= flow.protocol <= MAX_PROTOCOL
    for port in (flow.sport, flow.dport):
        assert port is None or (type(port) is int and 0 <= port <= MAX_PORT)
    counters = (flow.timeout, flow.total_packets, flow.total_bytes)
    for value in (*counters, flow.reply_packets, flow.reply_bytes):
        assert value is None or is_count(value)
    assert is_count(flow.mark)
    assert is_count(flow.zone)
    assert is_count(flow.connections)
    assert flow.connections >= 1
    assert flow.secctx is None or (isinstance(flow.secctx, str) and flow.secctx)


def check_result(result: ParseResult) -> None:
    """Statistics add up (every line or entry read is a flow or a counted skip); flows sound."""
    assert result.stats.flows == len(result.flows)
    assert result.stats.lines == result.stats.flows + result.stats.skipped.total()
    assert all(count > 0 for count in result.stats.skipped.values())
    for flow in result.flows:
        check_flow(flow)


def check_devices(devices: Mapping[str, LanDevice]) -> None:
    """Keyed by their normalised MAC; addresses canonical, each in its family's list, once."""
    for mac, device in devices.items():
        assert type(device) is LanDevice
        assert MAC.fullmatch(mac)
        assert device.mac == mac
        assert mac != "00:00:00:00:00:00"
        for addresses, family in ((device.ipv4, 4), (device.ipv6, 6)):
            assert isinstance(addresses, tuple)
            assert len(set(addresses)) == len(addresses)
            for address in addresses:
                check_address(address, family)
        for text in (device.hostname, device.name, device.vendor):
            assert text is None or (isinstance(text, str) and text)
        for flag in (device.wired, device.blocked):
            assert flag is None or isinstance(flag, bool)


def check_states(states: Mapping[str, QuarantineState]) -> None:
    """Quarantine states by normalised MAC: a bool, and a packet count or None."""
    for mac, state in states.items():
        assert MAC.fullmatch(mac)
        assert isinstance(state.enforced, bool)
        assert state.blocked_packets is None or is_count(state.blocked_packets)


def check_traffic(traffic: Mapping[str, DeviceTraffic]) -> None:
    """DPI totals by normalised MAC: counts only."""
    for mac, totals in traffic.items():
        assert MAC.fullmatch(mac)
        assert is_count(totals.tx_bytes)
        assert is_count(totals.rx_bytes)
        for value in (totals.tx_packets, totals.rx_packets):
            assert value is None or is_count(value)
