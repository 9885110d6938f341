"""Names that devices chose (DHCP hostnames, client names), made safe to show anywhere.

A device picks its own DHCP hostname, so the text is hostile until cleaned:
control characters, bidi overrides that reorder what people read, HTML or
markdown that a markdown card or a repair issue would render, kilobytes of
text, stacked combining marks, bytes that are not UTF-8. ``clean_label`` keeps
letters of every script (people name devices in their own language) and
drops or neutralises the rest:

- bytes are decoded as UTF-8, an invalid sequence becoming U+FFFD;
- the text is NFC-normalised;
- control characters and separators (C0, C1, tab, newline, U+2028...) become
  spaces, and runs of whitespace collapse to one space, ends trimmed;
- format characters (bidi embeddings, overrides and isolates, zero-width space,
  BOM, soft hyphen) and lone surrogates are dropped, except the zero-width
  joiner and non-joiner that Persian, Indic scripts and emoji sequences need;
- more than ``MAX_MARKS`` combining marks in a row are dropped;
- ``<`` and ``>`` are dropped and ``[`` ``]`` become ``(`` ``)``: no HTML tag,
  markdown link or image can start;
- the result is cut to ``limit`` characters, ending in "…" when cut (only the
  start of a huge text is read at all);
- nothing visible left: None.
"""

import re
import unicodedata
from typing import Final

MAX_LABEL: Final = 64
"""Characters of a device name shown: enough for any real name, short for a card."""
MAX_MARKS: Final = 4
"""Combining marks kept on one character: real scripts stack two or three."""
ELLIPSIS: Final = "…"
JOINERS: Final = frozenset({"\u200c", "\u200d"})
"""Zero-width non-joiner and joiner: part of how Persian, Indic scripts and emoji are written."""
TRAILING: Final = " " + "".join(JOINERS)
"""What a cut text must not end in."""
SPACE_CATEGORIES: Final = frozenset({"Cc", "Zs", "Zl", "Zp"})
DROPPED_CATEGORIES: Final = frozenset({"Cf", "Cs"})
MARK_CATEGORIES: Final = frozenset({"Mn", "Me"})
SCAN_FACTOR: Final = 16
"""Only the first ``limit * SCAN_FACTOR`` characters are read: a 30 MB name costs nothing."""
_PLAIN: Final = re.compile(r"[!-;=?-Z\\^-~]+(?: [!-;=?-Z\\^-~]+)*")
"""Already clean, the common case: printable ASCII words (no <, >, [, ]) one space apart."""
MARKUP: Final = str.maketrans({"<": None, ">": None, "[": "(", "]": ")"})


def clean_label(value: object, limit: int = MAX_LABEL) -> str | None:
    """The text safe to show (see the module docstring); None when nothing visible is left."""
    if isinstance(value, str) and len(value) <= limit and _PLAIN.fullmatch(value):
        return value
    scan = limit * SCAN_FACTOR
    if isinstance(value, bytes):
        value = value[: scan * 4].decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    cut = len(value) > scan
    kept: list[str] = []
    marks = 0
    for char in unicodedata.normalize("NFC", value[:scan].translate(MARKUP)):
        category = unicodedata.category(char)
        if category in DROPPED_CATEGORIES and char not in JOINERS:
            continue
        if category in MARK_CATEGORIES:
            marks += 1
            if marks > MAX_MARKS:
                continue
        elif char not in JOINERS:
            marks = 0
        kept.append(" " if category in SPACE_CATEGORIES else char)
    text = " ".join("".join(kept).split())
    if cut or len(text) > limit:
        text = text[: limit - 1].rstrip(TRAILING) + ELLIPSIS
    return text if any(char.isprintable() and not char.isspace() for char in text) else None
