"""Fuzz parse_luci_json and parse_luci: LuCI's getConntrackList reply, damaged.

The seeds are replies as uhttpd sends them for realistic tables (tests.bench.synthetic,
the shape of a 24.10 capture). tests/core/test_conntrack_properties.py covers
generated entries and random JSON; here real replies are damaged node by node
and byte by byte, and the typed reader is held to the field-by-field one.
"""

import json
from typing import Final

import msgspec
from hypothesis import given, strategies as st

from custom_components.phonehome.core.conntrack import (
    ConntrackParseError,
    parse_luci,
    parse_luci_json,
)
from tests.bench import synthetic

from .conftest import FUZZ
from .invariants import check_result, outcome
from .mutate import bytes_mutant, json_mutant

REPLIES: Final = [synthetic.luci_payload(entries=12, devices=3, seed=seed) for seed in (1, 2)]
DOCUMENTS: Final = [json.loads(reply) for reply in REPLIES]
KEYS: Final = ("src", "dst", "sport", "dport", "bytes", "packets", "layer4", "mark", "zone")
KEYS += ("timeout", "secctx", "result", "jsonrpc", "id")


def entries_of(payload: bytes) -> object:
    """The entry list, when the payload is JSON of the reply's shape; else None."""
    try:
        return msgspec.json.decode(payload)["result"][1]["result"]
    except (msgspec.DecodeError, RecursionError, LookupError, TypeError):
        return None


@FUZZ
@given(st.sampled_from(DOCUMENTS).flatmap(lambda document: json_mutant(document, KEYS)))
def test_reply_damaged_node_by_node(document: object) -> None:
    payload = json.dumps(document).encode()
    result = outcome(lambda: parse_luci_json(payload), ConntrackParseError)
    if result is not None:
        check_result(result)
    entries = entries_of(payload)
    if entries is not None:  # the typed reader gives what the field-by-field one gives
        assert outcome(lambda: parse_luci(entries), ConntrackParseError) == result


@FUZZ
@given(st.sampled_from(REPLIES).flatmap(bytes_mutant))
def test_reply_damaged_byte_by_byte(payload: bytes) -> None:
    result = outcome(lambda: parse_luci_json(payload), ConntrackParseError)
    if result is not None:
        check_result(result)
    text = outcome(payload.decode, UnicodeDecodeError)
    if text is not None:  # a str payload reads as its bytes do
        assert outcome(lambda: parse_luci_json(text), ConntrackParseError) == result
