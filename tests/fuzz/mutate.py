"""Strategies that damage real router replies the way broken or hostile routers do.

Three levels, each starting from a real document, text or byte string:

- ``json_mutant(document)``: the decoded document with nodes replaced by hostile
  values or values of the wrong type, keys deleted or added, nodes wrapped, nested
  deep, or emptied;
- ``text_mutant(text)``: whitespace-separated tokens (conntrack lines, leases,
  ``ip neigh``) replaced by hostile numbers and words, deleted, repeated or
  swapped, lines cut, dropped, repeated or joined;
- ``bytes_mutant(data)``: the bytes cut anywhere, with invalid UTF-8, NUL,
  JSON punctuation or very long numbers inserted, bytes flipped, slices
  repeated, or wrapped in deep nesting (which overflows a recursive decoder).
"""

import copy
import math
from collections.abc import Iterator
from typing import Any, Final

from hypothesis import strategies as st

DEEP: Final = 100_000
"""Nesting depth that overflows msgspec's and json's recursive decoders."""

HOSTILE_NUMBERS: Final = st.sampled_from(
    [
        *[0, -1, -(2**63), 255, 256, 65535, 65536, 2**32, 2**63, 2**64, 10**30, True, False],
        *[1.5, -0.0, 1e308, math.inf, -math.inf, math.nan],
    ]
)
HOSTILE_WORDS: Final = [
    *["", " ", "\x00", "a\x00b", "\t", "\r", "\n", "\ufffd", "\udcff", "\u202e<b>x</b>"],
    *["²", "١٢", "٣٤٥", "-1", "+443", "1_000", "0x10", "1e3", " 443", "9" * 5000, "é" * 50],
    *["a" * 10_000, "<script>alert(1)</script>", "$(reboot)", "'; DROP TABLE x; --"],
    *["null", "true", "[]", "{}", "aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF", "00:00:00:00:00:00"],
    *["192.168.1.1", "192.168.001.001", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::", "::1.2.3.4"],
    *["::ffff:192.168.1.1", "fe80::1%eth0", "2001:DB8::1", "[2001:db8::1]", "2001:db8::1/64"],
]
"""Strings that break naive readers: digits int() reads or refuses, NUL, lone surrogates,
huge lengths, markup, shell text, JSON words, and addresses in odd or invalid forms."""
HOSTILE_STRINGS: Final = st.sampled_from(HOSTILE_WORDS)
SCALARS: Final = (
    HOSTILE_NUMBERS
    | HOSTILE_STRINGS
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
)
JSON_VALUES: Final = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | HOSTILE_STRINGS, children, max_size=4)
    ),
    max_leaves=10,
)

Path = tuple[str | int, ...]


def _paths(value: object, path: Path = ()) -> Iterator[Path]:
    """The path of every node, the root first."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _get(document: Any, path: Path) -> Any:
    for step in path:
        document = document[step]
    return document


def _nest(value: object, depth: int) -> object:
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def _retyped(value: object) -> object:
    """The value as another JSON type: numbers as text, text as a number, containers swapped."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return (
            int(value) if value.isascii() and value.isdecimal() and len(value) < 20 else len(value)
        )
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    return None


@st.composite
def json_mutant(draw: st.DrawFn, document: object, keys: tuple[str, ...] = ()) -> object:
    """The document (deep-copied) with one to four nodes damaged; ``keys`` are names worth adding."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(document))))
        node = _get(document, path)
        how = draw(st.sampled_from(["replace", "retype", "delete", "add", "wrap", "nest", "empty"]))
        if how == "delete" and path:
            parent = _get(document, path[:-1])
            del parent[path[-1]]
            continue
        if how == "add" and isinstance(node, dict):
            node[draw(st.sampled_from(keys or ("key",)) | HOSTILE_STRINGS)] = draw(JSON_VALUES)
            continue
        if how == "add" and isinstance(node, list):
            node.insert(draw(st.integers(0, len(node))), draw(JSON_VALUES))
            continue
        if how == "retype":
            new = _retyped(node)
        elif how == "wrap":
            new = draw(st.sampled_from([[node], {"value": node}, [node, node]]))
        elif how == "nest":
            new = _nest(node, draw(st.sampled_from([2, 30, 150])))
        elif how == "empty":
            new = draw(st.sampled_from([[], {}, "", None]))
        else:
            new = draw(JSON_VALUES)
        if not path:
            document = new
        else:
            _get(document, path[:-1])[path[-1]] = new
    return document


@st.composite
def fields_mutant(draw: st.DrawFn, record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The record with each of ``keys`` kept, deleted, or given a hostile or random value.

    Structured where ``json_mutant`` is blind: every field a reader looks at is hit often.
    """
    record = copy.deepcopy(record)
    for key in keys:
        how = draw(st.sampled_from(["keep", "keep", "delete", "hostile", "random"]))
        if how == "delete":
            record.pop(key, None)
        elif how == "hostile":
            record[key] = draw(HOSTILE_NUMBERS | HOSTILE_STRINGS)
        elif how == "random":
            record[key] = draw(JSON_VALUES)
    return record


HOSTILE_TOKENS: Final = st.sampled_from(
    [word for word in HOSTILE_WORDS if word.strip() == word and word]
    + ["=", "src=", "dst=", "sport=", "dport=", "packets=-1", "bytes=²", "use=", "[", "]"]
    + ["[UNREPLIED]", "[ASSURED]", "[OFFLOAD]", "[start=Fri", "mark=4294967296", "zone=-1"]
)


@st.composite
def text_mutant(draw: st.DrawFn, text: str) -> str:
    """The text with one to four of its lines damaged token by token, or lines moved."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        tokens = lines[index].split(" ")
        how = draw(
            st.sampled_from(
                ["value", "token", "delete", "repeat", "swap", "insert", "cut", "lines"]
            )
        )
        at = draw(st.integers(0, len(tokens) - 1))
        if how == "value":  # keep the key, give it a hostile value
            key, equals, _ = tokens[at].partition("=")
            tokens[at] = key + (equals or "=") + draw(HOSTILE_TOKENS | st.text(max_size=8))
        elif how == "token":
            tokens[at] = draw(HOSTILE_TOKENS)
        elif how == "delete":
            del tokens[at]
        elif how == "repeat":
            tokens.insert(at, tokens[at])
        elif how == "swap":
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[at], tokens[other] = tokens[other], tokens[at]
        elif how == "insert":
            tokens.insert(at, draw(HOSTILE_TOKENS | st.text(max_size=8)))
        elif how == "cut":
            tokens = tokens[:at]
        else:
            action = draw(st.sampled_from(["drop", "repeat", "join"]))
            if action == "drop":
                lines[index] = ""
            elif action == "repeat":
                lines.insert(index, lines[index])
            elif index + 1 < len(lines):
                lines[index : index + 2] = [lines[index] + " " + lines[index + 1]]
            continue
        lines[index] = " ".join(tokens)
    return "\n".join(lines)


BAD_BYTES: Final = st.sampled_from(
    [
        *[b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\\u0000"],
        *[b"\\ud800", b'"', b"[", b"{", b"}", b"]", b",", b":", b"\n", b"-", b"9" * 400, b"1e999"],
        b"NaN",
    ]
)
DEEP_OPENERS: Final = st.sampled_from([b"[", b'{"a":', b'{"result":[0,'])


@st.composite
def bytes_mutant(draw: st.DrawFn, data: bytes, *, deep: bool = True) -> bytes:
    """The bytes damaged one to three times; ``deep=False`` leaves out deep nesting."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        how = draw(
            st.sampled_from(["cut", "insert", "delete", "flip", "repeat", "deep"])
            if deep
            else st.sampled_from(["cut", "insert", "delete", "flip", "repeat"])
        )
        if how == "cut":
            data = data[:at]
        elif how == "insert":
            data = data[:at] + draw(BAD_BYTES | st.binary(max_size=4)) + data[at:]
        elif how == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        elif how == "flip" and at < len(data):
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif how == "repeat":
            data = data[:at] + data[at : at + draw(st.integers(1, 64))] + data[at:]
        elif how == "deep":
            opener = draw(DEEP_OPENERS)
            data = opener * DEEP + data[:at]
    return data
