"""Contacts CSV import: MicroSIP's own export, Google's, Outlook's, Thunderbird's, hand-made ones.

Import (``import_csv``) follows MicroSIP's header aliases and ``ContactPrepare`` and is more
lenient where real exports need it: UTF-8 with or without BOM, UTF-16/32 with BOM (Excel's
"Unicode text" is UTF-16 TSV), Windows-1252 fallback; ``,``/``;``/tab sniffed from the header;
quoted fields spanning lines (Google and Outlook write multi-line addresses); Google's ``:::``
multi-values; a few extra header aliases (below). Columns MicroSIP knows land where MicroSIP
puts them, with one exception: Google's phones. MicroSIP takes ``Phone 1 - Value`` as the mobile
and ``Phone 2 - Value`` as the phone whatever Google's ``Phone N - Type`` says, which puts a
pager or an office number in ``mobile``. Where the type column is there we go by the type, as
the vCard importer does with the same contact from Google's vCard export: Mobile (or Cell)
→ mobile, Home → phone, any other voice type (Main, Work, Other, a label of the user's) →
number; a primary phone (Google's ``* `` before the type) first; Fax and Pager last. Every other
phone-like column (Business Phone, Fax, Pager…), every number whose field is taken and every
second ``:::`` value fills a free number field (number → phone → mobile); what finds no room is
named in the report with its row and column. Rows without any number are listed as skipped.
Numbers are trimmed; other values are kept verbatim, except control characters Contacts.xml
cannot store, which become spaces (and are reported).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from microsip_bridge.contacts.importing import (
    ImportResult,
    NumberCandidate,
    check_size,
    clean_text,
    decode_text,
    finish,
    place_numbers,
)
from microsip_bridge.errors import FileFormatError
from microsip_bridge.microsip.contact import NUMBER_FIELDS, Contact, parse_flag
from microsip_bridge.microsip.contacts_csv import IMPORT_ALIASES

# Header aliases per field, compared case-insensitively on the whole (trimmed) cell: MicroSIP's
# own list, then our additions, used only when no MicroSIP alias is present, so a file MicroSIP
# can read is read the same way:
#   Display Name, Primary Email, Home ZipCode   Thunderbird
#   Home Street                                 Outlook (its "Home Address" is only in some exports)
#   Address 1 - Street/City/Region/Postal Code  Google CSV
#   Full Name, Surname, E-mail, Email Address, Zip, Zip Code, Note   common hand-made headers
_OUR_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("Display Name", "Full Name"),
    "lastname": ("Surname",),
    "email": ("Primary Email", "E-mail", "Email Address"),
    "address": ("Home Street", "Address 1 - Street"),
    "city": ("Address 1 - City",),
    "state": ("Address 1 - Region",),
    "zip": ("Home ZipCode", "Zip", "Zip Code", "Address 1 - Postal Code"),
    "comment": ("Note",),
}
ALIASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    name: (microsip, _OUR_ALIASES.get(name, ())) for name, microsip in IMPORT_ALIASES.items()
}
_FLAG_FIELDS = ("presence", "directory", "starred")

# Any other column whose name says it holds a phone number. Its numbers are never dropped
# silently. Google's "Phone N - Type" and similar label columns hold words, not numbers.
_PHONE_HEADER = re.compile(
    r"\b(?:phone|telephone|tel|mobile|cell|cellular|fax|pager|callback|isdn|telex|tty)\b"
)
_LABEL_HEADER = re.compile(r"\b(?:type|label)\b")
# Numbers nobody calls by voice: they only take a number field left over after the others.
_LOW_PRIORITY = re.compile(r"\b(?:fax|pager|telex)\b", re.IGNORECASE)
_GOOGLE_VALUE = re.compile(r"^phone (\d+) - value$")
# Google's phone types (its "Phone N - Type" cells) that mean a field, as vCard's TEL types do.
_GOOGLE_MOBILE = re.compile(r"\b(?:mobile|cell)\b", re.IGNORECASE)
_GOOGLE_HOME = re.compile(r"^home$", re.IGNORECASE)
_GOOGLE_PRIMARY = "*"
# Google joins several values of one cell with " ::: ".
_MULTI = re.compile(r"\s*:::\s*")
# Google's "Outlook CSV" marks favourites with a "starred" category; its Google CSV with
# "* starred" in Group Membership.
_CATEGORY_HEADERS = ("categories", "group membership")
_CATEGORY_SPLIT = re.compile(r"\s*(?:;|,|:::)\s*")
_DELIMITERS = (",", ";", "\t")


@dataclass(slots=True)
class _Layout:
    """Which column feeds which field, read from the header row."""

    names: list[str]
    fields: dict[str, int] = field(default_factory=dict)
    extra_numbers: list[int] = field(default_factory=list)
    # Google's "Phone N - Value" columns that have a "Phone N - Type": value index -> type index.
    google_types: dict[int, int] = field(default_factory=dict)
    categories: int | None = None

    def column(self, index: int) -> str:
        name = self.names[index] if index < len(self.names) else ""
        return f"column {name!r}" if name else f"column {index + 1}"


def import_csv(
    data: bytes, *, delimiter: str | None = None, encoding: str | None = None
) -> ImportResult:
    """Read a MicroSIP, Outlook, Google, Thunderbird or hand-made contacts CSV.

    ``delimiter`` and ``encoding`` override the sniffing. Raises ``FileFormatError`` when the
    file cannot be read as CSV or has no phone number column (MicroSIP then says "The received
    data cannot be recognized").
    """
    check_size(data)
    if delimiter is not None:
        delimiter = check_delimiter(delimiter)
    result = ImportResult()
    text = decode_text(data, result, encoding=encoding)
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    records = _records(text, delimiter)
    header_row, header = next(((n, cells) for n, cells in records if _has_text(cells)), (0, []))
    if not header:
        raise FileFormatError("the file has no header row (it is empty)")
    layout = _read_header(header, header_row)
    result.fields = frozenset(layout.fields) | frozenset(NUMBER_FIELDS)
    if layout.categories is not None and "starred" not in layout.fields:
        result.fields |= {"starred"}
    for row, cells in records:
        if _has_text(cells):
            _read_row(row, cells, layout, result)
    return result


def check_delimiter(delimiter: str) -> str:
    """A delimiter the CSV reader can use: one character other than a quote or a line break;
    ``\\t`` and ``tab`` spell a tab, which is hard to type on a command line. Raises
    ``FileFormatError`` naming the rule otherwise."""
    if delimiter in ("\\t", "tab"):
        return "\t"
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise FileFormatError(
            f"the delimiter must be one character other than a quote or line break, "
            f"not {delimiter!r}"
        )
    return delimiter


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text: whichever of ``,`` ``;`` tab occurs most often in the
    header line outside quotes; a comma when none does (a one-column file)."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in text.lstrip("\r\n"):
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            if ch in "\r\n":
                break
            if ch in counts:
                counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equals: ","
    return best if counts[best] else ","


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records numbered as a spreadsheet numbers its rows (the header is row 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileFormatError(f"not readable as CSV: {exc}", where=f"row {row}") from None
        yield row, cells


def _has_text(cells: list[str]) -> bool:
    return any(cell.strip() for cell in cells)


def _read_header(header: list[str], row: int) -> _Layout:
    names = [cell.strip() for cell in header]
    folded = [name.casefold() for name in names]
    layout = _Layout(names)
    # Google pairs each "Phone N - Value" with a "Phone N - Type": such a value goes by its type,
    # not by MicroSIP's alias for its column (see the module docstring).
    for index, key in enumerate(folded):
        match = _GOOGLE_VALUE.match(key)
        if match:
            type_key = f"phone {match.group(1)} - type"
            if type_key in folded:
                layout.google_types[index] = folded.index(type_key)
    for name, (microsip, ours) in ALIASES.items():
        for tier in (microsip, ours):
            wanted = {alias.casefold() for alias in tier}
            found = [i for i, key in enumerate(folded) if key in wanted]
            found = [i for i in found if i not in layout.google_types]
            if found:
                layout.fields[name] = found[0]
                break
    used = set(layout.fields.values()) | layout.google_types.keys()
    for index, key in enumerate(folded):
        if index in used:
            continue
        if _PHONE_HEADER.search(key) and not _LABEL_HEADER.search(key):
            layout.extra_numbers.append(index)
        elif key in _CATEGORY_HEADERS and layout.categories is None:
            layout.categories = index
    numbers = set(NUMBER_FIELDS) & layout.fields.keys()
    if not numbers and not layout.extra_numbers and not layout.google_types:
        known = ", ".join(alias for name in NUMBER_FIELDS for alias in ALIASES[name][0])
        raise FileFormatError(
            f"no phone number column; MicroSIP needs one of: {known}", where=f"header (row {row})"
        )
    return layout


def _read_row(row: int, cells: list[str], layout: _Layout, result: ImportResult) -> None:
    def cell(index: int) -> str:
        value = cells[index] if index < len(cells) else ""
        return clean_text(value, result, lambda: f"row {row}, {layout.column(index)}")

    def candidates_of(
        index: int, numbers: list[str], kind: str = "", slot: str | None = None
    ) -> list[NumberCandidate]:
        where = f"row {row}, {layout.column(index)}"
        kind = kind or layout.names[index] or f"column {index + 1}"
        low = bool(_LOW_PRIORITY.search(kind))
        # The first value takes the type's field; further ":::" values fill what is free.
        return [
            NumberCandidate(number, where, kind, slot=None if low or n else slot, low=low)
            for n, number in enumerate(numbers)
        ]

    values: dict[str, Any] = {}
    candidates: list[NumberCandidate] = []
    for name, index in layout.fields.items():
        value = cell(index)
        if name in _FLAG_FIELDS:
            values[name] = parse_flag(value)
        elif name in NUMBER_FIELDS:
            first, *more = _split_multi(value) or [""]
            values[name] = first
            candidates += candidates_of(index, more)
        elif name == "email":
            # Google's "a ::: b": MicroSIP has one e-mail field; keep the first address.
            values[name] = (_split_multi(value) or [""])[0] if ":::" in value else value
        else:
            values[name] = value
    typed: list[tuple[bool, list[NumberCandidate]]] = []
    for index, type_index in layout.google_types.items():
        kind = cell(type_index).strip()
        primary = kind.startswith(_GOOGLE_PRIMARY)
        kind = kind.lstrip(_GOOGLE_PRIMARY + " ")
        typed.append((primary, candidates_of(index, _split_multi(cell(index)), kind, _slot(kind))))
    # A primary phone first, as vCard's PREF; sorted() keeps the file's order otherwise.
    for _, found in sorted(typed, key=lambda item: not item[0]):
        candidates += found
    for index in layout.extra_numbers:
        candidates += candidates_of(index, _split_multi(cell(index)))
    if layout.categories is not None and "starred" not in layout.fields:
        tokens = _CATEGORY_SPLIT.split(cell(layout.categories))
        values["starred"] = any(token.strip(" *").casefold() == "starred" for token in tokens)
    if len(cells) > len(layout.names) and _has_text(cells[len(layout.names) :]):
        result.note(
            f"row {row}",
            f"{len(cells)} values but the header has {len(layout.names)} columns; "
            "the values past the last column were ignored: "
            + ", ".join(repr(v) for v in cells[len(layout.names) :] if v.strip()),
        )
    contact = place_numbers(Contact(**values), candidates, result)
    finish(contact, result, f"row {row}")


def _slot(kind: str) -> str:
    """The field a Google phone type asks for, as the vCard importer maps TEL types."""
    if _GOOGLE_MOBILE.search(kind):
        return "mobile"
    if _GOOGLE_HOME.match(kind):
        return "phone"
    return "number"


def _split_multi(value: str) -> list[str]:
    return [part for part in (p.strip() for p in _MULTI.split(value)) if part]
