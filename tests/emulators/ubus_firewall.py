"""What the ubus emulator needs for quarantine: rpcd's uci object, fw4's ruleset, the flush patch.

- ``UciStore``: rpcd's ``uci`` object (openwrt/rpcd uci.c): committed configs,
  changes staged per session (rpcd's savedir /tmp/run/rpcd/uci-<session>) and
  visible to that session's ``get``, applied by ``commit``, dropped by ``revert``
  or when the session ends. Statuses as rpcd answers them: 2 invalid argument,
  4 not found, 6 permission denied (the login lacks ``uci <config> read|write``).
- ``FirewallState``: what ``nft --terse --json list ruleset`` shows of fw4's
  ``inet fw4`` table: each enabled rule as fw4's rule.uc renders it (chain
  ``forward_<src>``, ``ether saddr``, ``counter``, ``jump reject_to_<dest>``, comment
  ``!fw4: <name>``), one reload behind a commit for ``lag`` reads.
- ``delete_conntrack``: OpenWrt's 600-netfilter_conntrack_flush patch: an
  address written to /proc/net/nf_conntrack deletes every entry holding it in
  either direction; text with neither "." nor ":" flushes the whole table.
"""

import copy
import ipaddress
import json
import re
import zlib
from typing import Any, Final

CONNTRACK_PROC: Final = "/proc/net/nf_conntrack"
NFT: Final = "/usr/sbin/nft"
INET6_ADDRSTRLEN: Final = 48
_NAME: Final = re.compile(r"[A-Za-z0-9_]+")
_ADDRESS: Final = re.compile(r"\b(?:src|dst)=(\S+)")

Sections = dict[str, dict[str, Any]]
Change = tuple[Any, ...]
"""("add", section, type, anonymous) | ("set", section, option, value) | ("remove", section[, option])."""


def _section(
    stype: str, anonymous: bool, section: str, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    return section, {".anonymous": anonymous, ".type": stype, ".name": section, **options}


def _anonymous_name(index: int, stype: str) -> str:
    """uci's name for an anonymous section: cfg, two hex digits of index, four of a hash."""
    return f"cfg{index:02x}{zlib.crc32(stype.encode()) & 0xFFFF:04x}"


def default_firewall() -> Sections:
    """OpenWrt's stock /etc/config/firewall (package firewall4), as ``uci get`` shows it."""
    icmpv6_input = [
        "echo-request",
        "echo-reply",
        "destination-unreachable",
        "packet-too-big",
        "time-exceeded",
        "bad-header",
        "unknown-header-type",
        "router-solicitation",
        "neighbour-solicitation",
        "router-advertisement",
        "neighbour-advertisement",
    ]
    entries: list[tuple[str, dict[str, Any]]] = [
        ("defaults", {"syn_flood": "1", "input": "REJECT", "output": "ACCEPT", "forward": "REJECT"}),
        ("zone", {"name": "lan", "network": ["lan"], "input": "ACCEPT", "output": "ACCEPT",
                  "forward": "ACCEPT"}),
        ("zone", {"name": "wan", "network": ["wan", "wan6"], "input": "REJECT",
                  "output": "ACCEPT", "forward": "DROP", "masq": "1", "mtu_fix": "1"}),
        ("forwarding", {"src": "lan", "dest": "wan"}),
        ("rule", {"name": "Allow-DHCP-Renew", "src": "wan", "proto": "udp", "dest_port": "68",
                  "target": "ACCEPT", "family": "ipv4"}),
        ("rule", {"name": "Allow-Ping", "src": "wan", "proto": "icmp",
                  "icmp_type": "echo-request", "family": "ipv4", "target": "ACCEPT"}),
        ("rule", {"name": "Allow-IGMP", "src": "wan", "proto": "igmp", "family": "ipv4",
                  "target": "ACCEPT"}),
        ("rule", {"name": "Allow-DHCPv6", "src": "wan", "proto": "udp", "dest_port": "546",
                  "family": "ipv6", "target": "ACCEPT"}),
        ("rule", {"name": "Allow-MLD", "src": "wan", "proto": "icmp", "src_ip": "fe80::/10",
                  "icmp_type": ["130/0", "131/0", "132/0", "143/0"], "family": "ipv6",
                  "target": "ACCEPT"}),
        ("rule", {"name": "Allow-ICMPv6-Input", "src": "wan", "proto": "icmp",
                  "icmp_type": icmpv6_input, "limit": "1000/sec", "family": "ipv6",
                  "target": "ACCEPT"}),
        ("rule", {"name": "Allow-ICMPv6-Forward", "src": "wan", "dest": "*", "proto": "icmp",
                  "icmp_type": icmpv6_input[:7], "limit": "1000/sec", "family": "ipv6",
                  "target": "ACCEPT"}),
        ("rule", {"name": "Allow-IPSec-ESP", "src": "wan", "dest": "lan", "proto": "esp",
                  "target": "ACCEPT"}),
        ("rule", {"name": "Allow-ISAKMP", "src": "wan", "dest": "lan", "dest_port": "500",
                  "proto": "udp", "target": "ACCEPT"}),
    ]  # fmt: skip
    sections = dict(
        _section(stype, True, _anonymous_name(index + 1, stype), options)
        for index, (stype, options) in enumerate(entries)
    )
    return _indexed(sections)


def _indexed(sections: Sections) -> Sections:
    for index, values in enumerate(sections.values()):
        values[".index"] = index
    return sections


def _format(value: object) -> str | None:
    """rpcd's rpc_uci_format_blob: strings, numbers and booleans become option text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _option(option: object, value: object) -> str | list[str] | None:
    """An option's text (a list for an array); None when rpcd refuses it (status 2)."""
    if not isinstance(option, str) or not _NAME.fullmatch(option):
        return None
    if not isinstance(value, list):
        return _format(value)
    items = [_format(item) for item in value]
    return None if None in items else [item for item in items if item is not None]


def replay(sections: Sections, changes: list[Change]) -> Sections:
    """The committed sections with a session's staged changes applied (uci's delta replay)."""
    view = copy.deepcopy(sections)
    for change in changes:
        kind, name = change[0], change[1]
        if kind == "add" and name in view:
            view[name][".type"] = change[2]
        elif kind == "add":
            view[name] = {".anonymous": change[3], ".type": change[2], ".name": name}
        elif kind == "set":
            view[name][change[2]] = change[3]
        elif len(change) == 3:  # remove an option
            view[name].pop(change[2], None)
        else:
            view.pop(name, None)
    return _indexed(view)


def dump_change(change: Change) -> list[Any]:
    """One entry of ``uci changes`` as rpcd's rpc_uci_dump_change writes it."""
    if change[0] == "add":
        return ["add", change[1], change[2]]
    if change[0] == "set" and isinstance(change[3], list):
        return ["list-add", change[1], change[2], change[3]]
    return list(change)


class UciStore:
    """rpcd's ``uci`` object over ``committed``; ``call`` answers (status, payload or None)."""

    def __init__(self) -> None:
        self.committed: dict[str, Sections] = {"firewall": default_firewall()}
        self.staged: dict[str, dict[str, list[Change]]] = {}
        """Session -> config -> changes not yet committed."""
        self._anonymous = 0x80

    def view(self, sid: str, config: str) -> Sections:
        """The config as this session sees it: committed plus its staged changes."""
        return replay(self.committed[config], self.staged.get(sid, {}).get(config, []))

    def call(
        self, sid: str, user: Any, method: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        config = args.get("config")
        if method == "changes" and config is None:
            return 0, {"changes": self._all_changes(sid, user)}
        if not isinstance(config, str):
            return 2, None
        if not user.may("uci", config, "read" if method in {"get", "changes"} else "write"):
            return 6, None
        if config not in self.committed:
            return (6 if method == "get" else 4), None  # captured: uci_get_missing_config
        handler = getattr(self, f"_{method}")
        result: tuple[int, dict[str, Any] | None] = handler(sid, config, args)
        return result

    def _stage(self, sid: str, config: str, changes: list[Change]) -> None:
        self.staged.setdefault(sid, {}).setdefault(config, []).extend(changes)

    def _get(
        self, sid: str, config: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        view = self.view(sid, config)
        section, option, stype = args.get("section"), args.get("option"), args.get("type")
        if section is None:
            return 0, {
                "values": {
                    name: values
                    for name, values in view.items()
                    if stype is None or values[".type"] == stype
                }
            }
        values = view.get(section)
        if values is None or (option is not None and option not in values):
            return 4, None
        if option is not None:
            return 0, {"value": values[option]}
        return 0, {"values": {k: v for k, v in values.items() if k != ".index"}}

    def _add(
        self, sid: str, config: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        stype, name, values = args.get("type"), args.get("name"), args.get("values", {})
        if not isinstance(stype, str) or not _NAME.fullmatch(stype) or not isinstance(values, dict):
            return 2, None
        if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
            return 2, None
        anonymous = name is None
        if name is None:
            self._anonymous += 1
            name = _anonymous_name(self._anonymous, stype)
        changes: list[Change] = [("add", name, stype, anonymous)]
        for option, value in values.items():
            text = _option(option, value)
            if text is None:
                return 2, None
            changes.append(("set", name, option, text))
        self._stage(sid, config, changes)
        return 0, {"section": name}

    def _set(
        self, sid: str, config: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        section, values = args.get("section"), args.get("values")
        if not isinstance(section, str) or not isinstance(values, dict):
            return 2, None
        current = self.view(sid, config).get(section)
        if current is None:
            return 4, None
        changes: list[Change] = []
        for option, value in values.items():
            text = _option(option, value)
            if text is None:
                return 2, None
            if current.get(option) != text:
                changes.append(("set", section, option, text))
        self._stage(sid, config, changes)
        return 0, None

    def _delete(
        self, sid: str, config: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        section, option, options = args.get("section"), args.get("option"), args.get("options")
        if not isinstance(section, str):
            return 2, None
        current = self.view(sid, config).get(section)
        if current is None:
            return 4, None
        names = [option] if isinstance(option, str) else options
        if names is None:
            self._stage(sid, config, [("remove", section)])
            return 0, None
        present = [name for name in names if isinstance(name, str) and name in current]
        if not present:
            return 4, None
        self._stage(sid, config, [("remove", section, name) for name in present])
        return 0, None

    def _changes(
        self, sid: str, config: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        staged = self.staged.get(sid, {}).get(config, [])
        return 0, {"changes": [dump_change(change) for change in staged]}

    def _all_changes(self, sid: str, user: Any) -> dict[str, list[Any]]:
        return {
            config: [dump_change(change) for change in changes]
            for config, changes in self.staged.get(sid, {}).items()
            if changes and user.may("uci", config, "read")
        }

    def _revert(
        self, sid: str, config: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        self.staged.get(sid, {}).pop(config, None)
        return 0, None

    def _commit(
        self, sid: str, config: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        self.committed[config] = self.view(sid, config)
        self.staged.get(sid, {}).pop(config, None)
        return 0, None


# ---------------------------------------------------------------------- fw4 ruleset


class FirewallState:
    """The firewall fw4 last loaded; a commit shows after ``lag`` more ruleset reads."""

    def __init__(self, sections: Sections) -> None:
        self.loaded = copy.deepcopy(sections)
        self._pending: Sections | None = None
        self._lag = 0

    def committed(self, sections: Sections, lag: int) -> None:
        """procd got config.change: fw4 reloads, and is done ``lag`` reads later."""
        self._pending, self._lag = sections, lag

    def ruleset(self, counters: dict[str, int]) -> str:
        """``nft --terse --json list ruleset`` of the loaded firewall."""
        if self._pending is not None:
            if self._lag > 0:
                self._lag -= 1
            else:
                self.loaded, self._pending = self._pending, None
        return json.dumps({"nftables": render(self.loaded, counters)}, separators=(",", ":"))


def _rule_chain(rule: dict[str, Any]) -> str:
    """fw4's chain for a rule: forward_<src>, input_<src>, output_<dest> or output."""
    src, dest = rule.get("src"), rule.get("dest")
    if src and src != "*":
        return f"{'forward' if dest else 'input'}_{src}"
    if src == "*":
        return "forward" if dest else "input"
    return f"output_{dest}" if dest and dest != "*" else "output"


def _verdict(rule: dict[str, Any]) -> dict[str, Any]:
    target, dest = str(rule.get("target", "DROP")).lower(), rule.get("dest")
    if dest and dest != "*":
        return {"jump": {"target": f"{target}_to_{dest}"}}
    if target == "reject":
        return {"jump": {"target": "handle_reject"}}
    return {target: None}


def render(sections: Sections, counters: dict[str, int]) -> list[dict[str, Any]]:
    """fw4's inet fw4 table, as nft's terse JSON lists it: tables, chains, rules."""
    head = {"family": "inet", "table": "fw4"}
    chains = ["input", "forward", "output", "handle_reject", "forward_lan", "forward_wan",
              "input_lan", "input_wan", "output_lan", "output_wan", "reject_to_wan",
              "accept_to_wan", "accept_to_lan", "drop_to_wan"]  # fmt: skip
    items: list[dict[str, Any]] = [
        {"metainfo": {"version": "1.1.1", "release_name": "Commodore Bullmoose #2",
                      "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "fw4", "handle": 1}},
        *({"chain": {**head, "name": name, "handle": n + 1}} for n, name in enumerate(chains)),
        {"rule": {**head, "chain": "forward", "handle": 100, "expr": [
            {"vmap": {"key": {"ct": {"key": "state"}}, "data": {"set": [
                ["established", {"accept": None}], ["related", {"accept": None}]]}}}],
            "comment": "!fw4: Handle forwarded flows"}},
    ]  # fmt: skip
    rule_index = 0
    for name, section in sections.items():
        if section.get(".type") != "rule":
            continue
        label = section.get("name") or (
            f"@rule[{rule_index}]" if section.get(".anonymous") else name
        )
        rule_index += 1
        if str(section.get("enabled", "1")) in {"0", "false", "off", "no"}:
            continue
        expr: list[dict[str, Any]] = []
        if mac := section.get("src_mac"):
            expr.append({"match": {"op": "==", "left": {"payload": {"protocol": "ether",
                         "field": "saddr"}}, "right": str(mac).lower()}})  # fmt: skip
        packets = counters.get(name, 0)
        expr += [{"counter": {"packets": packets, "bytes": packets * 60}}, _verdict(section)]
        items.append(
            {"rule": {**head, "chain": _rule_chain(section), "handle": 200 + len(items),
                      "expr": expr, "comment": f"!fw4: {label}"}}
        )  # fmt: skip
    return items


# ---------------------------------------------------------------------- conntrack flush


def delete_conntrack(text: str, data: str) -> str | None:
    """/proc/net/nf_conntrack after the flush patch took ``data``; None: refused (EINVAL)."""
    request = data[: INET6_ADDRSTRLEN - 1].split("\n", 1)[0]
    if ":" not in request and "." not in request:
        return ""  # no address: the patch flushes every entry
    try:
        address = ipaddress.ip_address(request)
    except ValueError:
        return None
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not any(_same(address, token) for token in _ADDRESS.findall(line))
    ]
    return "".join(kept)


def _same(address: ipaddress.IPv4Address | ipaddress.IPv6Address, token: str) -> bool:
    try:
        return ipaddress.ip_address(token) == address
    except ValueError:
        return False
