"""Parsers from a router's connection-tracking table into Flow objects.

Two entry points cover every source the routers give:

- ``parse_proc(text)``: ``/proc/net/nf_conntrack`` text, and the output of
  ``conntrack -L`` (plain or ``-o extended``), which share one layout;
- ``parse_luci_json(payload)``: the JSON-RPC reply of LuCI's ``luci getConntrackList``;
  ``parse_luci(entries)`` for its ``result`` list when already decoded.

A line or entry that cannot be used is skipped and counted with its reason in
``ParseResult.stats``; only input that is unusable as a whole raises
``ConntrackParseError``. Addresses come out in canonical text with their scope.
"""

from .conntrack_luci import parse_luci, parse_luci_json
from .conntrack_text import parse_proc
from .parsing import ConntrackParseError, ParseResult, ParseStats, SkipReason

__all__ = [
    "ConntrackParseError",
    "ParseResult",
    "ParseStats",
    "SkipReason",
    "parse_luci",
    "parse_luci_json",
    "parse_proc",
]
