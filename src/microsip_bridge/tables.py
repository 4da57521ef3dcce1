"""Plain-text tables for people: aligned columns, no dependency, never used by scripts."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def _width(text: str) -> int:
    """Columns a string takes in a terminal: wide East Asian characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A line break or tab inside a cell would tear the table apart.
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, max_width: int = 40
) -> str:
    """Left-aligned columns separated by two spaces; long cells are cut with an ellipsis."""
    cells = [[_cell(v) for v in row] for row in rows]
    for row in cells:
        for i, text in enumerate(row):
            if _width(text) > max_width:
                cut = text
                while _width(cut) > max_width - 1:
                    cut = cut[:-1]
                row[i] = cut + "…"
    widths = [_width(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], _width(text))

    def line(values: Sequence[str]) -> str:
        parts = [v + " " * (widths[i] - _width(v)) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out) + "\n"
