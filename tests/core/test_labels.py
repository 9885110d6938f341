"""clean_label: names devices chose, made safe to show in any card, attribute or message."""

import re
import unicodedata

import pytest
from hypothesis import given, strategies as st

from custom_components.phonehome.core import labels
from custom_components.phonehome.core.labels import ELLIPSIS, MAX_LABEL, MAX_MARKS, clean_label

NEVER_SHOWN = frozenset("<>[]")


@pytest.mark.parametrize(
    "name",
    ["Wohnzimmer-TV", "客厅电视", "تلفزيون الصالة", "Телевизор", "José's iPhone", "👨‍👩‍👧 tablet"],
)
def test_real_names_in_any_script_are_kept(name: str) -> None:
    assert clean_label(name) == name


def test_persian_zero_width_non_joiner_is_kept() -> None:
    assert clean_label("گوشی\u200cمن") == "گوشی\u200cمن"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("  spaced \t\n out  ", "spaced out"),
        ("cam\x00era", "cam era"),
        ("\x1b[31mred\x1b[0m", "(31mred (0m"),
        ("c1\x85\x9bcontrol", "c1 control"),
        ("line\u2028para\u2029end", "line para end"),
        ("no\u00a0break", "no break"),
    ],
)
def test_control_characters_and_separators_become_one_space(given: str, shown: str) -> None:
    assert clean_label(given) == shown


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("\u202eexe.gpj", "exe.gpj"),  # right-to-left override
        ("a\u2066b\u2069c\u200fd", "abcd"),  # isolates, RLM
        ("zero\u200bwidth\ufeff\u00adsoft", "zerowidthsoft"),
        ("lone\ud800surrogate", "lonesurrogate"),
    ],
)
def test_format_characters_and_lone_surrogates_are_dropped(given: str, shown: str) -> None:
    assert clean_label(given) == shown


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("<img src=x onerror=alert(1)>", "img src=x onerror=alert(1)"),
        ("<script>alert(1)</script>", "scriptalert(1)/script"),
        ("[Update firmware](https://evil.example)", "(Update firmware)(https://evil.example)"),
        ("![x](https://evil.example/p.png)", "!(x)(https://evil.example/p.png)"),
        ("Printer [Office]", "Printer (Office)"),
    ],
)
def test_no_html_tag_or_markdown_link_can_start(given: str, shown: str) -> None:
    assert clean_label(given) == shown


def test_long_names_are_cut_with_an_ellipsis() -> None:
    shown = clean_label("x" * 10_000)
    assert shown == "x" * (MAX_LABEL - 1) + ELLIPSIS
    assert clean_label("y" * MAX_LABEL) == "y" * MAX_LABEL
    assert clean_label("a " * 40, limit=10) == "a a a a a" + ELLIPSIS


def test_a_cut_never_ends_in_a_space_or_joiner() -> None:
    assert clean_label("abc \u200ddef", limit=6) == "abc" + ELLIPSIS


def test_only_the_start_of_a_huge_name_is_read() -> None:
    # 30 MB of spaces after a short name: cut (and marked so), not collapsed to "a b".
    assert clean_label("a" + " " * 30_000_000 + "b") == "a" + ELLIPSIS
    assert clean_label(b"\xff" * 30_000_000) == "\ufffd" * (MAX_LABEL - 1) + ELLIPSIS


def test_stacked_combining_marks_are_capped() -> None:
    accent = "\u0301"
    # NFC first composes a + one accent into á; then four more are kept.
    assert clean_label("a" + accent * 50 + "b") == "á" + accent * MAX_MARKS + "b"
    assert clean_label("a" + (accent + "\u200b") * 50) == "á" + accent * MAX_MARKS
    assert clean_label("ệ") == "ệ"  # NFC: one precomposed letter


def test_bytes_are_decoded_with_replacement() -> None:
    assert clean_label(b"Caf\xc3\xa9 \xff\xfe") == "Café \ufffd\ufffd"


@pytest.mark.parametrize("given", [None, 5, "", "   ", "\u200b\u200d", "\x00\x01", "<>", "\ue000"])
def test_nothing_visible_is_none(given: object) -> None:
    assert clean_label(given) is None


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_input_gives_safe_short_text_and_cleaning_again_changes_nothing(
    value: str | bytes,
) -> None:
    shown = clean_label(value)
    if shown is None:
        return
    assert len(shown) <= MAX_LABEL
    assert shown == shown.strip()
    assert "  " not in shown
    assert not NEVER_SHOWN & set(shown)
    assert not any(
        unicodedata.category(char) in {"Cc", "Cs", "Zl", "Zp"}
        or (unicodedata.category(char) == "Cf" and char not in labels.JOINERS)
        for char in shown
    )
    assert clean_label(shown) == shown


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80))
def test_the_plain_ascii_shortcut_gives_what_the_full_cleaning_gives(text: str) -> None:
    shortcut = clean_label(text)
    saved = labels._PLAIN
    labels._PLAIN = re.compile(r"(?!)")  # matches nothing: every text takes the full path
    try:
        assert clean_label(text) == shortcut
    finally:
        labels._PLAIN = saved
