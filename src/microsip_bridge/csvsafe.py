"""Spreadsheet-safe CSV cells: text a spreadsheet would run as a formula is turned into text.

Names, numbers and status texts come from callers, directory servers and imported files, so a
CSV meant for Excel or LibreOffice must not let ``=HYPERLINK("http://evil…")`` or
``=cmd|' /C calc'!A0`` become a formula. OWASP's rule (CSV injection): a cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a single quote in front, which the
spreadsheet shows as text and hides. A script that wants the bytes asks for them (``--raw``);
MicroSIP's own CSV formats are never neutralised, since MicroSIP would read the quote back as
part of the value.
"""

from __future__ import annotations

from collections.abc import Iterable

# OWASP's list: what makes Excel, LibreOffice and Google Sheets read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def is_formula_like(value: str) -> bool:
    """Whether a spreadsheet could take ``value`` for a formula."""
    return value.startswith(FORMULA_STARTS)


def neutralise(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: a quote in front when it could be a formula,
    else unchanged."""
    return QUOTE + value if value.startswith(FORMULA_STARTS) else value


def neutralise_row(values: Iterable[str]) -> list[str]:
    """:func:`neutralise` applied to every cell of a row."""
    return [neutralise(value) for value in values]
