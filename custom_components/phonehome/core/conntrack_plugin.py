"""Reader of the rows of the phonehome rpcd plugin (router/openwrt/phonehome).

A ``phonehome conntrack`` page is ``{"version", "snapshot", "total", "offset",
"rows", "next"}``; a row is a compact array, the kernel entries that differ only
in source port: ``[family, protocol, src, dst, dport, connections, unreplied,
orig_packets, orig_bytes, reply_packets, reply_bytes, min_timeout]``. A row never
mixes replied and [UNREPLIED] entries, so ``unreplied`` is 0 or ``connections``.

``decode_plugin_page`` decodes one page's payload straight into typed structs
(msgspec checks every type and range in C); a page with a row that does not
decode so is decoded loosely and its rows are checked one by one by
``parse_plugin_rows``, which skips and counts what it cannot use.
"""

from collections.abc import Buffer
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec

from .addresses import address_info
from .model import Flow
from .parsing import (
    MAX_PORT,
    MAX_PROTOCOL,
    ConntrackParseError,
    ParseResult,
    ParseStats,
    SkipReason,
    finish,
)

_Count = Annotated[int, msgspec.Meta(ge=0)]
_Row = tuple[
    int,
    Annotated[int, msgspec.Meta(ge=0, le=MAX_PROTOCOL)],
    str,
    str,
    Annotated[int, msgspec.Meta(ge=0, le=MAX_PORT)] | None,
    Annotated[int, msgspec.Meta(ge=1)],
    _Count,
    _Count | None,
    _Count | None,
    _Count | None,
    _Count | None,
    _Count | None,
]
_COLUMNS: Final = 12


class _Page(msgspec.Struct, gc=False):
    snapshot: str
    total: _Count
    offset: _Count
    rows: list[_Row]
    next: _Count | None = None


class _LoosePage(msgspec.Struct, gc=False):
    snapshot: str
    total: _Count
    offset: _Count
    rows: list[Any]
    next: _Count | None = None


class _Error(msgspec.Struct):
    error: str


_PAGE: Final = msgspec.json.Decoder(_Page)
_LOOSE: Final = msgspec.json.Decoder(_LoosePage)
_ERROR: Final = msgspec.json.Decoder(_Error)


@dataclass(frozen=True, slots=True)
class PluginPage:
    """One page of ``phonehome conntrack``: where it sits and its rows, not yet checked."""

    snapshot: str
    total: int
    offset: int
    next: int | None
    rows: list[Any]
    size: int = 0
    """Bytes of the payload it was decoded from."""


def decode_plugin_page(payload: Buffer | str) -> PluginPage:
    """Decode the payload of one ``phonehome conntrack`` reply (the object, not the envelope).

    Raises ConntrackParseError when it is not a page (the plugin's ``{"error": ...}``
    included, with its message).
    """
    try:
        page: _Page | _LoosePage = _PAGE.decode(payload)
    except msgspec.MsgspecError:
        try:
            page = _LOOSE.decode(payload)
        except msgspec.MsgspecError as err:
            try:
                message = _ERROR.decode(payload).error
            except msgspec.MsgspecError:
                raise ConntrackParseError(f"not a phonehome conntrack page: {err}") from err
            raise ConntrackParseError(f"the plugin answered an error: {message}") from err
    size = len(payload.encode()) if isinstance(payload, str) else memoryview(payload).nbytes
    return PluginPage(page.snapshot, page.total, page.offset, page.next, page.rows, size)


def parse_plugin_rows(rows: object) -> ParseResult:
    """Turn the plugin's rows (decoded from JSON) into flows, one per row."""
    if not isinstance(rows, list):
        raise ConntrackParseError(f"expected a list of rows, got {type(rows).__name__}")
    stats = ParseStats()
    flows: list[Flow] = []
    append = flows.append
    addresses: dict[str, Any] = {}
    for row in rows:
        flow_or_reason = _read_row(row, addresses)
        if isinstance(flow_or_reason, Flow):
            append(flow_or_reason)
        else:
            stats.skipped[flow_or_reason] += 1
    return finish(flows, stats, rows)


def _count(value: object) -> bool:
    return type(value) is int and value >= 0


def _read_row(row: object, addresses: dict[str, Any]) -> Flow | SkipReason:  # noqa: PLR0911
    """Check one row and make its flow, or say why not."""
    if not isinstance(row, list | tuple) or len(row) != _COLUMNS:
        return SkipReason.LAYOUT
    family, protocol, src_text, dst_text, dport, connections, unreplied = row[:7]
    orig_packets, orig_bytes, reply_packets, reply_bytes, min_timeout = row[7:]
    if not (isinstance(src_text, str) and isinstance(dst_text, str)):
        return SkipReason.ADDRESS
    src = addresses.get(src_text)
    if src is None:
        src = addresses[src_text] = address_info(src_text)
    dst = addresses.get(dst_text)
    if dst is None:
        dst = addresses[dst_text] = address_info(dst_text)
    if src is None or dst is None:
        return SkipReason.ADDRESS
    if not (src.family == dst.family == family):
        return SkipReason.FAMILY
    if type(protocol) is not int or not 0 <= protocol <= MAX_PROTOCOL:
        return SkipReason.PROTOCOL
    if dport is not None and (type(dport) is not int or not 0 <= dport <= MAX_PORT):
        return SkipReason.PORT
    counters = (orig_packets, orig_bytes, reply_packets, reply_bytes)
    counted = all(_count(value) for value in counters)
    if not (
        _count(connections)
        and connections >= 1
        and type(unreplied) is int
        and unreplied in {0, connections}
        and (counted or all(value is None for value in counters))
        and (min_timeout is None or _count(min_timeout))
    ):
        return SkipReason.VALUE
    return Flow(
        src.family,
        protocol,
        src.address,
        dst.address,
        None,
        dport,
        src.scope,
        dst.scope,
        unreplied == 0,
        None,
        None,
        min_timeout,
        orig_packets + reply_packets if counted else None,
        orig_bytes + reply_bytes if counted else None,
        reply_packets,
        reply_bytes,
        False,
        0,
        0,
        None,
        connections,
    )
