"""Data model shared by the router clients, the parsers and the analyzer."""

from typing import Final

import msgspec

from .addresses import AddressScope

UNKNOWN_PROTOCOL: Final = -1
"""Protocol number of a flow whose source names no number (LuCI's layer4 'unknown')."""


class Flow(msgspec.Struct, frozen=True, gc=False):
    """One tracked connection, seen from its original (initiating) direction.

    A frozen msgspec Struct: immutable and slotted like a frozen dataclass, several
    times quicker to build, and (holding only strings, numbers and None, so never in
    a reference cycle) kept out of the garbage collector's scans; that matters at
    65,536 flows a poll. Fields a source does not report are None (LuCI, for
    example, drops the flags).

    A flow usually stands for one kernel entry. A row of the rpcd plugin stands for
    several (``connections``): the entries that differ only in source port, so its
    ``sport`` is None, its counters are sums and its ``timeout`` the smallest.
    """

    family: int
    """4 or 6."""
    protocol: int
    """IANA protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...)."""
    src: str
    """Original-direction source address, canonical text."""
    dst: str
    """Original-direction destination address, canonical text."""
    sport: int | None
    """Source port; None for protocols without ports."""
    dport: int | None
    """Destination port; None for protocols without ports."""
    src_scope: AddressScope
    dst_scope: AddressScope
    replied: bool | None
    """False while the kernel marks the entry [UNREPLIED]."""
    assured: bool | None
    """True once the kernel marked the entry [ASSURED] (or offloaded it)."""
    state: str | None
    """Protocol state such as ESTABLISHED, for TCP, SCTP and DCCP."""
    timeout: int | None
    """Seconds until the entry expires; None when offloaded or not reported."""
    total_packets: int | None
    """Packets both ways; None when the router does not count (nf_conntrack_acct=0)."""
    total_bytes: int | None
    """Bytes both ways; None when the router does not count."""
    reply_packets: int | None
    """Packets of the reply direction; None when only totals are known."""
    reply_bytes: int | None
    """Bytes of the reply direction; None when only totals are known."""
    offloaded: bool
    """True when the flow is handled by (hardware) flow offloading."""
    mark: int
    """Connection mark; 0 where the source prints none."""
    zone: int
    """Conntrack zone; 0, the default zone, where the source prints none."""
    secctx: str | None
    """Security context (SELinux) where the kernel has one."""
    connections: int = 1
    """Kernel entries this flow stands for: 1, or a row of the rpcd plugin, which groups
    entries that differ only in source port."""
