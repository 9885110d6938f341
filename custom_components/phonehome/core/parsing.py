"""What every table parser returns: flows, statistics, and the one error it raises."""

import reprlib
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from .addresses import IPV4, IPV6
from .model import Flow

MAX_PORT: Final = 65535
MAX_PROTOCOL: Final = 255
FAMILY_NAMES: Final = {IPV4: "ipv4", IPV6: "ipv6"}
"""Address family -> the name the kernel and LuCI print for it."""
_SAMPLE: Final = reprlib.Repr(maxlevel=2, maxlist=1, maxdict=4, maxstring=80, maxother=80)
"""Shows the start of bad input in an error message, however large the input."""


class ConntrackParseError(ValueError):
    """The input as a whole is not a connection table: not one usable line or entry."""


class SkipReason(StrEnum):
    """Why a line or entry was not turned into a flow."""

    LAYOUT = "not a conntrack entry"
    ADDRESS = "invalid address"
    FAMILY = "address family mismatch"
    PORT = "invalid port"
    PROTOCOL = "invalid protocol number"
    VALUE = "invalid value"
    SUMMARY = "conntrack-tools summary line"


@dataclass(slots=True)
class ParseStats:
    """What a parse saw: lines or entries read, flows made, and why others were skipped."""

    lines: int = 0
    flows: int = 0
    skipped: Counter[SkipReason] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The flows of one table and the statistics of reading it."""

    flows: list[Flow]
    stats: ParseStats


def finish(flows: list[Flow], stats: ParseStats, source: object) -> ParseResult:
    """Complete the statistics; raise when there was input and not one flow came of it."""
    stats.flows = len(flows)
    stats.lines = stats.flows + stats.skipped.total()
    if stats.lines and not stats.flows:
        reasons = ", ".join(f"{count} {reason}" for reason, count in stats.skipped.most_common())
        raise ConntrackParseError(
            f"not one usable conntrack entry among {stats.lines} read ({reasons}); "
            f"the input starts {_SAMPLE.repr(source)}"
        )
    return ParseResult(flows, stats)
