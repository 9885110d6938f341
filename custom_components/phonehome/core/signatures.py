"""Known P2P / cloud-relay protocols (signatures.json) and matching flows against them.

Signatures are data: each names a transport, remote ports, a pattern (a single
flow is enough, or a fan-out to at least ``min_hosts`` distinct hosts), optional
known server networks, a severity and a one-line explanation template with the
placeholders ``{port}``, ``{hosts}`` (for example "4 hosts"), ``{countries}`` and ``{every}``.
"""

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from .addresses import INTERNET_SCOPES
from .model import Flow

DEFAULT_PATH: Final = Path(__file__).with_name("signatures.json")
TRANSPORTS: Final = {"udp": 17, "tcp": 6}

type Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
type Severity = Literal["low", "medium", "high"]
type _Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SignatureError(ValueError):
    """signatures.json is unusable; the message names the entry (index and id) and the field."""


class Single(
    msgspec.Struct, frozen=True, tag_field="kind", tag="single", forbid_unknown_fields=True
):
    """One matching flow is enough."""


class Fanout(
    msgspec.Struct, frozen=True, tag_field="kind", tag="fanout", forbid_unknown_fields=True
):
    """Flows to at least ``min_hosts`` distinct remote hosts on a signature port are needed."""

    min_hosts: Annotated[int, msgspec.Meta(ge=2)]


class Signature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One known protocol, as written in signatures.json."""

    id: Annotated[str, msgspec.Meta(min_length=1, pattern=r"^[a-z0-9_]+$")]
    name: Annotated[str, msgspec.Meta(min_length=1)]
    vendors: list[str]
    transport: Literal["udp", "tcp"]
    remote_ports: Annotated[list[Port], msgspec.Meta(min_length=1)]
    pattern: Single | Fanout
    severity: Severity
    explanation: Annotated[str, msgspec.Meta(min_length=1)]
    references: list[str]
    remote_hosts: list[str] = []
    note: str = ""

    def __post_init__(self) -> None:
        """Check what the types cannot: networks parse, the template formats."""
        for host in self.remote_hosts:
            try:
                ipaddress.ip_network(host, strict=False)
            except ValueError as err:
                msg = f"remote_hosts: {host!r} is not an IP address or CIDR"
                raise ValueError(msg) from err
        try:
            self.explanation.format(port=1, hosts=2, countries="", every="")
        except (KeyError, IndexError, ValueError) as err:
            msg = f"explanation: bad placeholder {err} (allowed: port, hosts, countries, every)"
            raise ValueError(msg) from err

    @property
    def protocol(self) -> int:
        """IANA protocol number of the transport."""
        return TRANSPORTS[self.transport]

    @property
    def min_hosts(self) -> int:
        """Distinct remote hosts needed on a signature port: 1 for a single-flow signature."""
        return self.pattern.min_hosts if isinstance(self.pattern, Fanout) else 1

    def networks(self) -> tuple[_Network, ...]:
        """The known server networks; empty when any host on the port matches."""
        return _networks(tuple(self.remote_hosts))

    def explain(self, port: object, hosts: int, countries: str = "", every: str = "") -> str:
        """The one-line explanation with its placeholders filled."""
        counted = f"{hosts} host" if hosts == 1 else f"{hosts} hosts"
        return self.explanation.format(port=port, hosts=counted, countries=countries, every=every)


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: Literal[1]
    signatures: list[Any]


@lru_cache(maxsize=64)
def _networks(hosts: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(host, strict=False) for host in hosts)


@lru_cache(maxsize=1 << 14)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def load_signatures(path: Path = DEFAULT_PATH) -> tuple[Signature, ...]:
    """Read and validate a signatures file.

    Raises:
        SignatureError: unreadable file, bad JSON, or an entry breaking the schema
            (named by index and id, with the field), or a duplicate id.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        msg = f"{path}: cannot read: {err}"
        raise SignatureError(msg) from err
    return parse_signatures(raw, source=str(path))


def parse_signatures(raw: bytes | str, source: str = "signatures") -> tuple[Signature, ...]:
    """Validate a signatures document given as JSON text; see ``load_signatures``."""
    try:
        document = msgspec.json.decode(raw, type=_File)
    except msgspec.ValidationError as err:
        msg = f"{source}: {err}"
        raise SignatureError(msg) from err
    except msgspec.DecodeError as err:
        msg = f"{source}: not valid JSON: {err}"
        raise SignatureError(msg) from err
    signatures: list[Signature] = []
    seen: set[str] = set()
    for index, entry in enumerate(document.signatures):
        ident = entry.get("id") if isinstance(entry, dict) else None
        label = f"{source}: signature #{index} (id {ident!r})"
        try:
            signature = msgspec.convert(entry, Signature)
        except msgspec.ValidationError as err:
            msg = f"{label}: {err}"
            raise SignatureError(msg) from err
        if signature.id in seen:
            msg = f"{label}: id: duplicate id {signature.id!r}"
            raise SignatureError(msg)
        seen.add(signature.id)
        signatures.append(signature)
    return tuple(signatures)


class SignatureIndex:
    """Signatures by (protocol number, remote port), for a dict lookup per destination."""

    def __init__(self, signatures: Iterable[Signature]) -> None:
        self.signatures = tuple(signatures)
        self.by_port: dict[tuple[int, int], tuple[Signature, ...]] = {}
        for signature in self.signatures:
            for port in signature.remote_ports:
                key = (signature.protocol, port)
                self.by_port[key] = (*self.by_port.get(key, ()), signature)

    def candidates(self, protocol: int, port: int | None, ip: str) -> list[Signature]:
        """Signatures whose transport, port and known hosts (if any) fit this destination.

        Fan-out signatures are returned too: the caller checks ``min_hosts`` against
        the distinct hosts it saw on that port.
        """
        if port is None:
            return []
        found = self.by_port.get((protocol, port))
        if not found:
            return []
        result: list[Signature] = []
        for signature in found:
            networks = signature.networks()
            if networks:
                address = _address(ip)
                if not any(address in network for network in networks):
                    continue
            result.append(signature)
        return result

    def match(self, flow: Flow) -> list[Signature]:
        """Signatures a WAN flow fits by protocol, port and known hosts; [] for other flows."""
        if flow.dst_scope not in INTERNET_SCOPES:
            return []
        return self.candidates(flow.protocol, flow.dport, flow.dst)


_DEFAULT_INDEX: SignatureIndex | None = None


def match(flow: Flow, signatures: Iterable[Signature] | None = None) -> list[Signature]:
    """Signatures a WAN flow fits (the bundled ones unless given).

    A fan-out signature in the result still needs ``min_hosts`` distinct hosts on its
    port before it is a finding; the analyzer counts them.
    """
    global _DEFAULT_INDEX  # noqa: PLW0603 - loaded once, on first use
    if signatures is not None:
        return SignatureIndex(signatures).match(flow)
    if _DEFAULT_INDEX is None:
        _DEFAULT_INDEX = SignatureIndex(load_signatures())
    return _DEFAULT_INDEX.match(flow)
