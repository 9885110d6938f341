"""Fuzz the readers of a Linux router's SSH output: identity, poll, leases, neighbours, nft.

Seeds: the outputs tests/routers/test_linux_ssh.py uses (dnsmasq and odhcpd
leases, ``ip neigh``, ``nft -j list table``, a real /proc table) put together as
POLL_SCRIPT prints them, and INFO_SCRIPT's output as the SSH emulator prints it.
parse_poll and parse_identity raise RouterError subclasses only; parse_table
raises ValueError only.
"""

import json
from typing import Any, Final

from hypothesis import given, strategies as st

from custom_components.phonehome.routers import linux_poll, nft_quarantine
from custom_components.phonehome.routers.base import RouterError
from custom_components.phonehome.routers.linux_hosts import DeviceTable
from tests.routers.test_linux_ssh import CORE, FIXTURES

from .conftest import FUZZ
from .invariants import (
    MAC,
    check_devices,
    check_result,
    check_states,
    is_count,
    outcome,
)
from .mutate import HOSTILE_STRINGS, bytes_mutant, json_mutant, text_mutant

MARKER: Final = "@@phonehome-5f0e5ea5"
LEASES: Final = [(FIXTURES / name).read_text() for name in ("dhcp.leases", "odhcpd")]
NEIGH: Final = (FIXTURES / "ip_neigh.txt").read_text()
NFT: Final = (FIXTURES / "nft_list_table.json").read_text()
TABLE: Final = (CORE / "proc_lab.txt").read_text()


def section(name: str, body: str, status: int = 0) -> str:
    return f"{MARKER} {name}\n{body}\n{MARKER} end {status}\n"


POLL: Final = "".join(
    [
        section("count", "12"),
        section("table proc", TABLE),
        *(section(f"leases {index}", text) for index, text in enumerate(LEASES, start=1)),
        section("neigh", NEIGH),
        section("nft", NFT),
    ]
)
INFO: Final = (
    "uid=0\nsudo=0\nhostname=gw\nmachine_id=5f0e5ea51a2c4f6b8d3c9a7e1b2d4c6f\n"
    "mac=02:77:00:00:00:01\nmodel=Linksys E8450 (UBI)\nfirmware=OpenWrt 24.10.0\n"
    "nft=1\nnft_ok=1\ntable=proc\n"
)


def check_poll(stdout: bytes, stderr: str = "") -> None:
    poll = outcome(lambda: linux_poll.parse_poll(stdout, stderr, MARKER), RouterError)
    if poll is None:
        return
    assert poll.count is None or is_count(poll.count)
    assert poll.source in linux_poll.TABLE_SOURCES
    check_result(poll.table)
    check_devices(poll.devices)
    check_states(poll.quarantined)


def test_seed_poll_is_read_whole() -> None:
    """The seed is what the script prints: every section counts (else the fuzzing is idle)."""
    poll = linux_poll.parse_poll(POLL.encode(), "", MARKER)
    assert (poll.count, poll.source, poll.table.stats.skipped.total()) == (12, "proc", 0)
    assert len(poll.devices) >= 4
    assert poll.quarantined


@FUZZ
@given(text_mutant(POLL))
def test_poll_damaged_token_by_token(text: str) -> None:
    check_poll(text.encode(errors="surrogatepass"))  # a lone surrogate: invalid UTF-8


@FUZZ
@given(bytes_mutant(POLL.encode()), HOSTILE_STRINGS)
def test_poll_damaged_byte_by_byte(stdout: bytes, stderr: str) -> None:
    check_poll(stdout, stderr)


NUMBER_TEXT: Final = HOSTILE_STRINGS | st.text("0123456789²\u0661 -+_", max_size=6)


@FUZZ
@given(NUMBER_TEXT, NUMBER_TEXT, st.sampled_from(["count", "table proc", "leases 1", "neigh"]))
def test_poll_sections_with_hostile_numbers(count: str, status: str, name: str) -> None:
    """The count and one section's exit status: whatever digits, or no digits, they hold."""
    body = {"count": count, "table proc": TABLE, "leases 1": LEASES[0], "neigh": NEIGH}[name]
    text = section("count", count) + section(name, body).replace(" end 0\n", f" end {status}\n")
    check_poll(text.encode(errors="surrogatepass"))


@FUZZ
@given(st.sampled_from([*LEASES, NEIGH]).flatmap(text_mutant))
def test_leases_and_neighbours(text: str) -> None:
    table = DeviceTable()
    table.add_leases(text)
    table.add_neighbours(text)
    check_devices(table.devices())


@FUZZ
@given(bytes_mutant(INFO.encode()), st.none() | st.integers(-1, 255))
def test_identity(stdout: bytes, status: int | None) -> None:
    identity = outcome(lambda: linux_poll.parse_identity(stdout, status, "gw"), RouterError)
    if identity is not None:
        assert identity.info.unique_id
        assert identity.info.name
        assert identity.info.name == identity.info.name.strip()
        assert identity.table_source in linux_poll.TABLE_SOURCES


KEYS: Final = ("nftables", "set", "chain", "rule", "elem", "val", "counter", "packets", "comment")
KEYS += ("family", "table", "name", "hook", "type", "expr", "match", "left", "right", "op")


def check_table(text: str) -> None:
    table = outcome(lambda: nft_quarantine.parse_table(text), ValueError)
    if table is None:
        return
    assert isinstance(table.chain_ok, bool)
    check_states(table.quarantined())
    for mac, element in table.elements.items():
        assert MAC.fullmatch(mac)
        assert isinstance(table.holds(mac), bool)
        assert element.packets is None or is_count(element.packets)
        assert element.comment is None or isinstance(element.comment, str)


@FUZZ
@given(json_mutant(json.loads(NFT), KEYS))
def test_nft_table_damaged_node_by_node(document: Any) -> None:
    check_table(json.dumps(document))


@FUZZ
@given(bytes_mutant(NFT.encode()))
def test_nft_table_damaged_byte_by_byte(stdout: bytes) -> None:
    check_table(stdout.decode(errors="replace"))  # as linux_ssh decodes it


CONNTRACK_OUTPUT: Final = "deleted 0 \ndeleted 1  0 flow entries have been deleted.\n"


@FUZZ
@given(text_mutant(CONNTRACK_OUTPUT) | st.text())
def test_conntrack_delete_output(text: str) -> None:
    assert nft_quarantine.flows_cut(text) in {True, False, None}
