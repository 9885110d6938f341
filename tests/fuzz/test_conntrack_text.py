"""Fuzz parse_proc: /proc/net/nf_conntrack and ``conntrack -L`` text, from real tables.

tests/core/test_conntrack_properties.py generates valid lines and damages them
character by character; here whole captured and synthetic tables are damaged
token by token (hostile numbers, missing or repeated keys) and byte by byte
(decoded as the SSH router decodes them), and the fast reader is held to the
general reader on every damaged line.
"""

from pathlib import Path
from typing import Final

from hypothesis import given, strategies as st

from custom_components.phonehome.core import conntrack_text
from custom_components.phonehome.core.conntrack import ConntrackParseError, parse_proc
from custom_components.phonehome.core.model import Flow
from tests.bench import synthetic

from .conftest import FUZZ
from .invariants import check_result, outcome
from .mutate import bytes_mutant, text_mutant

FIXTURES: Final = Path(__file__).parents[1] / "core" / "fixtures"
SUMMARY: Final = "conntrack v1.4.8 (conntrack-tools): 3 flow entries have been shown.\n"
TABLES: Final = [
    *(path.read_text(encoding="utf-8") for path in sorted(FIXTURES.glob("*.txt"))),
    synthetic.proc_text(entries=24, devices=4, seed=3),
    synthetic.conntrack_text(entries=24, devices=4, seed=4) + SUMMARY,
]
MUTATED_TEXT: Final = st.sampled_from(TABLES).flatmap(text_mutant)
MUTATED_BYTES: Final = (
    st.sampled_from(TABLES)
    .flatmap(lambda table: bytes_mutant(table.encode(), deep=False))
    .map(lambda data: data.decode(errors="replace"))
)


def parse(text: str) -> None:
    result = outcome(lambda: parse_proc(text), ConntrackParseError)
    if result is not None:
        check_result(result)


@FUZZ
@given(MUTATED_TEXT)
def test_table_damaged_token_by_token(text: str) -> None:
    parse(text)


@FUZZ
@given(MUTATED_BYTES)
def test_table_damaged_byte_by_byte(text: str) -> None:
    parse(text)


@FUZZ
@given(MUTATED_TEXT)
def test_fast_reader_equals_general_reader_on_damaged_lines(text: str) -> None:
    """Line by line, parse_proc gives what conntrack_text._read_tokens gives, or skips alike."""
    for line in text.split("\n"):
        tokens = line.split()
        if not tokens:
            continue
        expected = conntrack_text._read_tokens(tokens)
        result = outcome(lambda line=line: parse_proc(line), ConntrackParseError)
        if isinstance(expected, Flow):
            assert result is not None, line
            assert result.flows == [expected], line
        else:
            assert result is None, line
