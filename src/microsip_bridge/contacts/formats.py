"""The contact file formats import and export know: one table from a name to a reader and writer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from microsip_bridge.errors import BridgeError

if TYPE_CHECKING:
    from microsip_bridge.contacts.importing import ImportResult
    from microsip_bridge.microsip.contact import Contact


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a reader is told rather than left to sniff; ``path`` names the file in errors."""

    encoding: str | None = None
    delimiter: str | None = None
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """The knobs some writers have: the vCard version, a directory's refresh in seconds, and the
    largest output that MicroSIP's formats may have (what the bridge would read back; None: the
    reader's default limit)."""

    vcard_version: str = "3.0"
    refresh: int | None = None
    max_bytes: int | None = None


Reader = Callable[[bytes, ReadOptions], "ImportResult"]
Writer = Callable[[Sequence["Contact"], WriteOptions], str | bytes]


@dataclass(frozen=True, slots=True)
class ContactFormat:
    """One contacts format: how to read it (``None``: export only), how to write it (``None``:
    import only), and the file-name suffixes that mean it when importing."""

    name: str
    reader: Reader | None = None
    writer: Writer | None = None
    suffixes: tuple[str, ...] = ()

    def read(self, data: bytes, options: ReadOptions | None = None) -> ImportResult:
        if self.reader is None:
            raise BridgeError(f"contacts cannot be imported from {self.name}")
        return self.reader(data, options or ReadOptions())

    def read_file(
        self,
        path: Path,
        *,
        max_bytes: int,
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> ImportResult:
        """Read a file to import, refusing one over ``max_bytes``; errors name the file."""
        # Imported here as the readers import theirs: the CLI loads this table at start-up.
        from microsip_bridge.fileio import read_limited

        data = read_limited(path, max_bytes, "contacts file")
        try:
            return self.read(data, ReadOptions(encoding, delimiter, path))
        except BridgeError as exc:
            if exc.path is None:
                exc.path = path
            raise

    def write(
        self, contacts: Sequence[Contact], options: WriteOptions | None = None
    ) -> str | bytes:
        if self.writer is None:
            raise BridgeError(f"contacts cannot be exported as {self.name}")
        return self.writer(contacts, options or WriteOptions())


# Readers and writers import their modules only when called: the CLI builds its --format choices
# from this table at start-up, and most runs need one format, if any.


def _read_csv(data: bytes, options: ReadOptions) -> ImportResult:
    from microsip_bridge.contacts.csvfile import import_csv

    return import_csv(data, delimiter=options.delimiter, encoding=options.encoding)


def _write_csv(contacts: Sequence[Contact], options: WriteOptions) -> bytes:
    from microsip_bridge.microsip.contacts_csv import export_csv

    return export_csv(contacts)


def _read_vcard(data: bytes, options: ReadOptions) -> ImportResult:
    from microsip_bridge.contacts.vcard import import_vcard

    return import_vcard(data, encoding=options.encoding)


def _write_vcard(contacts: Sequence[Contact], options: WriteOptions) -> str:
    from microsip_bridge.contacts.vcard import export_vcard

    return export_vcard(contacts, options.vcard_version)


def _read_json(data: bytes, options: ReadOptions) -> ImportResult:
    from microsip_bridge.contacts.jsonfile import import_json

    return import_json(data)


def _write_json(contacts: Sequence[Contact], options: WriteOptions) -> str:
    from microsip_bridge.contacts.jsonfile import export_json

    return export_json(contacts)


def _write_directory_json(contacts: Sequence[Contact], options: WriteOptions) -> str:
    from microsip_bridge.microsip.directory import to_directory_json

    if options.max_bytes is None:
        return to_directory_json(contacts, refresh=options.refresh)
    return to_directory_json(contacts, refresh=options.refresh, max_bytes=options.max_bytes)


def _write_directory_xml(contacts: Sequence[Contact], options: WriteOptions) -> bytes:
    from microsip_bridge.microsip.directory import to_directory_xml

    if options.max_bytes is None:
        return to_directory_xml(contacts, refresh=options.refresh)
    return to_directory_xml(contacts, refresh=options.refresh, max_bytes=options.max_bytes)


def _read_xml(data: bytes, options: ReadOptions) -> ImportResult:
    """Another Contacts.xml, or a directory response in one of MicroSIP's XML shapes."""
    from microsip_bridge.contacts.importing import ImportResult
    from microsip_bridge.microsip.contacts_xml import parse_contacts
    from microsip_bridge.microsip.directory import parse_directory

    head = data[:4096].lower()
    if b"<contacts" in head and b"refresh=" not in head:
        return ImportResult(contacts=parse_contacts(data, options.path).contacts)
    return ImportResult(contacts=parse_directory(data, "text/xml"))


def _write_xml(contacts: Sequence[Contact], options: WriteOptions) -> bytes:
    from microsip_bridge.microsip.contacts_xml import serialize_contacts

    if options.max_bytes is None:
        return serialize_contacts(contacts)
    return serialize_contacts(contacts, max_bytes=options.max_bytes)


FORMATS: dict[str, ContactFormat] = {
    f.name: f
    for f in (
        ContactFormat("csv", _read_csv, _write_csv, (".csv", ".tsv", ".txt")),
        ContactFormat("vcf", _read_vcard, _write_vcard, (".vcf", ".vcard")),
        ContactFormat("json", _read_json, _write_json, (".json",)),
        ContactFormat("directory-json", writer=_write_directory_json),
        ContactFormat("directory-xml", writer=_write_directory_xml),
        ContactFormat("xml", _read_xml, _write_xml, (".xml",)),
    )
}
IMPORT_FORMATS: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.reader is not None)
EXPORT_FORMATS: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.writer is not None)


def get_format(name: str) -> ContactFormat:
    """The format of that name; ``BridgeError`` names the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise BridgeError(
            f"unknown contacts format {name!r}; use one of {', '.join(FORMATS)}"
        ) from None


def format_for_path(path: Path) -> ContactFormat | None:
    """The importable format a file name's suffix means (case-insensitive), if any."""
    suffix = path.suffix.lower()
    return next((f for f in FORMATS.values() if f.reader and suffix in f.suffixes), None)
