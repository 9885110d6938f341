"""Quarantine on any Linux router: an nftables table the integration owns, and conntrack -D.

The table (``inet phonehome``) holds a set of MAC addresses and one chain hooked
at ``forward`` with priority ``filter - 10``, so it sees every forwarded packet
before the main firewall (fw4, firewalld, a hand-written ``inet filter``) and
before that firewall's ``ct state established accept``: packets of live flows
are rejected too. Two rules, one per family, reject packets whose source MAC is
in the set and whose destination is not a LAN address::

    table inet phonehome {
        set quarantined {
            type ether_addr
            counter
            elements = { aa:bb:cc:dd:ee:ff counter packets 3 bytes 252 comment "phonehome_aabbccddeeff" }
        }
        chain forward {
            type filter hook forward priority filter - 10; policy accept;
            ip daddr != { 10.0.0.0/8, ... } ether saddr @quarantined reject with icmpx admin-prohibited
            ip6 daddr != { fc00::/7, fe80::/10, ff00::/8 } ether saddr @quarantined reject ...
        }
    }

Internet only: traffic bridged inside the LAN never reaches the forward hook,
and routed traffic to private (RFC 1918, link-local, ULA) and multicast
destinations stays allowed. The set's ``counter`` gives each element its own
packet counter, which counts the lookups that matched: the packets rejected (the
destination test comes first). Each element's comment is ``quarantine_name(mac)``.

Everything here is pure text in, text out; routers/linux_ssh.py runs it.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Final

from ..core.addresses import normalize_mac
from .base import QuarantineState, quarantine_name

FAMILY: Final = "inet"
TABLE: Final = "phonehome"
SET: Final = "quarantined"
CHAIN: Final = "forward"
LOCAL_IPV4: Final = (
    "10.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255",
)
LOCAL_IPV6: Final = ("fc00::/7", "fe80::/10", "ff00::/8")
REJECT: Final = "reject with icmpx type admin-prohibited"

LIST_TABLE: Final = ("nft", "-j", "list", "table", FAMILY, TABLE)
"""Reads the whole table back: set (elements, counters, comments), chain and rules."""
APPLY: Final = ("nft", "-f", "-")
"""Loads a script from stdin in one transaction (all of it or nothing)."""
NO_SUCH_TABLE: Final = "No such file or directory"

TABLE_SCRIPT: Final = f"""table {FAMILY} {TABLE} {{
  set {SET} {{
    type ether_addr
    counter
  }}
  chain {CHAIN} {{
    type filter hook forward priority filter - 10; policy accept;
  }}
}}
flush chain {FAMILY} {TABLE} {CHAIN}
table {FAMILY} {TABLE} {{
  chain {CHAIN} {{
    ip daddr != {{ {", ".join(LOCAL_IPV4)} }} ether saddr @{SET} {REJECT}
    ip6 daddr != {{ {", ".join(LOCAL_IPV6)} }} ether saddr @{SET} {REJECT}
  }}
}}
"""
"""Creates the table, set and chain when absent and rewrites the chain's two rules
(``flush chain`` + the rules, in one transaction): idempotent, and it repairs a
chain someone edited. ``add`` of an existing set keeps its elements and counters."""

CONNTRACK_SCRIPT: Final = """s=$1; shift
if ! command -v conntrack >/dev/null 2>&1; then echo missing; exit 0; fi
for a in "$@"; do
  if [ "$s" = 1 ]; then out=$(sudo -n conntrack -D -s "$a" 2>&1 </dev/null)
  else out=$(conntrack -D -s "$a" 2>&1 </dev/null); fi
  rc=$?
  printf 'deleted %s %s\\n' "$rc" "$(printf '%s' "$out" | tail -n 1)"
done
"""
"""``sh -c`` script: ``conntrack -D -s ADDRESS`` for each address argument ($2...);
$1 is 1 when the commands run through ``sudo -n``. One line per address:
``deleted RC LAST-LINE``; ``missing`` when conntrack-tools is not installed."""
NOTHING_DELETED: Final = " 0 flow entries have been deleted"
"""conntrack -D exits 1 when nothing matched; its last line then says so."""


def add_script(mac: str) -> str:
    """The nft script that quarantines ``mac`` (normalised): table, chain, then the element."""
    return (
        TABLE_SCRIPT
        + f'add element {FAMILY} {TABLE} {SET} {{ {mac} comment "{quarantine_name(mac)}" }}\n'
    )


def delete_script(mac: str, *, present: bool, last: bool) -> str:
    """The nft script that removes ``mac``'s element (when ``present``), and the table (``last``)."""
    script = f"delete element {FAMILY} {TABLE} {SET} {{ {mac} }}\n" if present else ""
    if last:
        script += f"delete table {FAMILY} {TABLE}\n"
    return script


@dataclass(frozen=True, slots=True)
class Element:
    """One MAC in the set: its comment and its packet counter."""

    comment: str | None
    packets: int | None


@dataclass(frozen=True, slots=True)
class TableState:
    """What ``nft -j list table inet phonehome`` shows: elements, and whether the chain holds."""

    exists: bool = False
    elements: dict[str, Element] = field(default_factory=dict)
    """By normalised MAC."""
    chain_ok: bool = False
    """The chain is hooked at forward and both rules (IPv4, IPv6) reject set members."""

    def quarantined(self) -> dict[str, QuarantineState]:
        """The snapshot's view: every element, enforced while the chain holds."""
        return {
            mac: QuarantineState(enforced=self.chain_ok, blocked_packets=element.packets)
            for mac, element in self.elements.items()
        }

    def holds(self, mac: str) -> bool:
        """The device's element is there with its name, and the chain enforces it."""
        element = self.elements.get(mac)
        return self.chain_ok and element is not None and element.comment == quarantine_name(mac)


ABSENT: Final = TableState()


def parse_table(text: str) -> TableState:
    """Read ``nft -j list table inet phonehome`` output; raises ValueError on another shape."""
    try:
        document = json.loads(text)
    except RecursionError as err:
        raise ValueError(f"nested too deep to be nft output: {text[:80]!r}") from err
    items = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"no nftables list in {text[:80]!r}")
    elements: dict[str, Element] = {}
    hooked = False
    rule_families: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(found := item.get("set"), dict) and _ours(found, "name", SET):
            elements = _elements(found.get("elem"))
        elif isinstance(found := item.get("chain"), dict) and _ours(found, "name", CHAIN):
            hooked = found.get("hook") == "forward" and found.get("type") == "filter"
        elif isinstance(found := item.get("rule"), dict) and _ours(found, "chain", CHAIN):
            family = _rule_family(found.get("expr"))
            if family is not None:
                rule_families.add(family)
    return TableState(
        exists=True, elements=elements, chain_ok=hooked and rule_families >= {"ip", "ip6"}
    )


def _ours(item: dict[str, Any], key: str, name: str) -> bool:
    return item.get("family") == FAMILY and item.get("table") == TABLE and item.get(key) == name


def _elements(values: object) -> dict[str, Element]:
    """Set elements: plain ``"aa:bb:.."`` or ``{"elem": {"val", "comment", "counter"}}``."""
    elements: dict[str, Element] = {}
    for value in values if isinstance(values, list) else []:
        detail = value.get("elem") if isinstance(value, dict) else {"val": value}
        if not isinstance(detail, dict) or (mac := normalize_mac(detail.get("val"))) is None:
            continue
        counter = detail.get("counter")
        packets = counter.get("packets") if isinstance(counter, dict) else None
        comment = detail.get("comment")
        elements[mac] = Element(
            comment=comment if isinstance(comment, str) else None,
            packets=packets if type(packets) is int and packets >= 0 else None,
        )
    return elements


def _rule_family(expressions: object) -> str | None:
    """The family ("ip", "ip6") of a rule that tests the destination and rejects set members, else None."""
    if not isinstance(expressions, list):
        return None
    family = None
    member = reject = False
    for expression in expressions:
        if not isinstance(expression, dict):
            continue
        reject = reject or "reject" in expression
        match = expression.get("match")
        if not isinstance(match, dict) or not isinstance(left := match.get("left"), dict):
            continue
        payload = left.get("payload")
        if not isinstance(payload, dict):
            continue
        if payload.get("field") == "daddr" and match.get("op") == "!=":
            family = payload.get("protocol")
        elif payload == {"protocol": "ether", "field": "saddr"}:
            member = match.get("right") == f"@{SET}" and match.get("op") == "=="
    return family if member and reject and isinstance(family, str) else None


def flows_cut(output: str) -> bool | None:
    """Read CONNTRACK_SCRIPT's output: True when every deletion ran, None without conntrack.

    False when one failed (no rights, no conntrack support): the chain alone then
    stops the device's flows, packet by packet.
    """
    lines = output.split("\n")
    if "missing" in lines:
        return None
    results = [[*line.split(" ", 2), ""] for line in lines if line.startswith("deleted ")]
    return all(parts[1] == "0" or NOTHING_DELETED in f" {parts[2]}" for parts in results)
