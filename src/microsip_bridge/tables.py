"""Plain-text tables for people: aligned on terminal columns, no dependency, not for scripts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence

_BREAKS = re.compile("\r\n|[\r\n\t]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters count 2, combining marks 0."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def cell(value: object) -> str:
    """A value as one table cell: a line break or tab would tear the table apart, another
    control character would move the cursor."""
    text = "" if value is None else str(value)
    text = _BREAKS.sub(" ", text)
    return _CONTROL.sub("\ufffd", text) if _CONTROL.search(text) else text


def _cut(text: str, limit: int) -> str:
    if display_width(text) <= limit:
        return text
    while display_width(text) > limit - 1:
        text = text[:-1]
    return text + "…"


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    right: Collection[int] = (),
    max_width: int | None = None,
) -> str:
    """Columns separated by two spaces under a header and a rule; columns in ``right`` are
    right-aligned (numbers read best so); cells wider than ``max_width`` are cut with "…".
    No line end after the last line."""
    cells = [[cell(v) for v in row] for row in rows]
    if max_width is not None:
        cells = [[_cut(text, max_width) for text in row] for row in cells]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], display_width(text))

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(values):
            pad = " " * (widths[i] - display_width(value))
            parts.append(pad + value if i in right else value + pad)
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)
