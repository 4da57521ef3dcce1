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
from microsip_bridge.contacts.formats import (
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    WriteOptions,
    format_for_path,
    get_format,
)
from microsip_bridge.errors import BridgeError

if TYPE_CHECKING:
    from microsip_bridge.microsip.contacts_xml import ContactsFile


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
    from microsip_bridge.contacts.jsonfile import export_json
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
    options = WriteOptions(vcard_version=vcard_version, refresh=refresh)
    emit(get_format(fmt).write(cf.contacts, options), output)


@contacts.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@location_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("auto", *IMPORT_FORMATS)),
    default="auto",
    show_default=True,
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
    from microsip_bridge.contacts.merge import describe, merge
    from microsip_bridge.microsip.contacts_xml import write_contacts

    location = locate_files(microsip_path, ini_path, contacts_path)
    source = get_format(fmt) if fmt != "auto" else format_for_path(file)
    if source is None:
        raise BridgeError(
            f"cannot tell the format from the file name; pass --format {'|'.join(IMPORT_FORMATS)}",
            path=file,
        )
    result = source.read_file(
        file, max_bytes=state().config.max_bytes, encoding=encoding, delimiter=delimiter
    )
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
