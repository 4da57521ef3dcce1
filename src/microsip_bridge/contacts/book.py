"""The bridge's own contacts: CSV and vCard files imported into the store, one row per number.

Files are read by the contact importers (contacts/formats.py), so a file ``contacts import``
reads is read the same way here. Each number of each contact becomes one row of
``bridge_contacts`` under the contact's name (as MicroSIP would show it), keyed by the number
normalised (:attr:`numbers.Number.key`): a number already there (from this file or another)
is not added again, so ``+44 20 7946 0000`` and ``020 7946 0000`` (region GB) are one entry,
the first one imported.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from microsip_bridge.errors import BridgeError, NotFoundError
from microsip_bridge.numbers import Normaliser

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from microsip_bridge.contacts.importing import ImportResult
    from microsip_bridge.microsip.contact import Contact
    from microsip_bridge.store.contacts import BridgeContact

BOOK_FORMATS = ("csv", "vcf")


@dataclass(slots=True)
class BookImport:
    """What an import did: rows added, numbers already known (skipped), numbers no row can
    match (empty once normalised), contacts without a number, and the importer's notes."""

    source: str
    added: int = 0
    duplicates: list[str] = field(default_factory=list)
    replaced: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "added": self.added,
            "duplicates": self.duplicates,
            "replaced": self.replaced,
            "skipped": self.skipped,
            "notes": self.notes,
        }


def read_book(path: Path, fmt: str, *, max_bytes: int) -> ImportResult:
    """The contacts of the CSV or vCard file ``path`` (``fmt`` auto: by its suffix)."""
    from microsip_bridge.contacts.formats import format_for_path, get_format

    if not path.exists():
        raise NotFoundError("no such file", path=path)
    source = get_format(fmt) if fmt != "auto" else format_for_path(path)
    if source is None or source.name not in BOOK_FORMATS:
        raise BridgeError(
            "names are imported from CSV or vCard files; pass --format csv|vcf", path=path
        )
    return source.read_file(path, max_bytes=max_bytes)


def book_rows(
    contacts: Sequence[Contact],
    normalise: Normaliser,
    *,
    source: str,
    known: set[str],
    report: BookImport,
    now: float,
) -> list[BridgeContact]:
    """One row per number not in ``known`` (number keys, updated), in file order."""
    from microsip_bridge.store.contacts import BridgeContact

    rows: list[BridgeContact] = []
    for contact in contacts:
        numbers = contact.numbers()
        if not numbers:
            report.skipped += 1
            continue
        for raw in numbers:
            key = normalise(raw).key
            if not key:
                report.skipped += 1
                continue
            if key in known:
                report.duplicates.append(raw)
                continue
            known.add(key)
            rows.append(
                BridgeContact(
                    name=contact.display_name,
                    number=raw,
                    number_key=key,
                    organization=contact.extra.get("organization", ""),
                    source=source,
                    added_at=now,
                )
            )
    return rows


def import_book(
    engine: Engine,
    path: Path,
    normalise: Normaliser,
    *,
    fmt: str = "auto",
    replace: bool = False,
    max_bytes: int,
) -> BookImport:
    """Import the file ``path`` into the bridge's contacts, in one transaction. ``replace``:
    the rows an earlier import of the same file added go first (its numbers are then
    deduplicated against the other files only)."""
    from microsip_bridge.store import contacts as table

    result = read_book(path, fmt, max_bytes=max_bytes)
    source = str(path.resolve())
    report = BookImport(source, notes=[str(note) for note in result.report])
    with engine.begin() as conn:
        if replace:
            report.replaced = table.delete_contacts(conn, source)
        rows = book_rows(
            result.contacts,
            normalise,
            source=source,
            known=table.known_keys(conn),
            report=report,
            now=time.time(),
        )
        report.added = table.insert_contacts(conn, rows)
    report.skipped += len(result.skipped)
    return report
