"""firewall4 in the lab router: the committed UCI firewall config -> a real `inet fw4` table.

Renders the forward path the way openwrt/firewall4 does (templates ruleset.uc,
rule.uc, zone-jump.uc and zone-verdict.uc under root/usr/share/firewall4/templates;
parse_defaults, parse_zone, parse_forwarding, parse_rule, parse_enum, parse_mac and
parse_family in root/usr/share/ucode/fw4.uc; expected output in tests/01_configuration):

- the base chain `forward` (the defaults' forward policy, reject as drop) first
  accepts `ct state established,related`, then jumps by input device to
  `forward_<zone>`, and ends with `jump handle_reject` when the policy is reject;
- `forward_<zone>` holds the rules whose src is that zone, in config order, then the
  zone's forwardings (`jump accept_to_<dest>`), then `jump <zone forward>_to_<zone>`;
- a rule with src and dest zones and target T jumps to `T_to_<dest>`, which matches
  the dest zone's devices and verdicts (`reject`: `jump handle_reject`);
- a rule carries `counter` (option default 1) and `comment "!fw4: <name>"`;
- without `family` and addresses a rule is rendered once, family-agnostic, in the
  `inet` table: it matches IPv4 and IPv6. `proto all` adds no l4proto match.

Zones list OpenWrt networks; NETWORK_DEVICES maps them to the lab router's devices.
Input, output, NAT and MSS chains are not built (the lab router forwards without
NAT), so rules for them are left out, as are forward rules with options not rendered
here: `apply` names each on stderr, as fw4 warns about sections it skips. Only table
`inet fw4` is replaced, in one `nft -f` transaction as fw4 does: the lab's own tables
keep working.

Also the kernel side of OpenWrt's /proc/net/nf_conntrack write: `conntrack -D` for an
address as original source and as original destination.
"""

import ipaddress
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .netlab import LabError, run

Section = Mapping[str, Any]

TABLE: Final = "inet fw4"
NETWORK_DEVICES: Final = {"lan": "br-lan", "wan": "wan0", "wan6": "wan0"}
"""The lab router's device for each OpenWrt network."""
VERDICTS: Final = ("accept", "reject", "drop")
"""fw4's policies and rule targets rendered here, in the order it emits verdict chains."""
RULE_OPTIONS: Final = frozenset(
    {"name", "enabled", "family", "src", "dest", "src_mac", "proto", "target", "counter"}
)
BASE_CHAIN_HEAD: Final = "type filter hook forward priority filter; policy {policy};"
HANDLE_FLOWS: Final = 'ct state vmap { established : accept, related : accept } comment "!fw4: Handle forwarded flows"'
HANDLE_REJECT: Final = (
    'meta l4proto tcp reject with tcp reset comment "!fw4: Reject TCP traffic"',
    'reject with icmpx type port-unreachable comment "!fw4: Reject any other traffic"',
)
"""fw4's handle_reject with the default tcp_reject_code and any_reject_code."""


class Fw4Error(ValueError):
    """A firewall section this lab cannot render as fw4 would."""


@dataclass(frozen=True)
class Zone:
    """A firewall zone: its devices and its forward policy."""

    name: str
    devices: tuple[str, ...]
    forward: str


@dataclass(frozen=True)
class Rule:
    """One rendered rule: its chain, the verdict chain it jumps to, and its nft text."""

    chain: str
    verdict: tuple[str, str]
    """(target, dest zone): it jumps to `<target>_to_<dest>`."""
    text: str


@dataclass
class Firewall:
    """The parts of a firewall config the forward path needs."""

    policy: str = "drop"
    zones: dict[str, Zone] = field(default_factory=dict)
    forwardings: list[tuple[str, str]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Rule sections left out, with the reason."""


def _words(value: str | list[str] | None) -> list[str]:
    """A UCI option as a list (a list option, or an option of space separated words)."""
    if value is None:
        return []
    return value.split() if isinstance(value, str) else list(value)


def _bool(value: str) -> bool:
    """fw4's parse_bool."""
    if value in {"1", "on", "true", "yes"}:
        return True
    if value in {"0", "off", "false", "no"}:
        return False
    raise Fw4Error(f"not a boolean: {value!r}")


def _verdict(value: str) -> str:
    """fw4's parse_enum over accept, reject and drop: a prefix, in any case."""
    word = value.lower()
    for verdict in VERDICTS:
        if word and verdict.startswith(word):
            return verdict
    raise Fw4Error(f"{value!r} is not one of {VERDICTS}")


def _family(value: str | None) -> int:
    """fw4's parse_family: 0 for both families."""
    if value is None or value in {"any", "all", "*"}:
        return 0
    if value == "inet" or "4" in value:
        return 4
    if "6" in value:
        return 6
    raise Fw4Error(f"unknown family {value!r}")


def _protocols(value: str | list[str] | None) -> list[str | None]:
    """fw4's parse_protocol for all, tcp, udp and tcpudp (the default); None: any."""
    protocols: list[str | None] = []
    for word in _words(value) or ["tcpudp"]:
        match word.lower():
            case "all" | "any" | "*":
                protocols.append(None)
            case "tcpudp":
                protocols += ["tcp", "udp"]
            case "tcp" | "6":
                protocols.append("tcp")
            case "udp" | "17":
                protocols.append("udp")
            case _:
                raise Fw4Error(f"protocol {word!r} is not rendered in the lab")
    return protocols


def _mac(value: str) -> str:
    """fw4's parse_mac: six hex groups, printed %02x."""
    groups = value.replace("-", ":").split(":")
    if len(groups) != 6 or not all(1 <= len(group) <= 2 for group in groups):
        raise Fw4Error(f"not a MAC address: {value!r}")
    return ":".join(f"{int(group, 16):02x}" for group in groups)


def _set(items: list[str] | tuple[str, ...]) -> str:
    """fw4.set: one item bare, several in braces."""
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _quoted(items: tuple[str, ...]) -> str:
    return _set([f'"{item}"' for item in items])


def _zone(section: Section, policy: str) -> Zone:
    """fw4's parse_zone, for the name, the networks and the forward policy."""
    networks = _words(section.get("network"))
    if unknown := [network for network in networks if network not in NETWORK_DEVICES]:
        raise Fw4Error(f"zone {section.get('name')}: networks {unknown} are not in the lab")
    devices = tuple(dict.fromkeys(NETWORK_DEVICES[network] for network in networks))
    if not devices:
        raise Fw4Error(f"zone {section.get('name')} lists no network")
    return Zone(str(section["name"]), devices, _verdict(section.get("forward", policy)))


def _rule_name(key: str, section: Section, index: int) -> str:
    """The `name` option, else fw4's section_id: `@rule[N]` when anonymous."""
    if "name" in section:
        return str(section["name"]).replace('"', "'")
    return f"@rule[{index}]" if section.get(".anonymous") else key


def _rule(key: str, section: Section, index: int, zones: Mapping[str, Zone]) -> list[Rule]:
    """fw4's parse_rule and rule.uc for a forward rule between two zones; [] when disabled."""
    if section.get("src") not in zones or section.get("dest") not in zones:
        raise Fw4Error("only rules from one zone to another are rendered in the lab")
    options = {option for option in section if not option.startswith(".")}
    if unknown := sorted(options - RULE_OPTIONS):
        raise Fw4Error(f"options {unknown} are not rendered in the lab")
    if not _bool(section.get("enabled", "1")):
        return []
    src, dest = zones[section["src"]], zones[section["dest"]]
    family, target = _family(section.get("family")), _verdict(section.get("target", ""))
    macs = [_mac(mac) for mac in _words(section.get("src_mac"))]
    tail = ["counter"] if _bool(section.get("counter", "1")) else []
    tail += [f"jump {target}_to_{dest.name}", f'comment "!fw4: {_rule_name(key, section, index)}"']
    rules = []
    for protocol in _protocols(section.get("proto")):
        words = [f"meta nfproto ipv{family}"] if family else []
        words += [f"meta l4proto {protocol}"] if protocol else []
        words += [f"ether saddr {_set(macs)}"] if macs else []
        rules.append(Rule(f"forward_{src.name}", (target, dest.name), " ".join(words + tail)))
    return rules


def _in_config_order(sections: Mapping[str, Section]) -> list[tuple[str, Section]]:
    """The sections in UCI order: by `.index` when the config gives it."""
    numbered = sorted(
        enumerate(sections.items()), key=lambda item: item[1][1].get(".index", item[0])
    )
    return [item for _, item in numbered]


def parse(sections: Mapping[str, Section]) -> Firewall:
    """The defaults, zones, forwardings and forward rules, in fw4's parse order."""
    ordered = _in_config_order(sections)
    of_type = {
        kind: [(key, section) for key, section in ordered if section.get(".type") == kind]
        for kind in ("defaults", "zone", "forwarding", "rule")
    }
    firewall = Firewall()
    for _, section in of_type["defaults"][:1]:
        firewall.policy = _verdict(section.get("forward", "drop"))
    for _, section in of_type["zone"]:
        if _bool(section.get("enabled", "1")):
            zone = _zone(section, firewall.policy)
            firewall.zones[zone.name] = zone
    for index, (key, section) in enumerate(of_type["rule"]):
        try:
            firewall.rules += _rule(key, section, index, firewall.zones)
        except Fw4Error as err:
            firewall.skipped.append(f"rule {_rule_name(key, section, index)}: {err}")
    firewall.forwardings = [
        (section["src"], section["dest"])
        for _, section in of_type["forwarding"]
        if _bool(section.get("enabled", "1"))
    ]
    return firewall


def _chain(name: str, lines: list[str], head: str | None = None) -> list[str]:
    body = [f"\t\t{head}", ""] if head else []
    return [f"\tchain {name} {{", *body, *(f"\t\t{line}" for line in lines), "\t}", ""]


def _zone_chains(firewall: Firewall, zone: Zone) -> list[str]:
    """forward_<zone>, then the zone's verdict chains (zone-verdict.uc, egress)."""
    name = zone.name
    lines = _chain(
        f"forward_{name}",
        [
            *(rule.text for rule in firewall.rules if rule.chain == f"forward_{name}"),
            *(
                f'jump accept_to_{dest} comment "!fw4: Accept {src} to {dest} forwarding"'
                for src, dest in firewall.forwardings
                if src == name
            ),
            f"jump {zone.forward}_to_{name}",
        ],
    )
    needed = {zone.forward} | {
        rule.verdict[0] for rule in firewall.rules if rule.verdict[1] == name
    }
    needed |= {"accept" for _, dest in firewall.forwardings if dest == name}
    for verdict in (verdict for verdict in VERDICTS if verdict in needed):
        action = "jump handle_reject" if verdict == "reject" else verdict
        comment = f"!fw4: {verdict} {name} IPv4/IPv6 traffic"
        line = f'oifname {_quoted(zone.devices)} counter {action} comment "{comment}"'
        lines += _chain(f"{verdict}_to_{name}", [line])
    return lines


def render(firewall: Firewall) -> str:
    """The `inet fw4` ruleset, as one nft transaction."""
    policy = "drop" if firewall.policy == "reject" else firewall.policy
    base = [
        HANDLE_FLOWS,
        *(
            f"iifname {_quoted(zone.devices)} jump forward_{zone.name} "
            f'comment "!fw4: Handle {zone.name} IPv4/IPv6 forward traffic"'
            for zone in firewall.zones.values()
        ),
        *(["jump handle_reject"] if firewall.policy == "reject" else []),
    ]
    lines = [f"table {TABLE}", f"flush table {TABLE}", "", f"table {TABLE} {{"]
    lines += _chain("forward", base, BASE_CHAIN_HEAD.format(policy=policy))
    lines += _chain("handle_reject", list(HANDLE_REJECT))
    for zone in firewall.zones.values():
        lines += _zone_chains(firewall, zone)
    return "\n".join([*lines, "}", ""])


def apply(sections: Mapping[str, Section]) -> None:
    """Load the ruleset into the current namespace (replacing only `inet fw4`); name skips."""
    firewall = parse(sections)
    for reason in firewall.skipped:
        print(f"fw4 (lab): skipping {reason}", file=sys.stderr)
    run(["nft", "-f", "-"], stdin=render(firewall))


def _flow_deletions(address: str) -> list[list[str]]:
    """`conntrack -D` commands for the address as original source and as original destination."""
    family = f"ipv{ipaddress.ip_address(address).version}"
    return [["conntrack", "-D", "-f", family, flag, address] for flag in ("-s", "-d")]


def delete_flows(data: str) -> None:
    """Take a write to /proc/net/nf_conntrack: delete its address's entries here (none is fine)."""
    for argv in _flow_deletions(data.split("\n", 1)[0].strip()):
        done = run(argv, check=False)
        if done.returncode != 0 and "0 flow entries" not in done.stderr:
            raise LabError(f"`{' '.join(argv)}` exited {done.returncode}: {done.stderr.strip()}")
