"""Exports of MicroSIP's call history as data: a registry of text formats and :func:`export`.

Every exporter returns text: our JSON and CSV (stable fields, see :func:`entry_record`) and
MicroSIP's own CSV and XML export shapes (``Calls::OnMenuExport``: time and duration are written
with ``%d``, i.e. Unix seconds and seconds). Our CSV is for spreadsheets, so a cell a spreadsheet
would run as a formula is neutralised (:mod:`microsip_bridge.csvsafe`) unless the caller asks
for the raw text; MicroSIP's own shapes always keep MicroSIP's bytes. The table for people is
the CLI's, not a data format.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence

from microsip_bridge.csvsafe import neutralise
from microsip_bridge.errors import BridgeError
from microsip_bridge.microsip.history import CallEntry
from microsip_bridge.microsip.markup import encode_attribute, sanitize_text

_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate (kept by the ini reader) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def _iso(entry: CallEntry) -> str:
    return entry.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_record(entry: CallEntry) -> dict[str, str | int]:
    """The stable JSON object for one call.

    Keys, in this order: ``key`` (ring slot), ``number``, ``name``, ``type`` (``outgoing``,
    ``incoming``, ``missed``, ``answered_elsewhere``), ``type_code`` (0-3 as stored), ``time``
    (ISO 8601 UTC, ``2024-06-13T10:05:59Z``), ``timestamp`` (Unix seconds), ``duration``
    (connected seconds), ``info`` (MicroSIP's status text, in its UI language).
    """
    return {
        "key": entry.key,
        "number": _text(entry.number),
        "name": _text(entry.name),
        "type": entry.type.label,
        "type_code": int(entry.type),
        "time": _iso(entry),
        "timestamp": entry.time,
        "duration": entry.duration,
        "info": _text(entry.info),
    }


RECORD_FIELDS = (
    "key",
    "number",
    "name",
    "type",
    "type_code",
    "time",
    "timestamp",
    "duration",
    "info",
)


def to_json(entries: Iterable[CallEntry], *, indent: int | None = 2) -> str:
    """A JSON array of :func:`entry_record` objects, in the given order, non-ASCII kept."""
    return json.dumps([entry_record(e) for e in entries], ensure_ascii=False, indent=indent)


def to_csv(entries: Iterable[CallEntry], *, raw: bool = False) -> str:
    """Our CSV: a header row of :data:`RECORD_FIELDS`, one row per call as in
    :func:`entry_record` (numbers as the JSON has them), RFC 4180 quoting and CRLF line ends.

    A text cell that starts with ``= + - @``, a tab or a carriage return gets a ``'`` in front
    (:func:`~microsip_bridge.csvsafe.neutralise`): a spreadsheet then shows ``+14155550142`` as
    the text it is and never runs ``=HYPERLINK(...)`` from a caller's name. ``raw`` keeps every
    cell as it is.
    """
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180's CRLF, the csv module's default
    writer.writerow(RECORD_FIELDS)
    for entry in entries:
        record = entry_record(entry)
        writer.writerow([_cell(record[name], raw) for name in RECORD_FIELDS])
    return out.getvalue()


def _cell(value: str | int, raw: bool) -> str | int:
    return value if raw or not isinstance(value, str) else neutralise(value)


def _ordered(entries: Iterable[CallEntry], newest_first: bool) -> list[CallEntry]:
    listed = list(entries)
    return listed[::-1] if newest_first else listed


def _microsip_csv_field(value: str) -> str:
    # CCSVFile::WriteData quotes a field only when it holds a comma or a double quote.
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def to_microsip_csv(entries: Iterable[CallEntry], *, newest_first: bool = True) -> str:
    """The CSV file MicroSIP's Calls tab exports (S22 ``Calls::OnMenuExport``), as text.

    The text starts with U+FEFF: encoded as UTF-8 it is byte for byte the file MicroSIP writes
    (UTF-8 with a BOM, facts §5). Columns ``Type,Name,Number,Time,Duration,Info``; Type is
    ``out``/``in``/``miss``/``else``; Time is Unix seconds and Duration seconds, both as plain
    integers (``str.Format(_T("%d"), ...)`` in the source); a field is quoted only when it holds
    a comma or a double quote (``CCSVFile::WriteData``). Rows end in CRLF: MicroSIP writes
    ``\\n`` to a file opened in text mode, which Windows turns into CRLF [inferred]. Give the
    entries oldest first (as :func:`read_history` returns them); MicroSIP exports its list
    order, newest first by default, hence ``newest_first``.
    """
    lines = ["Type,Name,Number,Time,Duration,Info"]
    for entry in _ordered(entries, newest_first):
        row = (
            entry.type.export_code,
            _text(entry.name),
            _text(entry.number),
            str(entry.time),
            str(entry.duration),
            _text(entry.info),
        )
        lines.append(",".join(_microsip_csv_field(field) for field in row))
    return "\ufeff" + "".join(line + "\r\n" for line in lines)


def _xml_attr(value: str) -> str:
    # CMarkup's x_TextToDoc escaping; a tab is kept as a reference so that an XML reader does not
    # turn it into a space, and characters XML 1.0 cannot carry (MicroSIP would write them raw,
    # making the file unreadable) become U+FFFD.
    return encode_attribute(sanitize_text(value, "\ufffd")).replace("\t", "&#9;")


def to_microsip_xml(entries: Iterable[CallEntry], *, newest_first: bool = True) -> str:
    """The XML file MicroSIP's Calls tab exports (S22 ``Calls::OnMenuExport``, CMarkup).

    ``<?xml version="1.0"?>``, then ``<calls>`` with one ``<call type name number time duration
    info/>`` per line, CRLF line ends, no indentation; ``<calls/>`` when empty. Encode as UTF-8
    without a BOM to get MicroSIP's bytes. Time and duration are plain integers (Unix seconds,
    seconds), type is ``out``/``in``/``miss``/``else``. Order as in :func:`to_microsip_csv`.
    """
    calls = _ordered(entries, newest_first)
    head = '<?xml version="1.0"?>\r\n'
    if not calls:
        return head + "<calls/>\r\n"
    rows = [
        f'<call type="{entry.type.export_code}" name="{_xml_attr(entry.name)}" '
        f'number="{_xml_attr(entry.number)}" time="{entry.time}" '
        f'duration="{entry.duration}" info="{_xml_attr(entry.info)}"/>\r\n'
        for entry in calls
    ]
    return head + "<calls>\r\n" + "".join(rows) + "</calls>\r\n"


# Format name -> exporter; the CLI offers these as --format choices, beside its own table.
EXPORTERS: dict[str, Callable[[Sequence[CallEntry]], str]] = {
    "json": to_json,
    "csv": to_csv,
    "microsip-csv": to_microsip_csv,
    "microsip-xml": to_microsip_xml,
}


# The formats for spreadsheets, whose text cells are neutralised, in their raw form.
RAW_EXPORTERS: dict[str, Callable[[Sequence[CallEntry]], str]] = {
    "csv": functools.partial(to_csv, raw=True),
}


def export(entries: Iterable[CallEntry], fmt: str, *, raw: bool = False) -> str:
    """Export in one of :data:`EXPORTERS`' formats; ``raw`` keeps the text cells of the
    :data:`RAW_EXPORTERS` formats as they are (the others never alter them)."""
    try:
        exporter = EXPORTERS[fmt]
    except KeyError:
        raise BridgeError(
            f"unknown export format {fmt!r}; use one of {', '.join(EXPORTERS)}"
        ) from None
    if raw:
        exporter = RAW_EXPORTERS.get(fmt, exporter)
    return exporter(list(entries))
