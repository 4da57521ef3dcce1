"""Plain-text tables for people: aligned on terminal columns, fitted to the terminal's width."""

from __future__ import annotations

import re
import shutil
import sys
import unicodedata
from collections.abc import Collection, Sequence
from typing import Literal, TextIO

_BREAKS = re.compile("\r\n|[\r\n\t]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_GAP = "  "
_ELLIPSIS = "…"


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters count 2, combining marks 0."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def cell(value: object) -> str:
    """A value as one table cell: a line break or tab would tear the table apart, another
    control character would move the cursor."""
    text = "" if value is None else str(value)
    text = _BREAKS.sub(" ", text)
    return _CONTROL.sub("\ufffd", text) if _CONTROL.search(text) else text


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` columns, ending in "…" when shortened.

    One pass that stops at the limit, so a cell of a million characters costs what its first
    ``limit`` columns cost."""
    limit = max(limit, 1)
    if text.isascii():
        return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS
    used = 0
    keep = 0  # how many characters fit beside the ellipsis
    for index, ch in enumerate(text):
        used += _char_width(ch)
        if used > limit:
            return text[:keep] + _ELLIPSIS
        if used <= limit - 1:
            keep = index + 1
    return text


def terminal_width(stream: TextIO | None = None) -> int | None:
    """The columns a table may use: ``COLUMNS``, else the terminal's width, when ``stream``
    (standard output by default) is a terminal; None when it is a pipe or a file, where a
    script reads every value whole."""
    stream = sys.stdout if stream is None else stream
    try:
        if stream is None or not stream.isatty():
            return None
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return None
    # shutil reads COLUMNS first, then asks the terminal; 80 when neither answers.
    return shutil.get_terminal_size().columns


def _fit(widths: list[int], floors: list[int], room: int) -> list[int]:
    """Column widths whose sum fits ``room``: the widest columns are narrowed to one common
    width, the largest that fits; no column goes below its floor (its header)."""
    if sum(widths) <= room:
        return widths

    def total(cap: int) -> int:
        return sum(max(min(w, cap), f) for w, f in zip(widths, floors, strict=True))

    low, high = 1, max(widths)  # total(high) > room; find the largest cap with total <= room
    while low < high:
        middle = (low + high + 1) // 2
        if total(middle) <= room:
            low = middle
        else:
            high = middle - 1
    return [max(min(w, low), f) for w, f in zip(widths, floors, strict=True)]


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    right: Collection[int] = (),
    max_width: int | None = None,
    width: int | Literal["terminal"] | None = "terminal",
) -> str:
    """Columns separated by two spaces under a header and a rule; columns in ``right`` are
    right-aligned (numbers read best so). No line end after the last line.

    ``width`` is the room for each line: the terminal's (:func:`terminal_width`) by default,
    an int, or None for no limit. With a limit, cells wider than ``max_width`` are cut with "…"
    and the widest columns are narrowed until the lines fit; without one (output to a pipe or a
    file) every value is shown whole.
    """
    room = terminal_width() if isinstance(width, str) else width
    cells = [[cell(v) for v in row] for row in rows]
    if room is not None and max_width is not None:
        cells = [[cut(text, max_width) for text in row] for row in cells]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], display_width(text))
    if room is not None:
        floors = [display_width(h) for h in headers]
        fitted = _fit(widths, floors, room - len(_GAP) * (len(widths) - 1))
        if fitted != widths:
            # A row shorter than the header simply has fewer cells: strict=False.
            cells = [[cut(text, w) for text, w in zip(row, fitted, strict=False)] for row in cells]
            widths = fitted

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(values):
            pad = " " * (widths[i] - display_width(value))
            parts.append(pad + value if i in right else value + pad)
        return _GAP.join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)
