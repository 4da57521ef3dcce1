"""MicroSIP's contacts CSV (facts §4.5): its export, written as MicroSIP writes it, and its headers.

Export (``export_csv``) writes what MicroSIP 3.22's *Export → CSV* writes: UTF-8 with a BOM,
comma-separated, ``\\n`` line ends, a field quoted only when it contains ``,`` or ``"``, the 17
columns in MicroSIP's order. Two decisions:

* The header is ``Name,Number,First Name,…`` without spaces. Facts §4.5 lists the column names
  separated by ", " as prose; the names themselves are ``Name``, ``Number``, … (S22 ``OnMenuExport``
  adds them one by one and ``CCSVFile::WriteData`` joins with a bare comma). A header with
  " Number" would not even match MicroSIP's own import, which compares whole cells.
* A value with a line break is quoted too. MicroSIP's reader is one record per line, so such a
  value cannot reach MicroSIP intact in any form; quoting keeps it for us, Excel and Google
  (facts §4.5: one record per line).

The header names MicroSIP's own import recognises are here too (``IMPORT_ALIASES``), for an
importer to start from.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable

from microsip_bridge.microsip.contact import Contact

# MicroSIP 3.22's export columns and the Contact fields they hold, in its order (facts §4.5).
# Note the flags: Presence, Directory, Starred, unlike Contacts.xml's presence, starred, directory.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Name", "name"),
    ("Number", "number"),
    ("First Name", "firstname"),
    ("Last Name", "lastname"),
    ("Phone Number", "phone"),
    ("Mobile Number", "mobile"),
    ("E-mail Address", "email"),
    ("Address", "address"),
    ("City", "city"),
    ("State", "state"),
    ("Postal Code", "zip"),
    ("Comment", "comment"),
    ("Id", "id"),
    ("Info", "info"),
    ("Presence", "presence"),
    ("Directory", "directory"),
    ("Starred", "starred"),
)
HEADER: tuple[str, ...] = tuple(name for name, _ in COLUMNS)

# The header names MicroSIP's import takes for each field (facts §4.5), compared
# case-insensitively on the whole cell.
IMPORT_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("Name",),
    "number": ("Number", "Primary Phone", "phone"),
    "firstname": ("First Name", "Given Name", "first_name"),
    "lastname": ("Last Name", "Family Name", "last_name"),
    "phone": ("Phone Number", "Home Phone", "Phone 2 - Value", "home_number"),
    "mobile": ("Mobile Number", "Mobile Phone", "Phone 1 - Value", "mobile_number"),
    "email": ("E-mail Address", "E-mail 1 - Value", "email"),
    "address": ("Address", "Home Address"),
    "city": ("City", "Home City"),
    "state": ("State", "Home State"),
    "zip": ("Postal Code", "Home Postal Code"),
    "comment": ("Comment", "Notes"),
    "id": ("Id",),
    "info": ("Info",),
    "presence": ("Presence",),
    "directory": ("Directory",),
    "starred": ("Starred",),
}


def export_csv(contacts: Iterable[Contact]) -> bytes:
    """The CSV MicroSIP's *Export → CSV* writes for these contacts (see the module docstring).

    ``extra`` attributes are not exported: MicroSIP's CSV has no place for them.
    """
    lines = [_csv_line(HEADER)]
    for contact in contacts:
        values = [getattr(contact, name) for _, name in COLUMNS]
        lines.append(_csv_line(_flag_text(v) if isinstance(v, bool) else v for v in values))
    # A lone surrogate cannot come from any of our readers; "replace" keeps export total anyway.
    return codecs.BOM_UTF8 + "".join(lines).encode("utf-8", errors="replace")


def _flag_text(value: bool) -> str:
    return "1" if value else "0"


def _csv_line(values: Iterable[str]) -> str:
    return ",".join(_csv_field(value) for value in values) + "\n"


def _csv_field(value: str) -> str:
    # MicroSIP quotes only for "," and '"' (lib/CSVFile.cpp WriteData); line breaks are our
    # addition, see the module docstring.
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
