"""`microsip-bridge contacts`: list, export and import MicroSIP's Contacts.xml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from microsip_bridge.cli._common import (
    dry_run_option,
    emit,
    force_option,
    locate_files,
    location_options,
    microsip_running,
    output_option,
    state,
)

if TYPE_CHECKING:
    from microsip_bridge.microsip.contact import Contact
    from microsip_bridge.microsip.contacts_import import ImportResult
    from microsip_bridge.microsip.contacts_xml import ContactsFile

EXPORT_FORMATS = ("csv", "vcf", "json", "directory-json", "directory-xml", "xml")
IMPORT_FORMATS = ("auto", "csv", "vcf", "json", "xml")
_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".vcf": "vcf",
    ".vcard": "vcf",
    ".json": "json",
    ".xml": "xml",
}


@click.group()
def contacts() -> None:
    """MicroSIP's contacts (Contacts.xml): list, export to other formats, import and merge.

    Contacts.xml is read and written exactly as MicroSIP's XML library does; MicroSIP must be
    closed while it changes, since it rewrites the file from memory.
    """


def _load(path: Path, *, missing_ok: bool = False) -> ContactsFile:
    from microsip_bridge.microsip.contacts_xml import ContactsFile, read_contacts

    if missing_ok and not path.exists():
        return ContactsFile([], path=path)
    return read_contacts(path, max_bytes=state().config.max_bytes)


def _report_problems(cf: ContactsFile) -> None:
    for problem in cf.problems:
        name = cf.path.name if cf.path else "Contacts.xml"
        click.echo(f"{name}: {problem}", err=True)


@contacts.command("list")
@location_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def list_(
    microsip_path: Path | None, ini_path: Path | None, contacts_path: Path | None, fmt: str
) -> None:
    """Show the contacts, in file order.

    \b
    Example:
        microsip-bridge contacts list
    """
    from microsip_bridge.formats.jsonfile import export_json
    from microsip_bridge.tables import format_table

    location = locate_files(microsip_path, ini_path, contacts_path)
    cf = _load(location.contacts)
    _report_problems(cf)
    if fmt == "json":
        click.echo(export_json(cf.contacts))
        return
    rows = [
        (
            c.display_name,
            c.number,
            c.phone,
            c.mobile,
            c.email,
            "".join(
                mark for mark, on in (("★", c.starred), ("P", c.presence), ("D", c.directory)) if on
            ),
        )
        for c in cf.contacts
    ]
    click.echo(
        format_table(["name", "number", "phone", "mobile", "email", "flags"], rows, max_width=32)
    )
    click.echo(f"{len(cf.contacts)} contacts (flags: ★ starred, P presence, D directory)")


@contacts.command("export")
@location_options
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True)
@click.option(
    "--vcard-version", type=click.Choice(["2.1", "3.0", "4.0"]), default="3.0", show_default=True
)
@click.option(
    "--refresh",
    type=click.IntRange(60, 86400),
    help="directory-json/xml: seconds before MicroSIP reloads the directory (60-86400).",
)
@output_option
def export(
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    fmt: str,
    vcard_version: str,
    refresh: int | None,
    output: Path | None,
) -> None:
    """Export the contacts.

    \b
    Formats:
      csv             MicroSIP's own CSV export (UTF-8 with BOM, its column names)
      vcf             vCard (--vcard-version 2.1, 3.0 or 4.0)
      json            our stable JSON list (see the README)
      directory-json  what MicroSIP reads from a usersDirectory URL (JSON)
      directory-xml   the same as XML
      xml             Contacts.xml as MicroSIP writes it
    \b
    Example:
        microsip-bridge contacts export --format vcf -o contacts.vcf
    """
    location = locate_files(microsip_path, ini_path, contacts_path)
    cf = _load(location.contacts)
    _report_problems(cf)
    emit(render_export(cf.contacts, fmt, vcard_version=vcard_version, refresh=refresh), output)


def render_export(
    items: list[Contact], fmt: str, *, vcard_version: str = "3.0", refresh: int | None = None
) -> str | bytes:
    if fmt == "csv":
        from microsip_bridge.microsip.contacts_csv import export_csv

        return export_csv(items)
    if fmt == "vcf":
        from microsip_bridge.formats.vcard import export_vcard

        return export_vcard(items, vcard_version)
    if fmt == "json":
        from microsip_bridge.formats.jsonfile import export_json

        return export_json(items)
    if fmt == "directory-json":
        from microsip_bridge.microsip.directory import to_directory_json

        return to_directory_json(items, refresh=refresh)
    if fmt == "directory-xml":
        from microsip_bridge.microsip.directory import to_directory_xml

        return to_directory_xml(items, refresh=refresh)
    from microsip_bridge.microsip.contacts_xml import serialize_contacts

    return serialize_contacts(items)


def read_import(
    path: Path, fmt: str, *, encoding: str | None, delimiter: str | None
) -> ImportResult:
    """Read a file to import; ``fmt`` "auto" goes by its extension."""
    from microsip_bridge.errors import BridgeError
    from microsip_bridge.fileio import read_limited

    if fmt == "auto":
        fmt = _BY_SUFFIX.get(path.suffix.lower(), "")
        if not fmt:
            raise BridgeError(
                "cannot tell the format from the file name; pass --format csv|vcf|json|xml",
                path=path,
            )
    data = read_limited(path, state().config.max_bytes, "contacts file")
    try:
        return _import(data, fmt, encoding=encoding, delimiter=delimiter, path=path)
    except BridgeError as exc:
        if exc.path is None:
            exc.path = path
        raise


def _import(
    data: bytes, fmt: str, *, encoding: str | None, delimiter: str | None, path: Path
) -> ImportResult:
    from microsip_bridge.microsip.contacts_import import ImportResult

    if fmt == "csv":
        from microsip_bridge.microsip.contacts_csv import import_csv

        return import_csv(data, delimiter=delimiter, encoding=encoding)
    if fmt == "vcf":
        from microsip_bridge.formats.vcard import import_vcard

        return import_vcard(data, encoding=encoding)
    if fmt == "json":
        from microsip_bridge.formats.jsonfile import import_json

        return import_json(data)
    # xml: another Contacts.xml, or a directory response in one of MicroSIP's XML shapes.
    from microsip_bridge.microsip.contacts_xml import parse_contacts
    from microsip_bridge.microsip.directory import parse_directory

    head = data[:4096].lower()
    if b"<contacts" in head and b"refresh=" not in head:
        cf = parse_contacts(data, path)
        return ImportResult(contacts=cf.contacts)
    return ImportResult(contacts=parse_directory(data, "text/xml"))


@contacts.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@location_options
@click.option(
    "--format", "fmt", type=click.Choice(IMPORT_FORMATS), default="auto", show_default=True
)
@click.option("--replace", is_flag=True, help="Replace all contacts instead of merging.")
@click.option("--encoding", help="The file's text encoding, if sniffing gets it wrong.")
@click.option("--delimiter", help="CSV: the field delimiter, if sniffing gets it wrong.")
@click.option(
    "--report-format",
    "report_fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="How to print what changes.",
)
@dry_run_option
@force_option
def import_(
    file: Path,
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    fmt: str,
    replace: bool,
    encoding: str | None,
    delimiter: str | None,
    report_fmt: str,
    dry_run: bool,
    force: bool,
) -> None:
    """Import contacts from FILE (CSV, vCard, JSON or XML) into Contacts.xml.

    Merges as MicroSIP does: a contact with the same number and name is updated, anything else
    is added (--replace replaces the whole list). Numbers that do not fit a contact's three
    number fields, and rows without a number, are listed in the report, never dropped silently.

    \b
    Examples:
        microsip-bridge contacts import google.csv --dry-run
        microsip-bridge contacts import phone.vcf
        microsip-bridge contacts import crm.json --replace
    """
    from microsip_bridge.microsip.contacts_merge import describe, merge
    from microsip_bridge.microsip.contacts_xml import write_contacts

    location = locate_files(microsip_path, ini_path, contacts_path)
    result = read_import(file, fmt, encoding=encoding, delimiter=delimiter)
    existing = _load(location.contacts, missing_ok=True)
    plan = merge(existing.contacts, result, replace=replace)
    summary = {
        "added": len(plan.added),
        "updated": len(plan.updated),
        "unchanged": len(plan.unchanged),
        "removed": len(plan.removed),
        "duplicates_in_file": len(plan.duplicates),
        "skipped": len(plan.skipped),
    }
    if report_fmt == "json":
        click.echo(
            json.dumps(
                {
                    "file": str(file),
                    "contacts": str(location.contacts),
                    "dry_run": dry_run,
                    "summary": summary,
                    "changes": describe(plan),
                    "report": [{"where": n.where, "message": n.message} for n in result.report],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for note in result.report:
            click.echo(f"{file.name}: {note}", err=True)
        if dry_run:
            for line in describe(plan):
                click.echo(line)
        click.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary.items()))
    if dry_run:
        click.echo("dry run: nothing written", err=True)
        return
    if not plan.changed:
        click.echo("nothing to change", err=True)
        return
    backup = write_contacts(
        location.contacts,
        plan.result,
        backups=state().config.backups,
        microsip_running=microsip_running(location.ini),
        force=force,
    )
    click.echo(f"wrote {location.contacts}" + (f" (backup: {backup})" if backup else ""), err=True)
