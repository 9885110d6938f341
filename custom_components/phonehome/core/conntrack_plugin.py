"""Reader of the rows of the phonehome rpcd plugin (router/openwrt/phonehome).

A ``phonehome conntrack`` page is ``{"version", "snapshot", "total", "offset",
"rows", "next"}``; a row is a compact array, the kernel entries that differ only
in source port: ``[family, protocol, src, dst, dport, connections, unreplied,
orig_packets, orig_bytes, reply_packets, reply_bytes, min_timeout]``. A row never
mixes replied and [UNREPLIED] entries, so ``unreplied`` is 0 or ``connections``.

``decode_plugin_page`` decodes one page's payload straight into typed rows
(msgspec checks every type and range in C), structs the garbage collector does
not track; a page with a row that does not decode so is decoded loosely.
``parse_plugin_rows`` turns a typed row whose addresses it has seen before into a
flow inline; every other row it checks in full, and skips and counts what it
cannot use.
"""

from collections.abc import Buffer
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec

from .addresses import AddressInfo, AddressScope, address_info
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
_COLUMNS: Final = 12
_LEARNED_LIMIT: Final = 1 << 16


class _Row(msgspec.Struct, array_like=True, gc=False):
    """One row, every type and range checked by msgspec.

    What msgspec cannot check (the addresses, and how the fields agree)
    ``parse_plugin_rows`` checks. Untracked by the garbage collector (it holds
    only atoms), so a poll's 56,000 rows add nothing to the collector's work.
    """

    family: int
    protocol: Annotated[int, msgspec.Meta(ge=0, le=MAX_PROTOCOL)]
    src: str
    dst: str
    dport: Annotated[int, msgspec.Meta(ge=0, le=MAX_PORT)] | None
    connections: Annotated[int, msgspec.Meta(ge=1)]
    unreplied: _Count
    orig_packets: _Count | None
    orig_bytes: _Count | None
    reply_packets: _Count | None
    reply_bytes: _Count | None
    min_timeout: _Count | None


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

_LEARNED: Final[dict[str, tuple[str, int, AddressScope]]] = {}
"""Address text -> (canonical text, family, scope), kept across polls: a home's
tables repeat their addresses. Started afresh when full; the rows then relearn
what is still in use."""


@dataclass(frozen=True, slots=True)
class PluginPage:
    """One page of ``phonehome conntrack``: where it sits and its rows, not yet checked."""

    snapshot: str
    total: int
    offset: int
    next: int | None
    rows: list[Any]
    """Typed rows when the whole page decoded so, else the rows as JSON gave them."""
    size: int = 0
    """Bytes of the payload it was decoded from."""


def decode_plugin_page(payload: Buffer | str) -> PluginPage:
    """Decode the payload of one ``phonehome conntrack`` reply (the object, not the envelope).

    Raises ConntrackParseError when it is not a page (the plugin's ``{"error": ...}``
    included, with its message). A byte that is not UTF-8 reads as U+FFFD, so a row
    with one in an address is skipped, not the page.
    """
    try:
        page = _decode(payload)
    except UnicodeError:  # not UTF-8 (bytes) or a lone surrogate (str): rare, so decoded twice
        page = _decode(_replace_invalid(payload))
    if isinstance(payload, str):
        size = len(payload.encode(errors="surrogatepass"))
    else:
        size = memoryview(payload).nbytes
    return PluginPage(page.snapshot, page.total, page.offset, page.next, page.rows, size)


def _decode(payload: Buffer | str) -> _Page | _LoosePage:
    """The page typed, else loosely; ConntrackParseError when it is not a page."""
    try:
        return _PAGE.decode(payload)
    except (msgspec.MsgspecError, RecursionError):  # RecursionError: nested too deep
        try:
            return _LOOSE.decode(payload)
        except (msgspec.MsgspecError, RecursionError) as err:
            try:
                message = _ERROR.decode(payload).error
            except (msgspec.MsgspecError, RecursionError):
                raise ConntrackParseError(f"not a phonehome conntrack page: {err}") from err
            raise ConntrackParseError(f"the plugin answered an error: {message}") from err


def _replace_invalid(payload: Buffer | str) -> bytes:
    """The payload as UTF-8, each invalid byte or lone surrogate replaced by U+FFFD."""
    data = payload.encode(errors="surrogatepass") if isinstance(payload, str) else bytes(payload)
    return data.decode(errors="replace").encode()


def parse_plugin_rows(rows: object) -> ParseResult:
    """Turn the plugin's rows (typed, or as JSON gave them) into flows, one per row.

    A typed row whose addresses were seen before and whose fields agree becomes a
    flow right here, with no call; any other row goes through ``_read_row``, which
    checks everything and says why a row is skipped.
    """
    if not isinstance(rows, list):
        raise ConntrackParseError(f"expected a list of rows, got {type(rows).__name__}")
    stats = ParseStats()
    flows: list[Flow] = []
    append = flows.append
    learned = _LEARNED
    for row in rows:
        try:
            src, family, src_scope = learned[row.src]
            dst, dst_family, dst_scope = learned[row.dst]
            connections = row.connections
            unreplied = row.unreplied
            orig_packets = row.orig_packets
            if (
                family != dst_family
                or family != row.family
                or (unreplied and unreplied != connections)
            ):
                raise LookupError
            if orig_packets is None:
                if not (row.orig_bytes is row.reply_packets is row.reply_bytes is None):
                    raise LookupError
                total_packets = total_bytes = None
            else:  # a None among the other counters raises TypeError
                total_packets = orig_packets + row.reply_packets
                total_bytes = row.orig_bytes + row.reply_bytes
        except (AttributeError, LookupError, TypeError):  # untyped, unseen or disagreeing
            flow_or_reason = _read_row(row)
            if isinstance(flow_or_reason, Flow):
                append(flow_or_reason)
            else:
                stats.skipped[flow_or_reason] += 1
            continue
        append(
            Flow(
                family,
                row.protocol,
                src,
                dst,
                None,
                row.dport,
                src_scope,
                dst_scope,
                not unreplied,
                None,
                None,
                row.min_timeout,
                total_packets,
                total_bytes,
                row.reply_packets,
                row.reply_bytes,
                False,
                0,
                0,
                None,
                connections,
            )
        )
    return finish(flows, stats, rows)


def _count(value: object) -> bool:
    return type(value) is int and value >= 0


def _address(text: str) -> AddressInfo | None:
    """Parse and classify an address, and learn it for the typed rows of later polls."""
    info = address_info(text)
    if info is not None:
        if len(_LEARNED) >= _LEARNED_LIMIT:
            _LEARNED.clear()
        _LEARNED[text] = info.address, info.family, info.scope
    return info


def _read_row(row: object) -> Flow | SkipReason:  # noqa: PLR0911
    """Check one row, typed or as JSON gave it, and make its flow, or say why not."""
    if isinstance(row, _Row):
        row = msgspec.structs.astuple(row)
    if not isinstance(row, list | tuple) or len(row) != _COLUMNS:
        return SkipReason.LAYOUT
    family, protocol, src_text, dst_text, dport, connections, unreplied = row[:7]
    orig_packets, orig_bytes, reply_packets, reply_bytes, min_timeout = row[7:]
    if not (isinstance(src_text, str) and isinstance(dst_text, str)):
        return SkipReason.ADDRESS
    src = _address(src_text)
    dst = _address(dst_text)
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
