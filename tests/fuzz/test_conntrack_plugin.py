"""Fuzz decode_plugin_page and parse_plugin_rows: pages of the phonehome rpcd plugin, damaged.

Seeds: the rows tests/core/test_conntrack_plugin.py takes from the plugin's output
(IPv4 with counters, IPv6 in the full form the awk prints, ICMP without
counters), on a first and a middle page.
"""

import json
from typing import Any, Final

from hypothesis import given, strategies as st

from custom_components.phonehome.core.conntrack_plugin import decode_plugin_page, parse_plugin_rows
from custom_components.phonehome.core.parsing import ConntrackParseError
from tests.core.test_conntrack_plugin import ICMP, ROW, ROW6

from .conftest import FUZZ
from .invariants import check_result, outcome
from .mutate import JSON_VALUES, SCALARS, bytes_mutant, json_mutant

PAGES: Final[list[dict[str, Any]]] = [
    {"version": "1", "snapshot": "ab12", "total": 3, "offset": 0, "rows": [ROW, ROW6, ICMP]},
    {"version": "1", "snapshot": "ab12", "total": 9, "offset": 4, "rows": [ROW6, ROW], "next": 6},
]
KEYS: Final = ("version", "snapshot", "total", "offset", "rows", "next", "error")


def check_page(payload: bytes) -> None:
    """A page or ConntrackParseError; the page's rows, flows or ConntrackParseError."""
    page = outcome(lambda: decode_plugin_page(payload), ConntrackParseError)
    if page is None:
        return
    assert page.size == len(payload)
    assert isinstance(page.rows, list)
    result = outcome(lambda: parse_plugin_rows(page.rows), ConntrackParseError)
    if result is not None:
        check_result(result)
        assert result.stats.lines == len(page.rows)


@FUZZ
@given(st.sampled_from(PAGES).flatmap(lambda page: json_mutant(page, KEYS)))
def test_page_damaged_node_by_node(document: object) -> None:
    check_page(json.dumps(document).encode())


@FUZZ
@given(st.sampled_from(PAGES).flatmap(lambda page: bytes_mutant(json.dumps(page).encode())))
def test_page_damaged_byte_by_byte(payload: bytes) -> None:
    check_page(payload)


@FUZZ
@given(st.lists(st.lists(SCALARS, min_size=10, max_size=13) | JSON_VALUES, max_size=6))
def test_rows_of_any_values(rows: list[Any]) -> None:
    result = outcome(lambda: parse_plugin_rows(rows), ConntrackParseError)
    if result is not None:
        check_result(result)
