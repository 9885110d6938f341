"""Quarantine on OpenWrt (fw4): one UCI firewall rule per device, read back before it counts.

The rule is section ``phonehome_<mac>`` of config firewall: ``src lan``, ``dest
wan``, ``src_mac``, ``proto all``, ``target REJECT``, no family (fw4 renders it once
in its ``inet`` table: IPv4 and IPv6) as ``ether saddr ... counter jump
reject_to_wan comment "!fw4: phonehome_<mac>"`` in chain ``forward_lan``.

rpcd's ``uci`` object stages ``add`` / ``set`` / ``delete`` per session until
``commit``, which writes /etc/config/firewall and sends procd the
``config.change`` event; procd then reloads fw4 on its own, so the nftables
ruleset changes a moment later. Hence the read-back: the committed section, then
(when this login may run ``nft --terse --json list ruleset``, as LuCI's
firewall status page does) the rule's comment in the live ruleset, retried for
``verify_timeout`` seconds.

fw4 accepts established flows before any user rule, so the device's live
conntrack entries are deleted afterwards: the phonehome plugin's ``flush``, or a
``file write`` of the address to /proc/net/nf_conntrack (OpenWrt's kernel patch
600-netfilter_conntrack_flush deletes every entry holding that address).
"""

import asyncio
import ipaddress
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec

from ..core.addresses import normalize_mac
from .base import (
    QUARANTINE_PREFIX,
    LanDevice,
    QuarantineRecord,
    QuarantineState,
    RouterError,
    RouterPermissionError,
    RouterResponseError,
    RouterVerificationError,
    quarantine_name,
)
from .ubus import ACCESS_HELP, Right, UbusCall, UbusClient, UbusResult, UbusStatusError

_LOGGER = logging.getLogger(__name__)

FIREWALL: Final = "firewall"
NFT: Final = "/usr/sbin/nft"
NFT_PARAMS: Final = ("--terse", "--json", "list", "ruleset")
NFT_COMMAND: Final = " ".join((NFT, *NFT_PARAMS))
"""How rpcd's ACL names the command (LuCI's luci-mod-status-firewall grants it)."""
CONNTRACK_PROC: Final = "/proc/net/nf_conntrack"
FW4_COMMENT: Final = "!fw4: "
PLUGIN_OBJECT: Final = "phonehome"
VERIFY_TIMEOUT: Final = 5.0
"""Seconds the ruleset may take to show a committed change (fw4 reloads asynchronously)."""
VERIFY_INTERVAL: Final = 0.5
UBUS_INVALID_ARGUMENT: Final = 2
UBUS_NOT_FOUND: Final = 4
ENABLED_VALUES: Final = frozenset({"1", "on", "true", "yes", "enabled"})

READ_RIGHTS: Final = (Right("ubus", "uci", "get"), Right("uci", FIREWALL, "read"))
WRITE_RIGHTS: Final = (
    *READ_RIGHTS,
    Right("ubus", "uci", "add"),
    Right("ubus", "uci", "set"),
    Right("ubus", "uci", "delete"),
    Right("ubus", "uci", "commit"),
    Right("ubus", "uci", "revert"),
    Right("uci", FIREWALL, "write"),
)
RULESET_RIGHTS: Final = (Right("ubus", "file", "exec"), Right("file", NFT_COMMAND, "exec"))
PROC_WRITE_RIGHTS: Final = (Right("ubus", "file", "write"), Right("file", CONNTRACK_PROC, "write"))
FLUSH_RIGHTS: Final = (Right("ubus", PLUGIN_OBJECT, "flush"),)
QUARANTINE_RIGHTS: Final = tuple(
    dict.fromkeys((*WRITE_RIGHTS, *RULESET_RIGHTS, *PROC_WRITE_RIGHTS, *FLUSH_RIGHTS))
)
"""Every right quarantine uses; router/openwrt/phonehome.json grants exactly these."""

_JSON: Final = msgspec.json.Decoder(dict[str, Any])


def rule_values(mac: str) -> dict[str, str]:
    """The options of a device's quarantine rule, as ``uci add`` takes them."""
    return {
        "name": quarantine_name(mac),
        "src": "lan",
        "dest": "wan",
        "src_mac": mac.upper(),
        "proto": "all",
        "target": "REJECT",
    }


def rule_holds(section: Mapping[str, Any], mac: str) -> bool:
    """The section is the rule ``rule_values`` describes, enabled, with nothing that narrows it."""
    options = {key: value for key, value in section.items() if not key.startswith(".")}
    enabled = options.pop("enabled", "1")
    expected = rule_values(mac)
    return (
        section.get(".type", "rule") == "rule"
        and str(enabled).lower() in ENABLED_VALUES
        and options.keys() == expected.keys()
        and all(str(options[key]).lower() == value.lower() for key, value in expected.items())
    )


class FirewallQuarantine:
    """Quarantine and release through rpcd's uci and file objects; owned by OpenWrtRouter."""

    def __init__(self, ubus: UbusClient) -> None:
        self.ubus = ubus
        self.granted: frozenset[Right] | None = None
        """Quarantine rights this login holds (``detect``); None: not known, calls tell."""
        self.verify_timeout = VERIFY_TIMEOUT
        self.verify_interval = VERIFY_INTERVAL

    # ------------------------------------------------------------------ rights

    async def detect(self) -> None:
        """Ask rpcd which quarantine rights this login holds (one ``session access`` batch)."""
        try:
            flags = await self.ubus.access(QUARANTINE_RIGHTS)
        except RouterError as err:
            _LOGGER.debug("%s: session access failed (%s): rights unknown", self.ubus.url, err)
            self.granted = None
            return
        self.granted = frozenset(r for r, ok in zip(QUARANTINE_RIGHTS, flags, strict=True) if ok)

    def _missing(self, rights: Sequence[Right]) -> Right | None:
        if self.granted is None:
            return None
        return next((right for right in rights if right not in self.granted), None)

    def may(self, rights: Sequence[Right]) -> bool:
        """Whether the login holds all of these (True while unknown: the router decides)."""
        return self._missing(rights) is None

    def can_quarantine(self) -> bool:
        """Known to hold every right the firewall rule needs."""
        return self.granted is not None and self.may(WRITE_RIGHTS)

    def can_cut(self, plugin: bool) -> bool:
        """Known to hold a way to delete a device's conntrack entries."""
        return self.granted is not None and (
            (plugin and self.may(FLUSH_RIGHTS)) or self.may(PROC_WRITE_RIGHTS)
        )

    def _ruleset_readable(self) -> bool:
        return self.granted is not None and self.may(RULESET_RIGHTS)

    def _require(self, rights: Sequence[Right], action: str) -> None:
        missing = self._missing(rights)
        if missing is not None:
            raise RouterPermissionError(
                f"the router user lacks the rpcd ACL for {missing.name}, needed to {action}: "
                f"{ACCESS_HELP}",
                acl=missing.name,
            )

    # ------------------------------------------------------------------ snapshot

    def snapshot_calls(self) -> list[UbusCall]:
        """The calls a poll adds to its batch: the firewall rules, the ruleset when allowed."""
        if self.granted is None or not self.may(READ_RIGHTS):
            return []
        return [_RULES_CALL, _NFT_CALL] if self._ruleset_readable() else [_RULES_CALL]

    def snapshot_state(self, results: Sequence[UbusResult]) -> dict[str, QuarantineState]:
        """Every phonehome_ rule, by MAC: enforced, and its counter (from ``snapshot_calls``)."""
        if not results:
            return {}
        try:
            sections = _rules(results[0].unwrap())
            ruleset = _ruleset(results[1].unwrap()) if len(results) > 1 else None
        except RouterPermissionError as err:
            # The ACL changed since connect: the poll goes on, quarantine stops being offered.
            _LOGGER.warning(
                "The router login may no longer read its firewall rules (%s): quarantines "
                "are neither offered nor checked until the rights are back and the "
                "integration is reloaded",
                err.acl or err,
            )
            self.granted = frozenset()
            return {}
        return quarantine_states(sections, ruleset)

    # ------------------------------------------------------------------ quarantine

    async def quarantine(self, device: LanDevice, *, plugin: bool) -> QuarantineRecord:
        """Add (or repair) the device's rule, read it back, then cut its live flows."""
        self._require(WRITE_RIGHTS, "quarantine a device")
        mac = device.mac.lower()
        name = quarantine_name(mac)
        current = (await self._read(name))[0]
        changed = current is None or not rule_holds(current, mac)
        if changed:
            changes = [] if current is None else [_delete_call(name)]
            changes.append(
                UbusCall(
                    "uci",
                    "add",
                    {"config": FIREWALL, "type": "rule", "name": name, "values": rule_values(mac)},
                )
            )
            await self._apply(changes)
        try:
            await self._verify(
                name, lambda section: section is not None and rule_holds(section, mac)
            )
        except RouterVerificationError:
            if changed:
                await self._undo(name)
            raise
        addresses = tuple(address for address in (*device.ipv4, *device.ipv6) if _is_ip(address))
        flows_cut = await self._cut(addresses, plugin=plugin)
        return QuarantineRecord(mac=mac, name=name, addresses=addresses, flows_cut=flows_cut)

    async def release(self, record: QuarantineRecord) -> None:
        """Delete exactly section ``record.name`` and read back that it is gone."""
        if not record.name.startswith(QUARANTINE_PREFIX) or not record.name.isidentifier():
            raise RouterResponseError(
                f"refusing to delete firewall section {record.name!r}: not a quarantine rule"
            )
        self._require(WRITE_RIGHTS, "release a device")
        (delete,) = await self.ubus.batch([_delete_call(record.name)])
        if _absent(delete):  # already gone (router reset, someone deleted it): nothing to undo
            return
        await self._commit()
        await self._verify(record.name, lambda section: section is None)

    # ------------------------------------------------------------------ internals

    async def _read(self, name: str) -> tuple[dict[str, Any] | None, set[str] | None]:
        """The section ``name`` (None: absent) and the ruleset's fw4 comments (None: unread)."""
        calls = [_RULES_CALL, _NFT_CALL] if self._ruleset_readable() else [_RULES_CALL]
        results = await self.ubus.batch(calls)
        section = _rules(results[0].unwrap()).get(name)
        if len(results) == 1:
            return section, None
        return section, set(_ruleset(results[1].unwrap()))

    async def _apply(self, changes: list[UbusCall]) -> None:
        """Stage the changes (one batch), then commit; on any failure drop what was staged."""
        for result in await self.ubus.batch(changes):
            if result.error is not None:
                await self._revert()
                raise result.error
        await self._commit()

    async def _commit(self) -> None:
        try:
            await self.ubus.call("uci", "commit", {"config": FIREWALL})
        except RouterError:
            await self._revert()
            raise

    async def _revert(self) -> None:
        """Drop this session's staged firewall changes (best effort)."""
        try:
            await self.ubus.call("uci", "revert", {"config": FIREWALL})
        except RouterError as err:
            _LOGGER.warning("%s: uci revert firewall failed: %s", self.ubus.url, err)

    async def _undo(self, name: str) -> None:
        """Remove the section this call added (best effort)."""
        try:
            (delete,) = await self.ubus.batch([_delete_call(name)])
            if not _absent(delete):
                await self._commit()
        except RouterError as err:
            _LOGGER.warning("%s: removing firewall rule %s failed: %s", self.ubus.url, name, err)

    async def _verify(self, name: str, config_ok: Callable[[dict[str, Any] | None], bool]) -> None:
        """Wait (bounded) until the config and, when readable, the ruleset agree with it.

        Bounded by a number of reads, not a clock: ``verify_timeout / verify_interval``
        retries (a frozen clock in tests cannot make it spin).
        """
        interval = self.verify_interval
        retries = math.ceil(self.verify_timeout / interval) if interval > 0 else 0
        for retry in range(retries + 1):
            if retry:
                await asyncio.sleep(interval)
            section, comments = await self._read(name)
            if not config_ok(section):
                raise RouterVerificationError(
                    f"after uci commit, /etc/config/firewall on the router does not show the "
                    f"expected state of rule {name}: another client changed it meanwhile, "
                    "or the router cannot save its configuration (flash full?)"
                )
            wanted = section is not None
            if comments is None or ((FW4_COMMENT + name) in comments) == wanted:
                return
        raise RouterVerificationError(
            f"firewall rule {name} is {'in' if wanted else 'gone from'} /etc/config/firewall, "
            f"but fw4 did not {'load' if wanted else 'unload'} it within "
            f"{self.verify_timeout:g} s: run `fw4 check` and `logread -e firewall` on the router"
        )

    async def _cut(self, addresses: tuple[str, ...], *, plugin: bool) -> bool:
        """Delete the addresses' conntrack entries; whether every address was cut."""
        if not addresses:
            return False
        if plugin and self.may(FLUSH_RIGHTS):
            calls = [UbusCall(PLUGIN_OBJECT, "flush", {"ip": ip}) for ip in addresses]
            results = await self.ubus.batch(calls)
            return all(_flushed(result) for result in results)
        if self.may(PROC_WRITE_RIGHTS):
            calls = [
                UbusCall("file", "write", {"path": CONNTRACK_PROC, "data": ip}) for ip in addresses
            ]
            return all(_written(result) for result in await self.ubus.batch(calls))
        return False


_RULES_CALL: Final = UbusCall("uci", "get", {"config": FIREWALL, "type": "rule"})
_NFT_CALL: Final = UbusCall("file", "exec", {"command": NFT, "params": list(NFT_PARAMS)})


def _delete_call(name: str) -> UbusCall:
    return UbusCall("uci", "delete", {"config": FIREWALL, "section": name})


def _absent(result: UbusResult) -> bool:
    """``uci delete`` answered not found (the section is already gone); raises other errors."""
    if isinstance(result.error, UbusStatusError) and result.error.status == UBUS_NOT_FOUND:
        return True
    result.unwrap()
    return False


def _flushed(result: UbusResult) -> bool:
    if result.error is not None:
        _LOGGER.warning("phonehome flush failed: %s", result.error)
        return False
    payload = result.payload or {}
    if payload.get("flushed") is not True:
        _LOGGER.warning("phonehome flush failed: %s", payload.get("error", payload))
        return False
    return True


def _written(result: UbusResult) -> bool:
    """Whether a ``file write`` of /proc/net/nf_conntrack was done.

    rpcd fsyncs what it wrote, and /proc files refuse fsync (EINVAL): a write the
    kernel took answers ubus status 2. Only valid addresses are ever written.
    """
    error = result.error
    if isinstance(error, UbusStatusError) and error.status == UBUS_INVALID_ARGUMENT:
        return True
    if error is not None:
        _LOGGER.warning("file write %s failed: %s", CONNTRACK_PROC, error)
        return False
    return True


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _rules(payload: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``uci get`` config firewall type rule: section name -> values."""
    values = payload.get("values")
    if not isinstance(values, dict):
        raise RouterResponseError(f"uci get firewall answered no sections: {payload!r:.80}")
    return {name: section for name, section in values.items() if isinstance(section, dict)}


def _ruleset(payload: Mapping[str, Any]) -> dict[str, int]:
    """``nft --terse --json list ruleset`` through ``file exec``: fw4 comment -> packets."""
    stdout = payload.get("stdout")
    if payload.get("code") != 0 or not isinstance(stdout, str):
        raise RouterResponseError(
            f"{NFT_COMMAND} failed on the router (exit {payload.get('code')!r}): "
            f"{str(payload.get('stderr', ''))[:200]}"
        )
    try:
        document = _JSON.decode(stdout)
    except (msgspec.DecodeError, RecursionError) as err:  # RecursionError: nested too deep
        raise RouterResponseError(f"{NFT_COMMAND} did not print JSON: {err}") from err
    items = document.get("nftables")
    if not isinstance(items, list):
        raise RouterResponseError(f"{NFT_COMMAND} printed no nftables list: {stdout[:80]!r}")
    packets: dict[str, int] = {}
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict):
            continue
        comment = rule.get("comment")
        if isinstance(comment, str) and comment.startswith(FW4_COMMENT):
            packets[comment] = packets.get(comment, 0) + _counted(rule)
    return packets


def _counted(rule: Mapping[str, Any]) -> int:
    """The packets of a rule's counter expressions."""
    total = 0
    expressions = rule.get("expr")
    for expression in expressions if isinstance(expressions, list) else []:
        counter = expression.get("counter") if isinstance(expression, dict) else None
        packets = counter.get("packets") if isinstance(counter, dict) else None
        if type(packets) is int and packets >= 0:  # not JSON true, nor a negative count
            total += packets
    return total


def quarantine_states(
    sections: Mapping[str, Mapping[str, Any]], ruleset: Mapping[str, int] | None
) -> dict[str, QuarantineState]:
    """Snapshot.quarantined from the firewall rules and (None: unread) the ruleset's counters."""
    states: dict[str, QuarantineState] = {}
    for name, section in sections.items():
        mac = normalize_mac(section.get("src_mac"))
        if not name.startswith(QUARANTINE_PREFIX) or mac is None or quarantine_name(mac) != name:
            continue
        comment = FW4_COMMENT + name
        loaded = ruleset is None or comment in ruleset
        states[mac] = QuarantineState(
            enforced=rule_holds(section, mac) and loaded,
            blocked_packets=None if ruleset is None else ruleset.get(comment, 0),
        )
    return states
